"""`turnscribe collect duplicates`: speaker ids whose voices match across sessions.

Kept apart from `collection/cli.py` so the command can be registered on any Typer app
(`register(app)`); the heavy imports (torch, Resemblyzer) happen only when it runs.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from collection.duplicates import THRESHOLD
from protocols.cli import protocol_for_cli
from store.console import Exit, err, out, principal_for_cli, store_for_cli


class DuplicatesFormat(str, Enum):
    table = "table"
    json = "json"


def duplicates(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    threshold: Annotated[float, typer.Option(
        help=f"Cosine similarity (centred) from which two voices count as one person; {THRESHOLD} was chosen "
             "on the synthetic set (see collection/duplicates.py).", min=-1.0, max=1.0)] = THRESHOLD,
    format: Annotated[DuplicatesFormat, typer.Option("--format", help="table or json.")] = DuplicatesFormat.table,
) -> None:
    """Flag pairs of speaker ids whose voices match across sessions. Exit 1 if any pair is flagged."""
    from rich.table import Table

    from collection.duplicates import find_duplicate_speakers

    store = store_for_cli()
    principal_for_cli(store, "find_duplicates")
    row, _ = protocol_for_cli(store, protocol, version)
    with err.status("comparing voices (the first run embeds every recording)"):
        found = find_duplicate_speakers(store, row.pk, threshold=threshold)
    if format is DuplicatesFormat.json:
        typer.echo(json.dumps({
            "protocol": row.protocol_id, "version": row.version, "threshold": threshold,
            "candidates": [c.as_dict() for c in found],
        }, indent=2))
    elif found:
        table = Table("speaker A", "speaker B", "similarity", "sessions A", "sessions B", "certain",
                      title=f"Possible duplicate speakers under {row.protocol_id} v{row.version} "
                            f"(similarity >= {threshold:g})", title_justify="left")
        for c in found:
            table.add_row(c.speaker_a, c.speaker_b, f"{c.similarity:.3f}", ", ".join(c.sessions_a),
                          ", ".join(c.sessions_b), "yes" if c.certain else "no", style=None if c.certain else "yellow")
        out.print(table)
        err.print(f"{len(found)} pair(s) to resolve; 'certain: no' means the voice could belong to any id shown "
                  "(listen to both sessions)")
    else:
        out.print(f"no duplicate speakers under {row.protocol_id} v{row.version} (similarity >= {threshold:g})")
    raise typer.Exit(Exit.REJECTED if found else Exit.OK)


def register(app: typer.Typer) -> None:
    """Add the `duplicates` command to a Typer app (`collection/cli.py` calls this)."""
    app.command("duplicates")(duplicates)
