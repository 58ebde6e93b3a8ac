"""Consent as dated events on SQLite and PostgreSQL: what is in force, re-imports, expiry at intake, and the parser.

Committed data: every speaker's consent c-spk-NNNN granted 2026-09-01, expiring 2031-09-01;
dialogue dlg002 (spk-0003, spk-0004) recorded 2026-10-04.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from collection.consent import FIELDS, ConsentCode, consent_histories, import_consents, in_force, judge_consent
from collection.intake import ingest_manifest
from corpus.governance.retention import purge_candidates
from store import models
from store.db import Store
from store.do_not_collect import DoNotCollect
from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest

HEADER = ",".join(FIELDS)
GRANT = "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,"
WITHDRAWAL = "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,2026-11-01"
LATER = dt.date(2026, 11, 20)


def _import(store: Store, path: Path, text: str):  # type: ignore[no-untyped-def]
    path.write_text(text)
    blocked = DoNotCollect.for_store(store)
    with store.session() as session:
        result = import_consents(session, path, blocked, actor="test")
        session.commit()
    return result


def _verdict(store: Store, consent_id: str, speaker_id: str, on: dt.date):  # type: ignore[no-untyped-def]
    with store.session() as session:
        return judge_consent(consent_histories(session, [consent_id]).get(consent_id, []), consent_id, speaker_id, on=on)


def _rows(store: Store) -> list[tuple[object, ...]]:
    with store.session() as session:
        return [(c.pk, c.consent_id, c.speaker_id, c.form_version, tuple(c.permitted_uses), c.granted_on, c.expires_on,
                 c.withdrawn_on) for c in session.scalars(select(models.Consent).order_by(models.Consent.pk))]


def test_reimporting_the_original_consent_file_never_undoes_a_withdrawal(store: Store, dialogues: Path, tmp_path: Path) -> None:
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    withdrawn = _import(store, tmp_path / "withdraw.csv", f"{HEADER}\n{WITHDRAWAL}\n")
    assert (withdrawn.added, withdrawn.unchanged) == (1, 0)
    before = _rows(store)

    again = _import(store, tmp_path / "consent.csv", (dialogues / "consent.csv").read_text())
    assert (again.added, again.unchanged, again.errors) == (0, 11, []), "rows already recorded are a no-op"
    assert _rows(store) == before
    verdict = _verdict(store, "c-spk-0003", "spk-0003", LATER)
    assert verdict.codes == {ConsentCode.WITHDRAWN} and verdict.record is not None and verdict.record.withdrawn_on

    # a changed grant dated before the withdrawal is history: recorded, said so, and still out of force
    older = _import(store, tmp_path / "older.csv", f"{HEADER}\nc-spk-0003,spk-0003,v3,model_training,2026-10-15,2031-09-01,\n")
    assert older.added == 1 and older.not_in_force and "withdrawn on 2026-11-01" in older.not_in_force[0][1]
    assert _verdict(store, "c-spk-0003", "spk-0003", LATER).codes == {ConsentCode.WITHDRAWN}

    # the withdrawal keeps the dialogue out of intake
    report = ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", manifest_rows(dialogues)[1:2]), actor="test")
    assert report.outcomes[0].status == "rejected"
    assert "withdrew consent 'c-spk-0003' on 2026-11-01" in " | ".join(r.message for r in report.outcomes[0].reasons)

    # re-consent: a grant dated after the withdrawal is in force from its date on
    renewed = _import(store, tmp_path / "renew.csv", f"{HEADER}\nc-spk-0003,spk-0003,v3,model_training;evaluation,2026-11-10,2031-09-01,\n")
    assert renewed.added == 1 and renewed.not_in_force == []
    assert _verdict(store, "c-spk-0003", "spk-0003", LATER).ok
    assert _verdict(store, "c-spk-0003", "spk-0003", dt.date(2026, 11, 5)).codes == {ConsentCode.WITHDRAWN}


def test_a_withdrawal_imported_before_its_grant_stays_in_force(store: Store, tmp_path: Path) -> None:
    _import(store, tmp_path / "withdraw.csv", f"{HEADER}\n{WITHDRAWAL}\n")
    grant = _import(store, tmp_path / "grant.csv", f"{HEADER}\n{GRANT}\n")
    assert (grant.added, grant.unchanged) == (0, 1), "the grant is the one the withdrawal already records"
    assert _verdict(store, "c-spk-0003", "spk-0003", LATER).codes == {ConsentCode.WITHDRAWN}
    assert _verdict(store, "c-spk-0003", "spk-0003", dt.date(2026, 10, 1)).ok, "in force until the withdrawal's date"


def test_consent_expired_since_the_recording_is_refused_at_intake(store: Store, dialogues: Path, tmp_path: Path) -> None:
    register_en(store)
    text = (dialogues / "consent.csv").read_text().replace(
        "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,",
        "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2026-10-15,")
    _import(store, tmp_path / "consent.csv", text)
    assert dt.date.today() > dt.date(2026, 10, 15) >= dt.date(2026, 10, 4), "recorded while valid, expired before today"
    report = ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", manifest_rows(dialogues)[:2]), actor="test")
    assert [o.status for o in report.outcomes] == ["accepted", "rejected"]
    why = " | ".join(r.message for r in report.outcomes[1].reasons)
    assert "expired on 2026-10-15" in why and "expired before this intake" in why
    with store.session() as session:
        stored = session.scalars(select(models.Recording).where(models.Recording.status == "accepted")).all()
        assert len(stored) == 1 and not purge_candidates(session), "nothing accepted that the next purge would delete"


def _record(pk: int, granted: str, withdrawn: str | None = None, **changes: object) -> models.Consent:
    values = dict(consent_id="c", speaker_id="s", form_version="v3", permitted_uses=["model_training"],
                  granted_on=dt.date.fromisoformat(granted), expires_on=None,
                  withdrawn_on=dt.date.fromisoformat(withdrawn) if withdrawn else None)
    values.update(changes)
    return models.Consent(pk=pk, **values)


def test_the_record_in_force_is_the_latest_event_not_the_latest_row() -> None:
    withdrawal, old_grant = _record(1, "2026-09-01", "2026-10-01"), _record(2, "2026-09-01")
    assert in_force([withdrawal, old_grant], dt.date(2026, 10, 2)) == (withdrawal, dt.date(2026, 10, 1))
    assert in_force([withdrawal, old_grant], dt.date(2026, 9, 30)) == (old_grant, None), "same grant day: recorded last wins"
    same_day = _record(3, "2026-10-01")
    assert in_force([withdrawal, same_day], dt.date(2026, 10, 1))[1] == dt.date(2026, 10, 1), "a withdrawal beats a same-day grant"
    assert in_force([withdrawal], dt.date(2026, 8, 1)) == (None, None)
    verdict = judge_consent([withdrawal], "c", "s", on=dt.date(2026, 8, 1))
    assert verdict.codes == {ConsentCode.NOT_YET_VALID}
    assert judge_consent([], "c", "s", on=dt.date(2026, 8, 1)).codes == {ConsentCode.NO_CONSENT}
    assert judge_consent([_record(1, "2026-09-01")], "c", "other", on=dt.date(2026, 9, 2)).codes == {ConsentCode.OTHER_SPEAKER}


# --- the parser, fed generated files -------------------------------------------------------------------------------

_ids = st.one_of(st.sampled_from(["c-spk-0001", "spk-0001", "c-new", "spk-new", "", " ", "a b", "x/y"]),
                 st.text(min_size=0, max_size=140))
_dates = st.one_of(st.sampled_from(["", "2026-09-01", "2026-12-31", "2031-09-01", "2026-02-30", "01/02/2026", "2026-9-1"]),
                   st.dates(dt.date(2000, 1, 1), dt.date(2040, 1, 1)).map(str), st.text(max_size=12))
_values = {"consent_id": _ids, "speaker_id": _ids, "form_version": st.one_of(st.sampled_from(["v3", "v2", ""]), st.text(max_size=70)),
           "permitted_uses": st.one_of(st.sampled_from(["model_training;evaluation", "evaluation", ";", ""]), st.text(max_size=20)),
           "granted_on": _dates, "expires_on": _dates, "withdrawn_on": _dates}
_json_junk = st.one_of(st.none(), st.integers(), st.booleans(), st.sampled_from(["\ud800", "a\x00b", "x" * 200, ["\ud800"]]), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
VALID = dict(zip(FIELDS, ["c-gen", "spk-gen", "v3", "model_training", "2026-09-01", "", ""]))
_rows_strategy = st.lists(st.fixed_dictionaries(_values), min_size=1, max_size=6)


def _csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    writer.writerows([[row[f] for f in FIELDS] for row in rows])
    return buffer.getvalue()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows_strategy, junk=st.lists(st.tuples(st.sampled_from(FIELDS + ("extra",)), _json_junk), max_size=3),
       garbage=st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=30), max_size=2),
       as_csv=st.booleans())
def test_generated_consent_files_are_accepted_or_refused_row_by_row(store: Store, tmp_path: Path, rows: list[dict[str, str]],
                                                                    junk: list[tuple[str, object]], garbage: list[str],
                                                                    as_csv: bool) -> None:
    """No traceback; every row is added, unchanged or refused with a reason; refusals store nothing; re-import adds nothing."""
    if as_csv:
        text, path, expected = _csv_text(rows), tmp_path / "gen.csv", len(rows)
    else:
        objects: list[object] = [dict(r) for r in rows]
        for field, value in junk:  # one odd value in an otherwise valid row, so the parser reaches it
            objects.append({**VALID, field: value})
        lines = [json.dumps(o) for o in objects] + [g for g in garbage if g.strip()]
        text, path, expected = "\n".join(lines) + "\n", tmp_path / "gen.jsonl", len(lines)
    before = _rows(store)
    result = _import(store, path, text)
    assert result.added + result.unchanged + len(result.errors) == expected
    assert all(isinstance(line, int) and why.strip() for line, why in result.errors)
    after = _rows(store)
    assert after[: len(before)] == before, "nothing stored before changes"
    with store.session() as session:
        sources = list(session.scalars(select(models.Consent.source).where(models.Consent.pk > (before[-1][0] if before else 0))))
    refused_lines = {line for line, _ in result.errors}
    assert len(sources) == result.added and not any(int(s.rsplit(":", 1)[1]) in refused_lines for s in sources)
    again = _import(store, path, text)
    assert again.added == 0 and _rows(store) == after, "importing the same file twice changes nothing"
