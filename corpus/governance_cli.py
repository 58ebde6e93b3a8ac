"""`turnscribe governance`: erasure, retention purge, PII detection and the audit log."""

from __future__ import annotations

import typer

app = typer.Typer(help="Consent, erasure, retention, PII and audit.", no_args_is_help=True)
