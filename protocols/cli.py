"""`turnscribe protocol …`: validate, register, list and show collection plans.

`validate` reads files only; the others sign in: registering needs the manager role (a new
version becomes every command's default) and is audited, list and show any role.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from protocols.registry import UnknownProtocol, get_protocol
from store.console import Exit, err, fail, out, principal_for_cli, shown, store_for_cli
from store.db import Store
from store.listing import DocFormat, ListFormat


def protocol_for_cli(store: Store, protocol_id: str, version: int | None):  # type: ignore[no-untyped-def]
    """The registered protocol (row, spec), or exit 2 naming what is registered."""
    with store.session() as session:
        try:
            return get_protocol(session, protocol_id, version)
        except UnknownProtocol as exc:
            fail(str(exc), Exit.USAGE)


app = typer.Typer(help="Collection plans: validate, register, list, show.", no_args_is_help=True)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")]) -> None:
    """Check protocol files; every mistake is reported with its field path and line."""
    from protocols.loader import ProtocolError, load_protocol

    failed = False
    for path in files:
        try:
            protocol = load_protocol(path)
        except ProtocolError as exc:
            failed = True
            err.print(f"[red]✗ {path}[/red]: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                err.print(f"  {path}:{problem.line or '?'}: [bold]{problem.path or '(top level)'}[/bold]: {problem.message}")
            continue
        cells = len(protocol.cell_targets())
        out.print(f"[green]✓ {path}[/green]: {protocol.id} v{protocol.version}, {len(protocol.demographics)} "
                  f"demographic dimensions, {cells} crossed cells")
    raise typer.Exit(Exit.REJECTED if failed else Exit.OK)


@app.command()
def register(file: Annotated[Path, typer.Argument(help="Protocol YAML file.")]) -> None:
    """Register a protocol version in the store (the same content twice is a no-op)."""
    from protocols.loader import ProtocolError, load_protocol
    from protocols.registry import ProtocolConflict, register_protocol

    try:
        protocol = load_protocol(file)
    except ProtocolError as exc:
        fail(str(exc), Exit.REJECTED, label="invalid protocol")
    store = store_for_cli()
    principal = principal_for_cli(store, "register_protocol")
    with store.session() as session:
        try:
            registered = register_protocol(session, protocol, actor=principal.username)
        except ProtocolConflict as exc:
            fail(str(exc), Exit.REJECTED)
        session.commit()
    state = "registered" if registered.created else "already registered (unchanged)"
    out.print(f"{protocol.id} v{protocol.version} {state}")


@app.command("list")
def list_protocols(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table,
) -> None:
    """Registered protocols and their versions."""
    from sqlalchemy import select

    from store import models
    from store.listing import Column, Listing, emit

    store = store_for_cli()
    principal_for_cli(store, "read_protocols")
    listing = Listing("protocol.list", [
        Column("id", "id"), Column("version", "version"), Column("title", "title"),
        Column("registered_at", "registered", lambda v: v[:16].replace("T", " ")),
    ])
    with store.session() as session:
        for row in session.scalars(select(models.Protocol).order_by(models.Protocol.protocol_id, models.Protocol.version)):
            listing.add(id=row.protocol_id, version=row.version, title=row.title,
                        registered_at=row.registered_at.isoformat(timespec="seconds"))
    emit(listing, fmt)


@app.command()
def show(
    protocol_id: Annotated[str, typer.Argument(help="Protocol id.")],
    version: Annotated[int | None, typer.Option(help="Version (default: newest).")] = None,
    fmt: Annotated[DocFormat, typer.Option("--format", help="table (YAML, as registered) or json.")] = DocFormat.table,
) -> None:
    """Print a registered protocol version as YAML (or the same document as JSON)."""
    import yaml

    from store.listing import json_text

    store = store_for_cli()
    principal_for_cli(store, "read_protocols")
    _, protocol = protocol_for_cli(store, protocol_id, version)
    document = protocol.model_dump(mode="json", exclude_defaults=True)
    if fmt is DocFormat.json:
        sys.stdout.write(json_text(document))
    else:
        sys.stdout.write(shown(yaml.safe_dump(document, sort_keys=False, allow_unicode=True)))  # no markup parsing
