"""`turnscribe demo`: the whole pipeline on the committed synthetic dialogues.

It works in a fresh `$TURNSCRIBE_HOME` and can be re-run: every step is idempotent.
"""

from __future__ import annotations

from pathlib import Path

from collection.synthetic import DIALOGUES_DIR
from corpus.cli_support import Exit, err, out
from corpus.db import open_store
from corpus.settings import enforce_offline, load_settings

PROTOCOL_FILE = Path(__file__).resolve().parent.parent / "protocols" / "en_dialogue_accents.yaml"


def run_demo(serve: bool = True) -> int:
    """Register the example protocol, import consent, ingest the dialogues, show coverage."""
    from collection.cli import print_ingest_summary
    from collection.consent import import_consents
    from collection.coverage import compute_coverage
    from collection.coverage_report import coverage_heatmap, print_coverage
    from collection.intake import ingest_manifest
    from protocols.loader import load_protocol
    from protocols.registry import register_protocol

    enforce_offline()
    settings = load_settings()
    store = open_store(settings)
    err.rule(f"Turnscribe demo in {settings.home}")
    protocol = load_protocol(PROTOCOL_FILE)
    with store.session() as session:
        row = register_protocol(session, protocol).row
        consent = import_consents(session, DIALOGUES_DIR / "consent.csv", actor="demo")
        session.commit()
    err.print(f"1. protocol {protocol.id} v{protocol.version} registered; consent: {consent.added} added, {consent.unchanged} unchanged")
    report = ingest_manifest(store, protocol.id, DIALOGUES_DIR / "manifest.jsonl", actor="demo")
    err.print("2. ingest")
    print_ingest_summary(report)
    with store.session() as session:
        coverage = compute_coverage(session, row, protocol)
    err.print("3. coverage")
    print_coverage(coverage, out, limit=12)
    png = coverage_heatmap(coverage, settings.home / "reports" / "coverage.png")
    err.print(f"   heatmap: {png}")
    if serve:
        err.print("The review workbench is not part of this build yet; nothing to serve.")
    store.close()
    return Exit.OK if report.ok else Exit.REJECTED
