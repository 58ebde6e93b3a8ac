"""The audit log's hash chain on SQLite and PostgreSQL: appends link up, tampering is named."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from store import models
from store.audit import GENESIS, LEGACY_GENESIS, blank_event, link_hash, record_event
from corpus.governance.audit_verify import verify_chain
from store.db import Store, migrate, open_store
from store.settings import Settings


def _append(store: Store, n: int, actor: str = "alice") -> list[int]:
    pks = []
    for i in range(n):
        with store.session() as session:
            event = record_event(session, actor, "edit", f"task:{i}", {"n": i, "note": "café ☕", "f": 0.1 * i})
            session.commit()
            pks.append(event.pk)
    return pks


def _verify(store: Store):  # type: ignore[no-untyped-def]
    with store.session() as session:
        return verify_chain(session)


def _sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_appends_form_one_chain_that_verifies(store: Store) -> None:
    pks = _append(store, 3)
    with store.session() as session:  # several events in one transaction chain to each other too
        a = record_event(session, "bob", "submit", "task:9", {})
        b = record_event(session, "bob", "review", "task:9", {"verdict": "ok"})
        session.commit()
        assert b.prev_hash == a.entry_hash
        events = session.scalars(select(models.AuditEvent).order_by(models.AuditEvent.pk)).all()
    assert events[0].prev_hash == GENESIS
    for before, after in zip(events, events[1:]):
        assert after.prev_hash == before.entry_hash
        assert after.entry_hash == link_hash(after.prev_hash, after.content_digest)
    report = _verify(store)
    assert report.ok, report.problem
    assert (report.chained, report.legacy, report.head) == (5, 0, events[-1].entry_hash)
    assert [e.pk for e in events][:3] == pks


def test_changed_details_are_detected(store: Store) -> None:
    pks = _append(store, 4)
    _sql(store, "UPDATE audit_events SET details = :d WHERE pk = :pk", d='{"n": 99}', pk=pks[2])
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[2]
    assert "content changed" in report.problem


def test_changed_actor_or_time_is_detected(store: Store) -> None:
    pks = _append(store, 3)
    _sql(store, "UPDATE audit_events SET actor = 'mallory' WHERE pk = :pk", pk=pks[1])
    assert _verify(store).broken_pk == pks[1]


def test_deleted_entry_is_detected_at_the_entry_after_it(store: Store) -> None:
    pks = _append(store, 4)
    _sql(store, "DELETE FROM audit_events WHERE pk = :pk", pk=pks[1])
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[2]
    assert "deleted" in report.problem


def test_deleting_the_first_entry_is_detected(store: Store) -> None:
    pks = _append(store, 3)
    _sql(store, "DELETE FROM audit_events WHERE pk = :pk", pk=pks[0])
    report = _verify(store)
    assert report.broken_pk == pks[1] and "does not start" in report.problem


def test_reordered_entries_are_detected(store: Store) -> None:
    pks = _append(store, 4)
    _sql(store, "UPDATE audit_events SET pk = -1 WHERE pk = :pk", pk=pks[1])
    _sql(store, "UPDATE audit_events SET pk = :a WHERE pk = :b", a=pks[1], b=pks[2])
    _sql(store, "UPDATE audit_events SET pk = :b WHERE pk = -1", b=pks[2])
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[1]
    assert "reordered" in report.problem


@pytest.fixture
def store_before_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store migrated only to 0007 (audit hash columns nullable, no sign-in throttle), on both databases."""
    from tests.conftest import _postgres_database

    home = tmp_path / "old-home"
    url = (_postgres_database(request.getfixturevalue("postgres")) if request.param == "postgresql"
           else f"sqlite:///{home / 'turnscribe.db'}")
    opened = open_store(Settings(home=home, database_url=url), upgrade=False)
    migrate(opened.engine, "0007")
    yield opened
    opened.close()


def _insert_unchained(store: Store, subject: str, actor: str = "old") -> None:
    _sql(store, "INSERT INTO audit_events (at, actor, action, subject, details) VALUES (:at, :actor, 'ingest_accepted', :s, '{}')",
         at=models.utcnow(), actor=actor, s=subject)


def _append_raw(store: Store, n: int) -> None:
    """Chained events the way record_event wrote them before 0008, without touching tables that changed since."""
    for i in range(n):
        with store.session() as session:
            record_event(session, "alice", "edit", f"task:{i}", {"n": i})
            session.commit()


@pytest.mark.parametrize("store_before_0008", ["sqlite", "postgresql"], indirect=True)
def test_migration_0008_seals_a_legacy_prefix_and_keeps_the_chain_and_its_head(store_before_0008: Store) -> None:
    for i in range(2):
        _insert_unchained(store_before_0008, f"recording:{i}")
    _append_raw(store_before_0008, 2)
    with store_before_0008.engine.connect() as conn:
        head_before = conn.execute(text("SELECT entry_hash FROM audit_events ORDER BY pk DESC LIMIT 1")).scalar()
    migrate(store_before_0008.engine)
    report = _verify(store_before_0008)
    assert report.ok, report.problem
    assert (report.legacy, report.chained, report.head) == (2, 4, head_before)
    with store_before_0008.session() as session:
        first = session.scalars(select(models.AuditEvent).order_by(models.AuditEvent.pk)).first()
        assert first.prev_hash == LEGACY_GENESIS
    _sql(store_before_0008, "UPDATE audit_events SET actor = 'mallory' WHERE subject = 'recording:1'")  # sealed rows are checked too
    assert "content changed" in _verify(store_before_0008).problem


@pytest.mark.parametrize("store_before_0008", ["sqlite", "postgresql"], indirect=True)
def test_migration_0008_turns_hashes_removed_after_the_chain_started_into_a_named_break(store_before_0008: Store) -> None:
    _append_raw(store_before_0008, 2)
    _insert_unchained(store_before_0008, "x", actor="sneaky")
    with store_before_0008.engine.connect() as conn:
        sneaky = conn.execute(text("SELECT pk FROM audit_events WHERE actor = 'sneaky'")).scalar()
    migrate(store_before_0008.engine)
    report = _verify(store_before_0008)
    assert not report.ok and report.broken_pk == sneaky
    assert "content_digest, prev_hash, entry_hash empty or missing" in report.problem


def test_the_hash_columns_refuse_null(store: Store) -> None:
    pks = _append(store, 3)
    for column in ("content_digest", "prev_hash", "entry_hash"):
        with pytest.raises(IntegrityError):
            _sql(store, f"UPDATE audit_events SET {column} = NULL WHERE pk = :pk", pk=pks[1])
    with pytest.raises(IntegrityError):  # the attack of issue #10 item 11: every hash NULL in one UPDATE
        _sql(store, "UPDATE audit_events SET content_digest = NULL, prev_hash = NULL, entry_hash = NULL")
    assert _verify(store).ok


@pytest.mark.parametrize("column", ["content_digest", "prev_hash", "entry_hash"])
def test_an_emptied_hash_field_is_a_break(store: Store, column: str) -> None:
    pks = _append(store, 4)
    _sql(store, f"UPDATE audit_events SET {column} = '' WHERE pk = :pk", pk=pks[2])
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[2]
    assert f"hash field(s) {column} empty or missing" in report.problem


def test_every_hash_emptied_in_one_update_is_a_break_at_the_first_entry(store: Store) -> None:
    pks = _append(store, 3)
    _sql(store, "UPDATE audit_events SET content_digest = '', prev_hash = 'x' || pk, entry_hash = ''")
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[0] and report.chained == 0


def test_a_blanked_entry_verifies_only_with_its_tombstone_and_untouched_metadata(store: Store) -> None:
    pks = _append(store, 4)
    with store.session() as session:
        blank_event(session.get(models.AuditEvent, pks[1]), "tomb-1")
        session.commit()
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[1] and "no such tombstone" in report.problem
    with store.session() as session:  # what an erasure leaves: the tombstone and its chained event with the count
        session.add(models.Tombstone(tombstone_id="tomb-1", erased_by="m", reason="erasure request"))
        record_event(session, "m", "erase", "tombstone:tomb-1", {"counts": {"audit_events_blanked": 1}})
        session.commit()
    report = _verify(store)
    assert report.ok and report.blanked == 1, report.problem
    _sql(store, "UPDATE audit_events SET action = 'nothing' WHERE pk = :pk", pk=pks[1])
    report = _verify(store)
    assert report.broken_pk == pks[1] and "content changed" in report.problem


def test_blanking_more_entries_under_an_existing_tombstone_is_detected(store: Store) -> None:
    pks = _append(store, 4)
    with store.session() as session:
        blank_event(session.get(models.AuditEvent, pks[1]), "tomb-1")
        session.add(models.Tombstone(tombstone_id="tomb-1", erased_by="m", reason="erasure request"))
        record_event(session, "m", "erase", "tombstone:tomb-1", {"counts": {"audit_events_blanked": 1}})
        session.commit()
    assert _verify(store).ok
    with store.session() as session:  # someone hides another entry under the same tombstone
        blank_event(session.get(models.AuditEvent, pks[3]), "tomb-1")
        session.commit()
    report = _verify(store)
    assert not report.ok and report.broken_pk == pks[3]
    assert "2 entries carry the erasure mark of tomb-1, but its audited erasure blanked 1" in report.problem


def test_concurrent_appenders_never_fork_the_chain(store: Store) -> None:
    threads, per_thread, errors = 6, 8, []

    def work(name: str) -> None:
        try:
            _append(store, per_thread, actor=name)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(f"user{i}",)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    report = _verify(store)
    assert report.ok and report.chained == threads * per_thread, report.problem
    with store.session() as session:
        assert session.scalar(select(func.count(func.distinct(models.AuditEvent.prev_hash)))) == threads * per_thread


def test_a_forked_link_cannot_be_committed(store: Store) -> None:
    pks = _append(store, 2)
    with store.session() as session:
        first = session.get(models.AuditEvent, pks[1])
        session.add(models.AuditEvent(at=models.utcnow(), actor="x", action="y", subject="z", details={},
                                      content_digest="0" * 64, prev_hash=first.prev_hash, entry_hash="1" * 64))
        with pytest.raises(Exception, match="(?i)unique"):
            session.commit()


def test_events_of_a_rolled_back_transaction_are_not_recorded(store: Store) -> None:
    with store.session() as session:
        session.scalar(select(func.count()).select_from(models.AuditEvent))
        record_event(session, "alice", "edit", "task:1", {})
        session.rollback()
        record_event(session, "alice", "edit", "task:2", {})
        session.commit()
    with store.session() as session:  # recorded before any statement ran, then rolled back
        record_event(session, "alice", "edit", "task:3", {})
        session.rollback()
        session.commit()
    with store.session() as session:
        assert session.scalars(select(models.AuditEvent.subject)).all() == ["task:2"]


def test_a_long_transaction_waits_for_nobody_and_chains_after_those_that_committed_meanwhile(store: Store) -> None:
    _append(store, 1)
    slow = store.session()
    slow.scalar(select(func.count()).select_from(models.AuditEvent))  # reads before the others commit
    early = record_event(slow, "slow", "edit", "task:slow", {})
    _append(store, 3, actor="fast")  # not blocked: the slow transaction holds no chain lock yet
    slow.commit()
    slow.close()
    report = _verify(store)
    assert report.ok and report.chained == 5 and report.head == early.entry_hash
