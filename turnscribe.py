"""The `turnscribe` command: one subcommand group per stage of the pipeline.

Heavy libraries are imported inside command bodies so `turnscribe --help` is instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from asr.cli import register as register_asr
from asr.models_cli import app as models_app
from collection.cli import app as collect_app
from store.console import setup_logging
from corpus.governance.cli import app as governance_app
from corpus.releases.cli import app as corpus_app
from store.settings import enforce_offline
from protocols.cli import app as protocol_app
from review_ui.cli import register as register_review

enforce_offline()

app = typer.Typer(
    help="Turnscribe: on-premises speech and dialogue corpus pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(protocol_app, name="protocol")
app.add_typer(collect_app, name="collect")
register_asr(app)
app.add_typer(models_app, name="models")
register_review(app)
app.add_typer(corpus_app, name="corpus")
app.add_typer(governance_app, name="governance")


@app.callback()
def main(
    home: Annotated[Path | None, typer.Option(envvar="TURNSCRIBE_HOME", help="Data folder (default ./turnscribe-data).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")] = False,
) -> None:
    if home is not None:
        os.environ["TURNSCRIBE_HOME"] = str(home)
    setup_logging(verbose)


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on (keep it inside the organisation's network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
) -> None:
    """Serve the workbench (Streamlit, headless, no usage statistics): review, coverage, quality and releases."""
    from corpus.releases.workbench import PAGES
    from review_ui.serve import serve

    raise typer.Exit(serve(host, port, PAGES))


@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Run every step, then exit instead of serving the UI.")] = False,
) -> None:
    """Run the pipeline on the committed synthetic dialogues in the current $TURNSCRIBE_HOME."""
    from demo.pipeline import run_demo

    raise typer.Exit(run_demo(serve=not no_serve))


if __name__ == "__main__":
    app()
