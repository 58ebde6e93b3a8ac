"""`turnscribe demo`: the whole pipeline on the committed synthetic dialogues.

It works in a fresh `$TURNSCRIBE_HOME` and can be re-run: every step is idempotent; a
store with accounts the demo did not create is refused (the demo prints its passwords). It
creates its demo accounts first and does each step in the name of one of them (the demo
manager, or the demo reviewer for approvals), never an anonymous actor.
"""

from __future__ import annotations

from pathlib import Path

from collection.synthetic import DIALOGUES_DIR
from demo.accounts import DEMO_MANAGER, foreign_accounts, seed_demo_accounts
from store.console import Exit, err, fail, out
from store.db import open_store
from store.settings import enforce_offline, load_settings

PROTOCOL_FILE = Path(__file__).resolve().parent.parent / "protocols" / "en_dialogue_accents.yaml"


def run_demo(serve: bool = True) -> int:
    """Register the example protocol, import consent, ingest the dialogues, show coverage."""
    from collection.cli import print_ingest_summary
    from collection.consent import import_consents
    from store.do_not_collect import DoNotCollect
    from collection.coverage import compute_coverage
    from collection.coverage_formats import coverage_heatmap, print_coverage
    from collection.intake import ingest_manifest
    from protocols.loader import load_protocol
    from protocols.registry import register_protocol

    enforce_offline()
    settings = load_settings()
    store = open_store(settings)
    with store.session() as session:
        foreign = foreign_accounts(session)
    if foreign:
        store.close()
        fail(f"the demo runs only in a fresh home or one it made: this store has accounts of its own "
             f"({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''}), and the demo would add accounts with "
             f"printed passwords and approve work in their names; use another TURNSCRIBE_HOME", Exit.USAGE)
    err.rule(f"Turnscribe demo in {settings.home}")
    protocol = load_protocol(PROTOCOL_FILE)
    blocked = DoNotCollect.for_store(store)
    with store.session() as session:
        accounts = seed_demo_accounts(session)
        session.commit()
    with store.session() as session:
        row = register_protocol(session, protocol, actor=DEMO_MANAGER).row
        consent = import_consents(session, DIALOGUES_DIR / "consent.csv", blocked, actor=DEMO_MANAGER)
        session.commit()
    err.print(f"1. protocol {protocol.id} v{protocol.version} registered; consent: {consent.added} added, "
              f"{consent.unchanged} unchanged (as the demo manager {DEMO_MANAGER})")
    report = ingest_manifest(store, protocol.id, DIALOGUES_DIR / "manifest.jsonl", actor=DEMO_MANAGER)
    err.print("2. ingest")
    print_ingest_summary(report)
    with store.session() as session:
        coverage = compute_coverage(session, row, protocol)
    err.print("3. coverage")
    print_coverage(coverage, out, limit=12)
    png = coverage_heatmap(coverage, settings.home / "reports" / "coverage.png")
    err.print(f"   heatmap: {png}")
    from collection.duplicates import find_duplicate_speakers

    with err.status("4. comparing voices across sessions (Resemblyzer)"):
        candidates = find_duplicate_speakers(store, row.pk)
    err.print("4. possible duplicate registrations (resolve by hand):")
    for c in candidates:
        err.print(f"   {c.speaker_a} ~ {c.speaker_b}  similarity {c.similarity:.3f}  sessions "
                  f"{', '.join(c.sessions_a)} / {', '.join(c.sessions_b)}{'' if c.certain else '  (ids ambiguous from audio alone)'}")
    if not candidates:
        err.print("   none")
    _pretranscribe_and_score(store, row, protocol)
    _queue_for_people(store, row, len(accounts))
    _first_release(store, row, protocol)
    store.close()
    if serve:
        from corpus.releases.workbench import PAGES
        from review_ui.serve import serve as serve_workbench

        err.rule("9. review workbench")
        err.print(f"   http://{DEMO_HOST}:{DEMO_PORT}  (Ctrl-C stops it) — sign in as:")
        for username, password, role in accounts:
            err.print(f"   {role:<10} {username:<6} password {password}")
        return serve_workbench(DEMO_HOST, DEMO_PORT, PAGES)
    return Exit.OK if report.ok else Exit.REJECTED


DEMO_HOST, DEMO_PORT = "127.0.0.1", 8501
RELEASED_SHARE = 0.5
"""The demo has no people: it approves the first half of the dialogues itself so a first
release can be built and pulled, and leaves the other half queued for the workbench."""


def _queue_for_people(store, row, accounts: int) -> None:  # type: ignore[no-untyped-def]
    """Demo people calibrated and the pre-annotated dialogues cut into tasks and assigned."""
    from demo.accounts import calibrate_demo_people, queue_demo

    with store.session() as session:
        calibrate_demo_people(session)
        tasks = queue_demo(session, row.pk, actor=DEMO_MANAGER)
        session.commit()
    err.print(f"7. {accounts} demo accounts; {len(tasks)} task(s) assigned to annotators")


def _first_release(store, row, protocol) -> None:  # type: ignore[no-untyped-def]
    """Approve half of the dialogues as the demo reviewer, release them and pull Lhotse and Kaldi copies."""
    import shutil

    from sqlalchemy import select

    from store import models
    from store.accounts import load_principal
    from corpus.exports.pull import pull_release
    from corpus.releases.build import build_release, count_entries
    from corpus.releases.card import split_notes
    from demo.accounts import approve_for_demo
    from review_ui.realign import Realigner

    with store.session() as session:
        pks = list(session.scalars(select(models.Recording.pk).where(
            models.Recording.protocol_pk == row.pk, models.Recording.status == "accepted").order_by(models.Recording.pk)))
        chosen = set(pks[: max(1, round(len(pks) * RELEASED_SHARE))])
        approved = approve_for_demo(session, row.pk, Realigner.of(store), recording_pks=chosen)
        manager = load_principal(session, DEMO_MANAGER)
        session.commit()
    outcome = build_release(store, manager, protocol.id, "demo-v1", version=protocol.version)
    verb = "built" if outcome.created else "already built (same content)"
    with store.session() as session:
        entries = count_entries(session, outcome.release.pk)
    err.print(f"8. approved {approved} more dialogue(s); release demo-v1 {verb}: id {outcome.release.release_id[:16]}, "
              f"{entries} recording(s)")
    for note in split_notes(outcome.release.card["splits"]):  # a small release leaves splits empty: say so
        err.print(f"   {note}", soft_wrap=True)
    for fmt in ("lhotse", "kaldi"):
        target = store.settings.home / "pulls" / f"demo-v1-{fmt}"
        shutil.rmtree(target, ignore_errors=True)
        pulled = pull_release(store, manager, "demo-v1", fmt, target, audio="link")
        err.print(f"   pulled as {fmt}: {target} ({pulled.recordings} recording(s))")


def _pretranscribe_and_score(store, row, protocol) -> None:  # type: ignore[no-untyped-def]
    """Pre-annotate on the CPU with the embedded defaults, then score against the ground truth."""
    from asr.batch import pretranscribe
    from asr.cli import print_evaluation
    from asr.evaluation import evaluate_store
    from asr.preannotate import Preannotator, PreannotationSettings

    settings = PreannotationSettings(asr_model="tiny.en", diarizer="embedded", device="cpu")
    with err.status("5. pre-annotating (faster-whisper tiny.en int8 + embedded diarizer, CPU)"):
        batch = pretranscribe(store, row, protocol, Preannotator(settings, store.settings.models_dir),
                             actor=DEMO_MANAGER)
    err.print(f"5. pre-annotated {len(batch.done)} recording(s), {batch.audio_seconds:.0f} s of audio, "
              f"real-time factor {batch.real_time_factor:.3f}; {len(batch.failed)} failed")
    report = evaluate_store(store, row, DIALOGUES_DIR)
    print_evaluation(report, "6. pre-annotation against the ground truth (WER, cpWER, DER, JER)")
