"""`turnscribe users`, `turnscribe review` and `turnscribe ui`, through the real command tree."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from store import models
from turnscribe import app

runner = CliRunner()


def _env(rs, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    # no delay after a wrong password here (tests/store/test_accounts.py checks the real policy)
    return {"TURNSCRIBE_HOME": str(rs.store.settings.home), "TURNSCRIBE_DATABASE_URL": rs.store.settings.database_url,
            "TURNSCRIBE_USER": "", "TURNSCRIBE_PASSWORD": "", "TURNSCRIBE_SIGN_IN_FIRST_DELAY_S": "0", **extra}


def _invoke(rs, *args: str, **env: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=_env(rs, **env))


BOSS = {"TURNSCRIBE_USER": "boss", "TURNSCRIBE_PASSWORD": "staple-river-cloud"}


def _actions(rs, subject: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        return [(e.actor, e.action) for e in session.scalars(
            select(models.AuditEvent).where(models.AuditEvent.subject == subject).order_by(models.AuditEvent.pk))]


def test_users_add_bootstraps_the_first_account_then_needs_an_admin(review_store) -> None:
    rs = review_store
    not_admin = _invoke(rs, "users", "add", "ann", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="lantern-quiet-88")
    assert not_admin.exit_code == 2 and "must be an admin" in not_admin.output
    first = _invoke(rs, "users", "add", "boss", "--role", "admin", TURNSCRIBE_NEW_PASSWORD="staple-river-cloud")
    assert first.exit_code == 0, first.output
    # nobody could sign in yet: the first admin is recorded as creating itself, with the server account that ran it
    assert _actions(rs, "user:boss") == [("boss", "user_added"), ("boss", "first_admin_created")]
    refused = _invoke(rs, "users", "add", "ann", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="lantern-quiet-88")
    assert refused.exit_code == 1 and "sign in" in refused.output
    wrong = _invoke(rs, "users", "add", "ann", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="lantern-quiet-88",
                    TURNSCRIBE_USER="boss", TURNSCRIBE_PASSWORD="nope-nope")
    assert wrong.exit_code == 1
    ok = _invoke(rs, "users", "add", "ann", "--role", "annotator", "--role", "reviewer", "--group", "site:lyon",
                 "--display-name", "Ann Example", TURNSCRIBE_NEW_PASSWORD="lantern-quiet-88", **BOSS)
    assert ok.exit_code == 0, ok.output
    assert _actions(rs, "user:ann") == [("boss", "user_added")]
    bad_role = _invoke(rs, "users", "add", "x", "--role", "wizard", TURNSCRIBE_NEW_PASSWORD="x-password", **BOSS)
    assert bad_role.exit_code == 2 and "unknown role" in bad_role.output
    short = _invoke(rs, "users", "add", "y", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="short", **BOSS)
    assert short.exit_code == 2 and "at least 10" in short.output
    named = _invoke(rs, "users", "add", "yvonne", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="yvonne-2026-pw", **BOSS)
    assert named.exit_code == 2 and "must not contain the username" in named.output
    with rs.store.session() as session:
        ann = session.get(models.User, "ann")
        assert ann.roles == ["annotator", "reviewer"] and ann.groups == ["site:lyon"] and ann.display_name == "Ann Example"
        assert "lantern" not in ann.password_hash
        assert session.get(models.User, "yvonne") is None
    anonymous = _invoke(rs, "users", "list")
    assert anonymous.exit_code == 1 and "sign in" in anonymous.output
    not_allowed = _invoke(rs, "users", "list", TURNSCRIBE_USER="ann", TURNSCRIBE_PASSWORD="lantern-quiet-88")
    assert not_allowed.exit_code == 1 and "may not manage users" in not_allowed.output
    assert ("ann", "permission_denied") in _actions(rs, "permission:manage_users")
    listing = _invoke(rs, "users", "list", **BOSS)
    assert listing.exit_code == 0 and "ann" in listing.output and "site:lyon" in listing.output

    admin = BOSS
    updated = _invoke(rs, "users", "update", "ann", "--group", "speaker:spk-0001", "--remove-group", "site:lyon", **admin)
    assert updated.exit_code == 0 and "user ann: groups speaker:spk-0001" in updated.output, updated.output
    not_admin = _invoke(rs, "users", "update", "ann", "--group", "site:paris",
                        TURNSCRIBE_USER="ann", TURNSCRIBE_PASSWORD="lantern-quiet-88")
    assert not_admin.exit_code == 1
    malformed = _invoke(rs, "users", "update", "ann", "--group", "paris", **admin)
    assert malformed.exit_code == 2 and "<kind>:<value>" in malformed.output
    assert _invoke(rs, "users", "update", "nobody", "--group", "site:x", **admin).exit_code == 2
    assert _invoke(rs, "users", "update", "ann", **admin).exit_code == 2  # nothing to change
    with rs.store.session() as session:
        assert session.get(models.User, "ann").groups == ["speaker:spk-0001"]
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "user_groups_changed")).all()
    assert [(e.actor, e.details["before"], e.details["after"]) for e in events] == [("boss", ["site:lyon"], ["speaker:spk-0001"])]


def test_users_disable_enable_and_passwd(review_store) -> None:
    rs = review_store
    assert _invoke(rs, "users", "add", "boss", "--role", "admin", TURNSCRIBE_NEW_PASSWORD="staple-river-cloud").exit_code == 0
    assert _invoke(rs, "users", "add", "ann", "--role", "annotator", TURNSCRIBE_NEW_PASSWORD="lantern-quiet-88",
                   **BOSS).exit_code == 0
    ann = {"TURNSCRIBE_USER": "ann", "TURNSCRIBE_PASSWORD": "lantern-quiet-88"}

    # one's own password: signed in with the current one; the new one meets the policy
    weak = _invoke(rs, "users", "passwd", TURNSCRIBE_NEW_PASSWORD="aaaaaaaaaaaa", **ann)
    assert weak.exit_code == 2 and "different characters" in weak.output
    own = _invoke(rs, "users", "passwd", TURNSCRIBE_NEW_PASSWORD="meadow-copper-41", **ann)
    assert own.exit_code == 0 and "password of ann changed" in own.output
    assert _invoke(rs, "users", "passwd", TURNSCRIBE_NEW_PASSWORD="meadow-copper-42", **ann).exit_code == 1  # old one gone
    ann["TURNSCRIBE_PASSWORD"] = "meadow-copper-41"
    others = _invoke(rs, "users", "passwd", "boss", TURNSCRIBE_NEW_PASSWORD="taken-over-9999", **ann)
    assert others.exit_code == 1 and "may not manage users" in others.output
    reset = _invoke(rs, "users", "passwd", "ann", TURNSCRIBE_NEW_PASSWORD="reset-by-admin-7", **BOSS)
    assert reset.exit_code == 0, reset.output
    ann["TURNSCRIBE_PASSWORD"] = "reset-by-admin-7"

    assert _invoke(rs, "users", "disable", "ann", **ann).exit_code == 1  # an annotator may not
    assert _invoke(rs, "users", "disable", "ann", **BOSS).exit_code == 0
    assert _invoke(rs, "users", "passwd", TURNSCRIBE_NEW_PASSWORD="while-disabled-1", **ann).exit_code == 1
    last = _invoke(rs, "users", "disable", "boss", **BOSS)
    assert last.exit_code == 2 and "only enabled admin" in last.output
    assert _invoke(rs, "users", "enable", "ann", **BOSS).exit_code == 0
    assert _invoke(rs, "users", "passwd", TURNSCRIBE_NEW_PASSWORD="after-enable-22", **ann).exit_code == 0
    assert _invoke(rs, "users", "disable", "ghost", **BOSS).exit_code == 2

    changes = [(actor, action) for actor, action in _actions(rs, "user:ann")
               if action in ("password_changed", "user_disabled", "user_enabled")]
    assert changes == [("ann", "password_changed"), ("boss", "password_changed"), ("boss", "user_disabled"),
                       ("boss", "user_enabled"), ("ann", "password_changed")]


def test_review_cut_assign_status_and_approve_demo(review_store) -> None:
    rs = review_store
    rs.add_user("mgr", "manager")
    rs.add_user("ann", "annotator")
    rs.add_user("ann2", "annotator")
    rs.calibrate("ann")
    rs.calibrate("ann2")
    rs.add_user("rev1", "reviewer")
    signed = {"TURNSCRIBE_USER": "mgr", "TURNSCRIBE_PASSWORD": "correct horse battery"}

    refused = _invoke(rs, "review", "cut", "--protocol", "en-dialogue-accents",
                      TURNSCRIBE_USER="ann", TURNSCRIBE_PASSWORD="correct horse battery")
    assert refused.exit_code == 1 and "may not assign" in refused.output
    unknown = _invoke(rs, "review", "cut", "--protocol", "nope", **signed)
    assert unknown.exit_code == 2
    bad = _invoke(rs, "review", "cut", "--protocol", "en-dialogue-accents", "--double-share", "1.5", **signed)
    assert bad.exit_code == 2 and "double_share" in bad.output

    cut = _invoke(rs, "review", "cut", "--protocol", "en-dialogue-accents", "--max-chunk-s", "15", "--double-share", "0.2",
                  "--blind-share", "0.2", **signed)
    assert cut.exit_code == 0, cut.output
    with rs.store.session() as session:
        n_tasks = len(session.scalars(select(models.Task)).all())
    assert f"{n_tasks} task(s) cut from 6 recording(s)" in cut.output
    with rs.store.session() as session:  # ann recorded dlg001: the report says so
        recording = session.get(models.Recording, rs.recording_pks[0])
        recording.declared = {**recording.declared, "recorded_by": "ann"}
        session.commit()
    assign = _invoke(rs, "review", "assign", "--protocol", "en-dialogue-accents", **signed)
    unassigned = assign.output.count(" not assigned: ")
    assert assign.exit_code == 0 and f"{n_tasks - unassigned} task(s) assigned" in assign.output and "ann " in assign.output
    assert f"(recording {rs.recording_pks[0]}) kept from ann: recorded the session" in assign.output
    # a chunk of dlg001 that is double-annotated: ann recorded it, ann2 holds its other task
    assert unassigned and "not assigned: ann: conflict of interest (recorded the session); ann2: holds the other task of the pair" in assign.output

    status = _invoke(rs, "review", "status", "--protocol", "en-dialogue-accents", **signed)
    assert status.exit_code == 0, status.output
    assert "annotate" in status.output and f"│ {n_tasks}" in status.output
    assert "gold coverage per language/accent" in status.output and "en/*" in status.output  # ann and ann2: no gold yet

    gone = _invoke(rs, "review", "approve-demo", "--protocol", "en-dialogue-accents",
                   TURNSCRIBE_USER="rev1", TURNSCRIBE_PASSWORD="correct horse battery")
    assert gone.exit_code == 2 and "No such command" in gone.output  # nobody approves work nobody did
    with rs.store.session() as session:
        assert not session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.stage == "approved")).all()


def test_ui_command_calls_serve(review_store, monkeypatch: pytest.MonkeyPatch) -> None:
    import review_ui.serve
    from corpus.releases.workbench import RELEASES_PAGE

    calls = []
    monkeypatch.setattr(review_ui.serve, "serve", lambda host, port, pages: calls.append((host, port, pages)) or 0)
    result = _invoke(review_store, "ui", "--port", "8601")
    assert result.exit_code == 0 and calls == [("127.0.0.1", 8601, (RELEASES_PAGE,))]
    help_text = runner.invoke(app, ["--help"]).output
    assert all(group in help_text for group in ("users", "review", "ui"))


def test_the_workbench_runs_without_a_full_garbage_collection_after_every_script_run() -> None:
    """Streamlit's default gc.collect(2) after each run cost ~25 ms of server CPU per editor save (ui_bench part 5)."""
    from review_ui.serve import streamlit_command

    command = streamlit_command("127.0.0.1", 8601)
    assert command[command.index("--runner.postScriptGC") + 1] == "false"
    assert command[command.index("--server.fileWatcherType") + 1] == "none"


def test_gold_calibration_notices_and_quality_commands(review_store) -> None:
    from tests.review_ui.helpers import approve_directly, submit, turn

    rs = review_store
    rs.add_user("mgr", "manager")
    rs.add_user("new", "annotator")
    signed = {"TURNSCRIBE_USER": "mgr", "TURNSCRIBE_PASSWORD": "correct horse battery"}
    pk = rs.recording_pks[0]
    not_yet = _invoke(rs, "review", "make-gold", "--recording", str(pk), **signed)
    assert not_yet.exit_code == 2 and "no approved transcript" in not_yet.output
    with rs.store.session() as session:
        approve_directly(session, pk, [turn("A", 0.0, 2.0, "hello there")])
        session.commit()
    gold = _invoke(rs, "review", "make-gold", "--recording", str(pk), **signed)
    assert gold.exit_code == 0 and "is a gold item" in gold.output
    calibrate = _invoke(rs, "review", "calibrate", "new", "--language", "en", "--accent", "west_midlands", **signed)
    assert calibrate.exit_code == 0 and "new is calibrating for en/west_midlands" in calibrate.output
    assert _invoke(rs, "review", "calibrate", "ghost", "--language", "en", **signed).exit_code == 2
    assert _invoke(rs, "review", "notices", **signed).output.strip() == "no notices"
    with rs.store.session() as session:  # "new" did the gold item: "their" for "there", 1 of 2 words; speakers and bounds right
        task = models.Task(kind="gold", recording_pk=pk, assignee="new", state="submitted", details={})
        session.add(task)
        session.flush()
        submit(session, task, [turn("A", 0.0, 2.0, "hello their")])
        session.commit()
    quality = _invoke(rs, "review", "quality", "--protocol", "en-dialogue-accents", **signed)
    assert quality.exit_code == 0, quality.output
    tables: list[list[list[str]]] = [[]]  # the body rows of each printed table, in order
    for line in quality.output.splitlines():
        if line.startswith("│"):
            tables[-1].append([cell.strip() for cell in line.strip("│ ").split("│")])
        elif line.startswith("└"):
            tables.append([])
    assert tables[0] == [["new", "1", "0.500", "0.000", "0.000"]], quality.output  # gold accuracy
    assert tables[1] == [["all", "1", "0.500", "0.000", "0", "—", "—"], ["new", "1", "0.500", "0.000", "0", "—", "—"]]
    summary = dict(line.split(maxsplit=1) for line in quality.output.splitlines() if line and line[0].isalpha() and " " in line)
    assert {k: summary[k] for k in ("gold_items", "gold_wer", "gold_speaker_error", "double_annotated", "agreement_alpha",
                                    "annotators", "reviewers", "approved_recordings")} == {
        "gold_items": "1", "gold_wer": "0.500", "gold_speaker_error": "0.000", "double_annotated": "0",
        "agreement_alpha": "—", "annotators": "1", "reviewers": "1", "approved_recordings": "1"}, quality.output
    assert "automation bias: too few items to conclude" in quality.output
    denied = _invoke(rs, "review", "quality", "--protocol", "en-dialogue-accents",
                     TURNSCRIBE_USER="new", TURNSCRIBE_PASSWORD="correct horse battery")
    assert denied.exit_code == 1
