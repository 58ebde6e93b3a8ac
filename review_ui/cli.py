"""`turnscribe users`, `turnscribe review` and `turnscribe ui`."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Local accounts of the workbench.", no_args_is_help=True)
review_app = typer.Typer(help="Cut and assign review tasks, approve transcripts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the review stage's command groups to the root command."""
    app.add_typer(users_app, name="users")
    app.add_typer(review_app, name="review")
