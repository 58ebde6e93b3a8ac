"""`turnscribe governance`: erasure, retention purge, PII detection, consent history and the audit log.

Every command signs in (TURNSCRIBE_USER / TURNSCRIBE_PASSWORD) and checks its permission
first: erase, purge and delete-blobs (which finishes an erasure whose blob files could not
all be deleted) are the managers'; the audit log and consent history are for
managers and admins; PII detection needs the review right.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from protocols.cli import protocol_for_cli
from store.console import Exit, err, fail, out, principal_for_cli, store_for_cli
from store.listing import ListFormat

app = typer.Typer(help="Consent, erasure, retention, PII and audit.", no_args_is_help=True)
pii_app = typer.Typer(help="Personal information in transcripts.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent history.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log: `audit --verify`, `audit head`, `audit tail`, `audit show`.")
app.add_typer(pii_app, name="pii")
app.add_typer(consent_app, name="consent")
app.add_typer(audit_app, name="audit")


class ErasureReason(str, Enum):
    """Fixed reasons, so a tombstone can never carry free text (which could name the person)."""

    request = "erasure request"
    legal = "legal obligation"
    error = "collected in error"


def _print_erasure(report: Any, title: str) -> None:
    from rich.table import Table

    table = Table("what", "rows", title=title, title_justify="left")
    for key, value in report.counts.items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if report.releases_affected:
        out.print(f"releases that contained it (retrain from a new release): {', '.join(report.releases_affected)}")
    else:
        out.print("no past release contained it")
    _print_pulls(report.pulls)


def _print_pulls(pulls: list[Any]) -> None:
    """The pulls an erasure reached: rewritten under the home, or elsewhere (ask their holders to delete them)."""
    from rich.table import Table

    if not pulls:
        return
    table = Table("release", "format", "folder", "host", "pulled by", "pulled at", "done", title="Pulls of those releases",
                  title_justify="left")
    for p in pulls:
        table.add_row(p.release, p.format, p.path, p.host, p.pulled_by, p.pulled_at, p.action + (f": {p.error}" if p.error else ""))
    out.print(table)
    elsewhere = [p for p in pulls if p.action == "elsewhere"]
    if elsewhere:
        out.print(f"{len(elsewhere)} pull(s) outside this home still hold the erased data: ask who pulled them to delete them")


def _blob_failures(failed: dict[str, str], command: str) -> None:
    """Blob files that could not be deleted: say so on stderr with the command that finishes the job, exit 4 (a fault)."""
    if not failed:
        return
    for why in failed.values():
        err.print(f"[red]could not delete[/red] {why}", soft_wrap=True, highlight=False)
    err.print(f"[red]{len(failed)} blob file(s) are still on disk.[/red] Fix the cause, then run:", soft_wrap=True)
    err.print(command, soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(Exit.FAULT)


def _as_json(report: Any) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(report))


@app.command()
def erase(
    speaker: Annotated[str, typer.Option("--speaker", help="Pseudonymous speaker id to erase.")],
    reason: Annotated[ErasureReason, typer.Option(help="Why (recorded in the tombstone).")] = ErasureReason.request,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would go; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation at a terminal.")] = False,
) -> None:
    """Erase a speaker: every recording they are in, its transcripts and derived data, their consent and metadata."""
    import sys

    from corpus.governance.erasure import ErasureError, erase_speaker

    store = store_for_cli()
    principal = principal_for_cli(store, "erase")
    try:
        if not dry_run and not yes and sys.stdin.isatty():
            plan = erase_speaker(store, principal, speaker, reason=reason.value, dry_run=True)
            _print_erasure(plan, f"Erasing {speaker} will remove (this cannot be undone)")
            typer.confirm("Erase?", abort=True)
        report = erase_speaker(store, principal, speaker, reason=reason.value, dry_run=dry_run)
    except ErasureError as exc:
        fail(str(exc), Exit.USAGE)
    if as_json:
        out.print_json(_as_json(report))
    elif dry_run:
        _print_erasure(report, f"Dry run: erasing {speaker} would remove")
        out.print(f"{report.counts.get('blobs', 0)} blob file(s) would be deleted; nothing was changed")
    else:
        _print_erasure(report, f"Erased {speaker} (tombstone {report.tombstone_id})")
        out.print(f"{report.blobs_deleted} blob file(s) deleted")
    _blob_failures(report.blobs_failed, report.finish_command())


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go and why; change nothing.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Plan for this date, YYYY-MM-DD (dry runs only).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Erase the recordings the protocol's retention period or a withdrawn or expired consent no longer allows."""
    from corpus.governance.retention import purge as run_purge

    today = dt.date.today()
    if as_of is not None:
        if not dry_run:
            fail("--as-of plans ahead and needs --dry-run; a real purge uses today's date", Exit.USAGE)
        try:
            today = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}", Exit.USAGE)
    store = store_for_cli()
    principal = principal_for_cli(store, "purge")
    report = run_purge(store, principal, today=today, dry_run=dry_run)
    failed = {d: why for e in report.erasures for d, why in e.blobs_failed.items()} | report.orphans_failed
    finish = f"turnscribe governance delete-blobs {' '.join(sorted(failed))}"
    if as_json:
        out.print_json(json.dumps({"dry_run": dry_run, "as_of": today.isoformat(), "orphan_blobs": report.orphan_blobs,
                                   "items": [i.__dict__ for i in report.items],
                                   "erasures": [json.loads(_as_json(e)) for e in report.erasures]}))
        _blob_failures(failed, finish)
        return
    if report.orphan_blobs:
        out.print(f"{report.orphan_blobs} orphaned blob file(s) no record refers to "
                  f"{'would be' if dry_run else 'were'} deleted")
    if not report.items:
        out.print(f"nothing to purge on {today}")
        _blob_failures(failed, finish)
        return
    from rich.table import Table

    table = Table("recording", "file", "reason", "why", title=f"{'Would purge' if dry_run else 'Purged'} on {today}",
                  title_justify="left")
    for item in report.items:
        table.add_row(str(item.recording_pk), item.source_name, item.reason, item.why)
    out.print(table)
    for erasure in report.erasures:
        label = "dry run" if dry_run else f"tombstone {erasure.tombstone_id}"
        _print_erasure(erasure, f"{erasure.reason} ({label})")
    if dry_run:
        out.print("nothing was changed (dry run)")
    _blob_failures(failed, finish)


@app.command("delete-blobs")
def delete_blobs_cmd(
    digests: Annotated[list[str], typer.Argument(help="The sha256 of each blob file an erasure could not delete.")],
) -> None:
    """Finish an erasure: delete the named blob files, if no record refers to them any more (exit 4 if one resists)."""
    import re

    from corpus.governance.erasure import delete_blobs

    bad = [d for d in digests if not re.fullmatch(r"[0-9a-f]{64}", d)]
    if bad:
        fail(f"not a blob digest (64 lowercase hex characters): {', '.join(bad)}", Exit.USAGE)
    store = store_for_cli()
    principal = principal_for_cli(store, "erase")
    deletion = delete_blobs(store, set(digests))
    from store.audit import record_event

    with store.session() as session:
        record_event(session, principal.username, "delete_blobs", "blobs", {"deleted": deletion.deleted,
                                                                            "failed": len(deletion.failed)})
        session.commit()
    kept = len(set(digests)) - deletion.deleted - len(deletion.failed)
    out.print(f"{deletion.deleted} blob file(s) deleted" + (f"; {kept} kept (still referenced, or already gone)" if kept else ""))
    _blob_failures(deletion.failed, f"turnscribe governance delete-blobs {' '.join(sorted(deletion.failed))}")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    verify: Annotated[bool, typer.Option("--verify", help="Check the whole hash chain.")] = False,
    expect_head: Annotated[str | None, typer.Option(help="The head hash noted earlier (`audit head`; detects cut-off entries).")] = None,
) -> None:
    """Verify the audit log's hash chain (exit 1 when it is broken)."""
    if ctx.invoked_subcommand is not None:
        return
    if not verify:
        out.print(ctx.get_help())
        raise typer.Exit(Exit.USAGE)
    from corpus.governance.audit_verify import verify_chain

    store = store_for_cli()
    principal_for_cli(store, "audit")
    with store.session() as session:
        report = verify_chain(session)
    if not report.ok:
        fail(report.summary(), Exit.REJECTED, label="audit")
    if expect_head is not None:
        from sqlalchemy import select

        from store import models

        with store.session() as session:
            present = session.scalar(select(models.AuditEvent.pk).where(models.AuditEvent.entry_hash == expect_head))
        if present is None:
            fail(f"audit chain BROKEN: the expected head {expect_head} is not in the log (entries were cut off the end)",
                 Exit.REJECTED, label="audit")
    out.print(report.summary())


@audit_app.command("head")
def audit_head() -> None:
    """The newest entry's hash, to keep outside the database and check later with `audit --verify --expect-head`."""
    from sqlalchemy import select

    from store import models

    store = store_for_cli()
    principal_for_cli(store, "audit")
    ev = models.AuditEvent
    with store.session() as session:
        head = session.execute(select(ev.pk, ev.at, ev.entry_hash).order_by(ev.pk.desc()).limit(1)).first()
    if head is None:
        fail("the audit log is empty", Exit.REJECTED)
    typer.echo(head.entry_hash)
    err.print(f"entry {head.pk} at {str(head.at)[:19]} (verify the chain up to it with `audit --verify`)")


def _print_events(events: list[Any], fmt: ListFormat) -> None:
    from store.listing import Column, Listing, emit

    listing = Listing("governance.audit", [
        Column("pk", "pk"), Column("at", "at", lambda v: v[:19].replace("T", " ")), Column("actor", "actor"),
        Column("action", "action"), Column("subject", "subject"),
        Column("details", "details", lambda v: json.dumps(v, ensure_ascii=False)),
    ], title="Audit log")
    for e in events:
        listing.add(pk=e.pk, at=e.at.isoformat(timespec="seconds"), actor=e.actor, action=e.action, subject=e.subject,
                    details=e.details)
    emit(listing, fmt)


FormatOpt = Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")]


@audit_app.command("tail")
def audit_tail(
    n: Annotated[int, typer.Option("-n", min=1, help="How many of the newest entries.")] = 20,
    fmt: FormatOpt = ListFormat.table,
) -> None:
    """The newest entries of the audit log."""
    from sqlalchemy import select

    from store import models

    store = store_for_cli()
    principal_for_cli(store, "audit")
    with store.session() as session:
        events = session.scalars(select(models.AuditEvent).order_by(models.AuditEvent.pk.desc()).limit(n)).all()
    _print_events(list(reversed(events)), fmt)


@audit_app.command("show")
def audit_show(
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. recording:12.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. erase.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 200,
    fmt: FormatOpt = ListFormat.table,
) -> None:
    """Audit entries matching every filter given, oldest first."""
    from sqlalchemy import select

    from store import models

    store = store_for_cli()
    principal_for_cli(store, "audit")
    query = select(models.AuditEvent)
    for column, value in ((models.AuditEvent.subject, subject), (models.AuditEvent.action, action),
                          (models.AuditEvent.actor, actor)):
        if value is not None:
            query = query.where(column == value)
    with store.session() as session:
        events = session.scalars(query.order_by(models.AuditEvent.pk.desc()).limit(limit)).all()
    _print_events(list(reversed(events)), fmt)


@pii_app.command("detect")
def pii_detect(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    names: Annotated[Path | None, typer.Option("--names", help="Names to find, one per line.", dir_okay=False)] = None,
) -> None:
    """Mark phone numbers, e-mail addresses, spelled numbers and listed names in the revisions a release may take."""
    from corpus.governance.pii import PiiError, detect_protocol, load_names

    try:
        name_list = load_names(names) if names is not None else []
    except PiiError as exc:
        fail(str(exc), Exit.USAGE)
    store = store_for_cli()
    principal = principal_for_cli(store, "review")
    row, spec = protocol_for_cli(store, protocol, version)
    with store.session() as session:
        revisions, added = detect_protocol(session, row.pk, name_list, actor=principal.username)
        session.commit()
    out.print(f"pii: {revisions} revision(s) of {spec.id} v{spec.version} scanned, {added} new span(s) marked"
              f"{'' if name_list else ' (no names list given: names not searched)'}")


@pii_app.command("show")
def pii_show(revision: Annotated[int, typer.Option("--revision", help="Transcript revision pk.")]) -> None:
    """The personal-information spans of a revision (with those carried from its ancestors) and their words."""
    from rich.table import Table

    from store import models
    from corpus.governance.pii import PiiError, spans_for_revision, turn_tokens

    store = store_for_cli()
    principal_for_cli(store, "review")
    with store.session() as session:
        try:
            spans = spans_for_revision(session, revision)
        except PiiError as exc:
            fail(str(exc), Exit.USAGE)
        turns = session.get(models.TranscriptRevision, revision).turns or []
    table = Table("turn", "words", "kind", "source", "text", title=f"PII in revision {revision}", title_justify="left")
    for s in spans:
        words = " ".join(turn_tokens(turns[s.turn_index])[s.word_start : s.word_end])
        table.add_row(str(s.turn_index), f"{s.word_start}-{s.word_end}", s.kind, s.source, words)
    out.print(table)


@consent_app.command("show")
def consent_show(speaker: Annotated[str, typer.Option("--speaker", help="Pseudonymous speaker id.")]) -> None:
    """A speaker's consent history, oldest first; the record in force today per consent id is marked with its state."""
    from rich.table import Table
    from sqlalchemy import select

    from collection.consent import consent_histories, judge_consent
    from store import models

    store = store_for_cli()
    principal_for_cli(store, "audit")
    with store.session() as session:
        rows = session.scalars(select(models.Consent).where(models.Consent.speaker_id == speaker)
                               .order_by(models.Consent.pk)).all()
        histories = consent_histories(session, {c.consent_id for c in rows})
    if not rows:
        fail(f"no consent recorded for speaker {speaker!r} (never imported, or erased)", Exit.USAGE)
    state: dict[int, str] = {}
    for consent_id, history in histories.items():
        verdict = judge_consent(history, consent_id, speaker, on=dt.date.today())
        if verdict.record is not None:
            state[verdict.record.pk] = "yes" if verdict.ok else ", ".join(sorted(c.value for c in verdict.codes))
    table = Table("consent", "form", "permitted uses", "granted", "expires", "withdrawn", "recorded", "source", "in force",
                  title=f"Consent history of {speaker}", title_justify="left")
    for c in rows:
        table.add_row(c.consent_id, c.form_version, ", ".join(c.permitted_uses), str(c.granted_on), str(c.expires_on or ""),
                      str(c.withdrawn_on or ""), str(c.recorded_at)[:19], c.source, state.get(c.pk, ""))
    out.print(table)
