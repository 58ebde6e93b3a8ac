"""`turnscribe corpus`: build, inspect, verify and pull versioned releases.

Managers release; ML consumers may list, show, diff, verify and pull (store/accounts.py).
Exit 0: done; 1: refused (wrong role, name taken, drift found); 2: bad arguments.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from store.console import Exit, fail, fault_text, out, principal_for_cli, store_for_cli
from store.listing import DocFormat, ListFormat

app = typer.Typer(help="Versioned corpus releases.", no_args_is_help=True)


@app.command()
def release(
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol id.")],
    name: Annotated[str, typer.Option("--name", help="Release name (unique, immutable).")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the train/dev/test assignment.")] = 0,
    split: Annotated[str, typer.Option(help="Target shares of hours: train,dev,test.")] = "0.8,0.1,0.1",
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="Pulls redact marked PII in text and audio copies.")] = False,
    pii_audio: Annotated[str, typer.Option(help="Redacted audio: silence or tone.")] = "silence",
    date: Annotated[str | None, typer.Option(help="Judge consent on this date (YYYY-MM-DD; default today).")] = None,
    reassign_splits: Annotated[bool, typer.Option("--reassign-splits", help="Assign splits afresh, moving speakers of earlier releases (recorded in the card).")] = False,
) -> None:
    """Snapshot the approved transcripts of a protocol into an immutable release."""
    from corpus.releases.build import ReleaseError, build_release, check_release_name
    from corpus.releases.card import split_notes
    from corpus.releases.splits import SplitError, parse_ratios
    from protocols.registry import UnknownProtocol

    try:
        check_release_name(name)
        ratios = parse_ratios(split)
        on = dt.date.fromisoformat(date) if date else None
    except (ReleaseError, SplitError, ValueError) as exc:
        fail(str(exc), Exit.USAGE)
    store = store_for_cli()
    principal = principal_for_cli(store, "release")
    try:
        outcome = build_release(store, principal, protocol, name, version=version, seed=seed, ratios=ratios,
                                redact_pii=redact_pii, pii_audio=pii_audio, on=on, reassign_splits=reassign_splits)
    except UnknownProtocol as exc:
        fail(str(exc), Exit.USAGE)
    except ReleaseError as exc:
        fail(str(exc), Exit.REJECTED)
    rel = outcome.release
    if not outcome.created:
        out.print(f"{name} already holds exactly this state: release id {rel.release_id} (nothing written)")
        return
    totals = rel.card["totals"]
    out.print(f"released {name}: id {rel.release_id}")
    out.print(f"  {totals['recordings']} recordings, {totals['sessions']} sessions, {totals['speakers']} speakers, {totals['hours']:.3f} h")
    for split_name, size in rel.card["splits"]["sizes"].items():
        out.print(f"  {split_name}: {size['recordings']} recordings, {size['speakers']} speakers, {100 * size['share']:.1f}% of hours")
    for note in split_notes(rel.card["splits"]):
        out.print(f"  {note}", soft_wrap=True)
    for reason, count in outcome.excluded.items():
        out.print(f"  left out: {count} ({reason})")
    if outcome.same_content_as:
        out.print(f"  same content (same id) as: {', '.join(outcome.same_content_as)}")


@app.command("list")
def list_cmd(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table,
) -> None:
    """The releases, oldest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import defer

    from store import models
    from store.listing import Column, Listing, emit

    store = store_for_cli()
    principal_for_cli(store, "list_releases")
    listing = Listing("corpus.list", [
        Column("name", "name"), Column("release_id", "release id", lambda v: v[:16]), Column("protocol", "protocol"),
        Column("protocol_version", "version"), Column("recordings", "recordings"), Column("speakers", "speakers"),
        Column("hours", "hours"), Column("created_at", "created", lambda v: v[:16].replace("T", " ")),
        Column("created_by", "by"),
    ])
    with store.session() as session:
        for rel, protocol_id, version in session.execute(
            select(models.Release, models.Protocol.protocol_id, models.Protocol.version)
            .join(models.Protocol, models.Protocol.pk == models.Release.protocol_pk)
            .options(defer(models.Release.manifest)).order_by(models.Release.pk)
        ):
            totals = (rel.card or {}).get("totals", {})
            listing.add(name=rel.name, release_id=rel.release_id, protocol=protocol_id, protocol_version=version,
                        recordings=totals.get("recordings"), speakers=totals.get("speakers"), hours=totals.get("hours"),
                        created_at=rel.created_at.isoformat(timespec="seconds"), created_by=rel.created_by)
    emit(listing, fmt)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Release name.")],
    fmt: Annotated[DocFormat, typer.Option("--format", help="table (the Markdown card) or json.")] = DocFormat.table,
) -> None:
    """The dataset card of a release (Markdown, or JSON)."""
    from corpus.releases.card import render_markdown
    from corpus.releases.build import ReleaseError, find_release
    from store.listing import json_text

    store = store_for_cli()
    principal_for_cli(store, "list_releases")
    with store.session() as session:
        try:
            card = find_release(session, name).card
        except ReleaseError as exc:
            fail(str(exc), Exit.USAGE)
    sys.stdout.write(json_text(card) if fmt is DocFormat.json else render_markdown(card))


@app.command()
def diff(
    before: Annotated[str, typer.Argument(help="Older release.")],
    after: Annotated[str, typer.Argument(help="Newer release.")],
    fmt: Annotated[DocFormat, typer.Option("--format", help="table or json.")] = DocFormat.table,
) -> None:
    """What changed between two releases: recordings, transcripts, splits, speakers, hours."""
    from corpus.releases.build import ReleaseError
    from corpus.releases.verify import diff_releases
    from store.listing import json_text

    store = store_for_cli()
    principal_for_cli(store, "list_releases")
    try:
        result = diff_releases(store, before, after)
    except ReleaseError as exc:
        fail(str(exc), Exit.USAGE)
    if fmt is DocFormat.json:
        sys.stdout.write(json_text(result))
        return
    out.print(f"{before} -> {after}")
    for label, count in result["counts"].items():
        out.print(f"  {label}: {count}")
    for kind, keys in result["recordings"].items():
        if keys:
            out.print(f"  {kind.replace('_', ' ')}: {', '.join(keys)}")


@app.command()
def verify(name: Annotated[str, typer.Argument(help="Release name.")]) -> None:
    """Re-hash the manifest, every audio blob and every transcript of a release; report drift (exit 1) and erasures."""
    from corpus.releases.build import ReleaseError
    from corpus.releases.verify import verify_release

    store = store_for_cli()
    principal_for_cli(store, "list_releases")
    try:
        report = verify_release(store, name)
    except ReleaseError as exc:
        fail(str(exc), Exit.USAGE)
    out.print(f"{name} ({report.release_id}): {report.checked} recording(s) re-hashed")
    for position, tombstone in report.erased:
        out.print(f"  entry {position}: erased (tombstone {tombstone})")
    for finding in report.drift:
        out.print(f"  [red]drift[/red] {finding.recording}: {finding.problem}")
    if report.ok:
        out.print("  no drift")
    else:
        sys.exit(Exit.REJECTED)


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help="Release name.")],
    fmt: Annotated[str, typer.Option("--format", help="lhotse, hf, nemo, kaldi, sctk (RTTM+STM+CTM), textgrid, webvtt, eaf (ELAN), jsonl.")],
    out_dir: Annotated[Path, typer.Option("--out", help="A new or empty folder.")],
    audio: Annotated[str, typer.Option(help="link (symlinks to the store), include (copies) or cut (a WAV per turn).")] = "link",
) -> None:
    """Materialise a release in a format speech teams use (streamed a batch of recordings at a time)."""
    from corpus.exports.pull import PullError, ReleaseDrift, pull_release
    from corpus.exports.registry import FORMATS, UnknownFormat
    from corpus.releases.build import ReleaseError

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", Exit.USAGE)
    store = store_for_cli()
    principal = principal_for_cli(store, "pull_release")
    try:
        report = pull_release(store, principal, name, fmt, out_dir, audio=audio)
    except ReleaseDrift as exc:
        fail(str(exc), Exit.FAILED)
    except (PullError, ReleaseError, UnknownFormat) as exc:
        fail(str(exc), Exit.USAGE)
    except OSError as exc:
        fail(f"cannot write the pull into {out_dir}: {fault_text(exc)}; nothing was left half-written", Exit.FAULT)
    out.print(f"pulled {name} as {fmt} ({audio} audio) into {report.out}: {report.recordings} recordings, "
              f"{report.turns} turns, {report.files} files; splits {report.splits}")
    if report.erased_skipped:
        out.print(f"  skipped {report.erased_skipped} erased recording(s)")
    if report.redacted_recordings:
        out.print(f"  PII redacted in {report.redacted_recordings} recording(s)")
