"""`turnscribe users` and `turnscribe review`.

Accounts: the first admin account may be created by whoever runs the command on the
server (there is nobody to sign in as yet; the event names the new admin and the server
account that ran it); after that `users add|list|disable|enable` need an admin's sign-in
(TURNSCRIBE_USER / TURNSCRIBE_PASSWORD, or a prompt), and `users passwd` the account's own
sign-in or an admin's. Review commands sign in and check
the right they need: ``assign`` to cut, assign, make gold items and start calibration,
``see_quality`` for the status, notices and quality. The new account's password comes from
TURNSCRIBE_NEW_PASSWORD or a confirmed prompt, never from the command line.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from store.listing import ListFormat

users_app = typer.Typer(help="Local accounts of the workbench.", no_args_is_help=True)
review_app = typer.Typer(help="Cut and assign review tasks, approve transcripts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the review stage's command groups to the root command (`turnscribe ui` is the top's: it adds the
    releases page, which lives above this floor)."""
    app.add_typer(users_app, name="users")
    app.add_typer(review_app, name="review")


def _new_password(prompt: str = "password for the new account") -> str:
    from store.console import Exit, fail

    password = os.environ.get("TURNSCRIBE_NEW_PASSWORD")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        fail("set TURNSCRIBE_NEW_PASSWORD or run interactively to choose the password", Exit.USAGE)
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Username (letters, digits, '.', '-', '_').")],
    role: Annotated[list[str], typer.Option("--role", help="admin, manager, annotator, reviewer or consumer (repeatable).")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Conflict-of-interest group, e.g. site:lyon or speaker:spk-0001 (repeatable).")] = None,
    display_name: Annotated[str, typer.Option("--display-name", help="Name shown in the workbench.")] = "",
) -> None:
    """Create a local account (the password policy: at least 10 characters, 5 different ones, not common, not the name)."""
    import getpass

    from sqlalchemy import select

    from store import models
    from store.accounts import AccountError, add_user
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli

    store = store_for_cli()
    with store.session() as session:
        bootstrap = session.scalars(select(models.User.username)).first() is None
    if bootstrap and "admin" not in role:
        fail("the store has no accounts yet: the first one must be an admin (--role admin)", Exit.USAGE)
    # nobody can sign in yet: the first admin is created in their own name (and the server account that ran it is noted)
    actor = name if bootstrap else principal_for_cli(store, "manage_users").username
    password = _new_password()
    with store.session() as session:
        try:
            user = add_user(session, name, password, list(role), display_name=display_name, groups=list(group or []),
                            actor=actor)
            if bootstrap:
                session.flush()
                from store.audit import record_event

                record_event(session, actor, "first_admin_created", f"user:{name}", {"os_user": getpass.getuser()})
        except AccountError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    out.print(f"user {user.username} added with role(s) {', '.join(sorted(set(role)))}")


@users_app.command("update")
def users_update(
    name: Annotated[str, typer.Argument(help="Username.")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Add a conflict-of-interest group, e.g. site:lyon (repeatable).")] = None,
    remove_group: Annotated[list[str] | None, typer.Option("--remove-group", help="Remove a group (repeatable).")] = None,
) -> None:
    """Change a person's conflict-of-interest groups (an admin's sign-in; audited)."""
    from store.accounts import AccountError, update_groups
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli

    if not group and not remove_group:
        fail("nothing to change: give --group or --remove-group", Exit.USAGE)
    store = store_for_cli()
    actor = principal_for_cli(store, "manage_users").username
    with store.session() as session:
        try:
            user = update_groups(session, name, add=list(group or []), remove=list(remove_group or []), actor=actor)
        except AccountError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
        out.print(f"user {name}: groups {', '.join(user.groups) or 'none'}", markup=False)


@users_app.command("list")
def users_list(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table,
) -> None:
    """List accounts, their roles, groups, calibrations and sign-in state (admins)."""
    from sqlalchemy import select

    from store import models
    from store.accounts import refused_until
    from store.console import principal_for_cli, store_for_cli
    from store.listing import Column, Listing, emit
    from review_ui.calibration import skills

    def calibration_text(calibrations: list[dict[str, str]]) -> str:
        return ", ".join(f"{c['language']}/{c['accent'] or '*'}:{c['state']}" for c in calibrations)

    store = store_for_cli()
    principal_for_cli(store, "manage_users")
    listing = Listing("users.list", [
        Column("username", "user"), Column("display_name", "name"), Column("roles", "roles"), Column("groups", "groups"),
        Column("calibrations", "calibration", calibration_text), Column("active", "active"),
        Column("failed_sign_ins", "failed sign-ins"), Column("locked_until", "locked until"),
    ])
    with store.session() as session:
        for user in session.scalars(select(models.User).order_by(models.User.username)):
            calibrations = [{"language": lang, "accent": accent or "", "state": row.state}
                            for (lang, accent), row in sorted(skills(session, user.username).items())]
            until, locked = refused_until(user, store.settings.sign_in)
            listing.add(username=user.username, display_name=user.display_name, roles=list(user.roles or []),
                        groups=list(user.groups or []), calibrations=calibrations, active=bool(user.active),
                        failed_sign_ins=int(user.failed_sign_ins or 0),
                        locked_until=f"{until:%Y-%m-%d %H:%M:%S} UTC" if locked and until is not None else "")
    emit(listing, fmt)


def _set_active(name: str, active: bool) -> None:
    from store.accounts import AccountError, set_active
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli

    store = store_for_cli()
    principal = principal_for_cli(store, "manage_users")
    with store.session() as session:
        try:
            set_active(session, principal.username, name, active)
        except AccountError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    out.print(f"user {name} {'enabled (failed sign-ins cleared, any lock lifted)' if active else 'disabled'}")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The account to disable.")]) -> None:
    """Disable an account: it can no longer sign in, and its open workbench sessions end (admins)."""
    _set_active(name, False)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="The account to enable or unlock.")]) -> None:
    """Enable an account again; also lifts a lock after too many wrong passwords (admins)."""
    _set_active(name, True)


@users_app.command("passwd")
def users_passwd(name: Annotated[str | None, typer.Argument(help="Whose password (default: the signed-in user's own).")] = None) -> None:
    """Change your own password (signed in with the current one), or, as an admin, anyone's.

    The new password comes from TURNSCRIBE_NEW_PASSWORD or a confirmed prompt.
    """
    from store.accounts import AccountError, PermissionDenied, authorize, set_password
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli

    store = store_for_cli()
    principal = principal_for_cli(store, None)  # signing in with the current password is the check for one's own
    target = name or principal.username
    if target != principal.username:
        with store.session() as session:
            try:
                authorize(session, principal, "manage_users")
            except PermissionDenied as exc:
                session.commit()
                fail(str(exc), Exit.REJECTED, label="refused")
    password = _new_password(f"new password for {target}")
    with store.session() as session:
        try:
            set_password(session, principal.username, target, password)
        except AccountError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    out.print(f"password of {target} changed")


def _protocol(store, protocol: str, version: int | None):  # type: ignore[no-untyped-def]
    from protocols.cli import protocol_for_cli

    return protocol_for_cli(store, protocol, version)


ProtocolOpt = Annotated[str, typer.Option("--protocol", help="Protocol id.")]
VersionOpt = Annotated[int | None, typer.Option("--version", help="Protocol version (default: newest).")]


@review_app.command("cut")
def review_cut(
    protocol: ProtocolOpt,
    version: VersionOpt = None,
    max_chunk_s: Annotated[float | None, typer.Option("--max-chunk-s", help="Cut longer recordings into chunks of at most this many seconds.")] = None,
    context_s: Annotated[float, typer.Option("--context-s", help="Audio either side of a chunk to listen to.")] = 5.0,
    double_share: Annotated[float, typer.Option("--double-share", help="Share of tasks annotated twice independently.")] = 0.10,
    blind_share: Annotated[float, typer.Option("--blind-share", help="Share of tasks shown without pre-annotation.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed choosing the double and blind tasks.")] = 0,
) -> None:
    """Cut accepted, pre-annotated recordings into review tasks (idempotent)."""
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli
    from review_ui.tasks import cut_tasks

    store = store_for_cli()
    principal = principal_for_cli(store, "assign")
    row, _ = _protocol(store, protocol, version)
    with store.session() as session:
        try:
            tasks = cut_tasks(session, row.pk, max_chunk_s=max_chunk_s, context_s=context_s, double_share=double_share,
                              blind_share=blind_share, seed=seed, actor=principal.username)
        except ValueError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
        recordings = len({t.recording_pk for t in tasks})
        pairs = len({t.pair_key for t in tasks if t.pair_key})
        blind = sum(1 for t in tasks if t.blind)
    out.print(f"{len(tasks)} task(s) cut from {recordings} recording(s); {pairs} double-annotated unit(s), {blind} blind task(s)")


@review_app.command("assign")
def review_assign(
    protocol: ProtocolOpt,
    version: VersionOpt = None,
    max_open: Annotated[int, typer.Option("--max-open", help="Most open tasks one person may hold.")] = 20,
    gold_share: Annotated[float, typer.Option("--gold-share", help="Share of gold items mixed into queues.")] = 0.10,
) -> None:
    """Hand open tasks to calibrated annotators (skills, workload, conflicts of interest, gold, calibration)."""
    from collections import Counter

    from store.console import out, principal_for_cli, store_for_cli
    from review_ui.assignment import AssignmentReport, AssignmentRules, assign_tasks

    store = store_for_cli()
    principal = principal_for_cli(store, "assign")
    row, _ = _protocol(store, protocol, version)
    report = AssignmentReport()
    with store.session() as session:
        tasks = assign_tasks(session, row.pk, AssignmentRules(max_open_per_person=max_open, gold_share=gold_share),
                             actor=principal.username, report=report)
        session.commit()
        per_person = Counter(t.assignee for t in tasks)
    out.print(f"{len(tasks)} task(s) assigned" + (": " + ", ".join(f"{u} {n}" for u, n in sorted(per_person.items())) if tasks else ""))
    for kept in report.kept:
        out.print(f"  conflict of interest: task {kept.task_pk} (recording {kept.recording_pk}) kept from {kept.username}: "
                  + "; ".join(kept.reasons), markup=False, soft_wrap=True)
    if report.gold_created_after_cut:
        out.print(f"  {report.gold_created_after_cut} gold item(s) made after the cut (its gold pool ran dry): their ids "
                  "follow the production tasks; the next cut adds to the pool", soft_wrap=True)
    for task_pk, why in sorted(report.unassigned.items()):
        out.print(f"  task {task_pk} not assigned: " + "; ".join(why), markup=False, soft_wrap=True)


@review_app.command("status")
def review_status(
    protocol: ProtocolOpt,
    version: VersionOpt = None,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table,
) -> None:
    """Task counts by kind and state; as a table, gold coverage per language and accent below them."""
    from store.console import principal_for_cli, store_for_cli
    from store.listing import Column, Listing, emit
    from review_ui.gold_coverage import gold_coverage
    from review_ui.tasks import task_counts

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    row, _ = _protocol(store, protocol, version)
    with store.session() as session:
        counts = task_counts(session, row.pk)
        coverage = gold_coverage(session, row.pk)
    states = ["open", "in_progress", "submitted", "sent_back", "accepted", "done"]
    states += sorted({s for _, s in counts} - set(states))
    listing = Listing("review.status", [Column("kind", "kind"), *(Column(s, s) for s in states), Column("total", "total")],
                      title=f"tasks of {row.protocol_id} v{row.version}")
    for kind in sorted({k for k, _ in counts}):
        cells = {s: counts.get((kind, s), 0) for s in states}
        listing.add(kind=kind, **cells, total=sum(cells.values()))
    emit(listing, fmt)
    if fmt is ListFormat.table:  # one document per json/csv output: the gold coverage is the table's and the Quality page's
        gold = Listing("review.gold_coverage", [Column("skill", "skill"), Column("gold_recordings", "gold recordings"),
                                                Column("gold_minutes", "gold minutes"), Column("people", "annotators"),
                                                Column("covered", "with unseen gold"), Column("uncovered", "need gold added")],
                       title="gold coverage per language/accent")
        for skill in coverage:
            gold.add(skill=skill.skill, gold_recordings=skill.gold_recordings, gold_minutes=f"{skill.gold_minutes:.2f}",
                     people=skill.people, covered=skill.covered, uncovered=", ".join(skill.uncovered) or "—")
        emit(gold, fmt)


@review_app.command("make-gold")
def review_make_gold(
    recording: Annotated[int, typer.Option("--recording", help="Recording pk whose approved transcript becomes the reference.")],
) -> None:
    """Make a recording a gold item: its approved transcript becomes the reference (mixed into queues unannounced)."""
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli
    from review_ui.calibration import make_gold

    store = store_for_cli()
    principal = principal_for_cli(store, "assign")
    with store.session() as session:
        try:
            reference = make_gold(session, principal, recording)
        except ValueError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
        out.print(f"recording {recording} is a gold item (reference revision {reference.pk})")


@review_app.command("calibrate")
def review_calibrate(
    username: Annotated[str, typer.Argument(help="The annotator to calibrate.")],
    language: Annotated[str, typer.Option("--language", help="Language code, e.g. en.")],
    accent: Annotated[str, typer.Option("--accent", help="Accent (a value of the protocol's accent dimension); empty: every accent.")] = "",
) -> None:
    """Put an annotator into calibration for a language (and accent): the next assignment gives them a calibration set."""
    from store.console import Exit, fail, out, principal_for_cli, store_for_cli
    from review_ui.calibration import start_calibration

    store = store_for_cli()
    principal = principal_for_cli(store, "assign")
    with store.session() as session:
        try:
            start_calibration(session, principal, username, language, accent)
        except ValueError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    out.print(f"{username} is calibrating for {language}/{accent or '*'}")


@review_app.command("notices")
def review_notices(limit: Annotated[int, typer.Option(help="How many of the newest notices.")] = 20) -> None:
    """Notices for managers: failed calibration sets, people returned to calibration, work without a reviewer."""
    from store.console import out, principal_for_cli, store_for_cli
    from review_ui.calibration import manager_notices

    store = store_for_cli()
    principal = principal_for_cli(store, "see_quality")
    with store.session() as session:
        notices = manager_notices(session, principal, limit)
    for notice in notices:
        out.print(f"{notice['at']:%Y-%m-%d %H:%M}  {notice['message']}")
    if not notices:
        out.print("no notices")


@review_app.command("quality")
def review_quality(protocol: ProtocolOpt, version: VersionOpt = None) -> None:
    """Gold accuracy per annotator and the corpus-level quality summary."""
    from rich.table import Table

    from store.console import out, principal_for_cli, store_for_cli
    from review_ui.automation_bias import automation_bias
    from review_ui.quality import corpus_summary, gold_accuracy

    def fmt(value: object) -> str:
        return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    row, _ = _protocol(store, protocol, version)
    with store.session() as session:
        gold = gold_accuracy(session, row.pk)
        summary = corpus_summary(session, row.pk)
        bias = automation_bias(session, row.pk)
    table = Table("annotator", "gold items", "WER", "speaker error", "boundary (s)", title="gold accuracy")
    for g in gold:
        table.add_row(g.annotator, str(g.items), fmt(g.wer), fmt(g.speaker_error), fmt(g.boundary_s))
    out.print(table)

    def with_ci(ratio) -> str:  # type: ignore[no-untyped-def]
        interval = f" [{ratio.low:.3f}, {ratio.high:.3f}]" if ratio.low is not None else ""
        return f"{fmt(ratio.value)}{interval}"

    table = Table("annotator", "shown items", "WER shown", "model errors accepted", "blind items", "WER blind",
                  "model errors made blind", title="automation bias (gold items; 95% intervals)")
    for f in [bias.overall, *bias.per_annotator]:
        table.add_row(f.annotator, str(f.shown.items), with_ci(f.shown.wer), with_ci(f.shown.model_errors_repeated),
                      str(f.blind.items), with_ci(f.blind.wer), with_ci(f.blind.model_errors_repeated))
    out.print(table)
    out.print(f"automation bias: {bias.overall.verdict}")
    for key, value in summary.items():
        out.print(f"{key:<26} {fmt(value)}")
