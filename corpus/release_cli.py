"""`turnscribe corpus`: build, inspect, verify and pull versioned releases."""

from __future__ import annotations

import typer

app = typer.Typer(help="Versioned corpus releases.", no_args_is_help=True)
