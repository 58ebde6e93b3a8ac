"""`corpus pull`: stream a release into one export format, a batch of recordings at a time.

Only what one batch needs is in memory: the release's entry rows are read a batch at a
time in position order (corpus.releases.build.release_entry_batches), with their turns; when
cutting or redacting, one recording's samples. The manifest header is never loaded (two
of its fields are read by JSON path). Exporters append to their files. The turns of
each entry are checked against the hash in the manifest before they are written, and its audio
is hashed as it is linked, copied or cut (corpus.exports.audio_placement), so a pull never
exports a transcript or audio other than the one released: a mismatch removes the output. Entries an erasure replaced are
skipped and counted. Every pull is recorded (a `pulls` row: release, format, folder,
host, who, when) so an erasure can rewrite the pulls under the home and list the others.
A release made with --redact-pii gets its frozen PII spans applied
to the text, and the audio over them silenced (or toned) in the copies written here.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal, require
from store.audit import record_event
from store.db import Store
from store.turns import load_stored
from corpus.exports.audio_placement import AudioMismatch, place_cuts, place_whole
from corpus.exports.base import AUDIO_MODES, Item
from corpus.exports.registry import exporter_class
from corpus.releases.build import (FORMAT, ReleaseError, find_release, free_page_cache, load_header_field, release_entry_batches,
                            sha256_json)

BATCH = 200


class PullError(ValueError):
    """A pull that cannot be done as asked (output not empty, bad mode) or a release that drifted."""


class ReleaseDrift(PullError):
    """The store no longer holds what the release lists (a transcript or audio changed or vanished)."""


class FrozenSpan(NamedTuple):
    """A PII span as frozen in the manifest (the shape corpus.governance.pii's functions take)."""

    turn_index: int
    word_start: int
    word_end: int
    kind: str


@dataclass
class PullReport:
    release: str
    release_id: str
    format: str
    audio: str
    out: str
    recordings: int = 0
    turns: int = 0
    erased_skipped: int = 0
    redacted_recordings: int = 0
    files: int = 0
    splits: dict[str, int] = field(default_factory=dict)


def _prepare_out(out: Path) -> bool:
    """Create the output folder; refuse a non-empty one (a pull never overwrites). True when created here."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PullError(f"{out} exists and is not an empty folder; pull into a new folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return created


def _end_batch(session: Session) -> None:
    """End the read transaction between batches and hand back the pages it cached (release.free_page_cache)."""
    session.rollback()
    free_page_cache(session)
    session.rollback()


def _entry_batches(session: Session, release_pk: int) -> Iterator[list[dict[str, Any]]]:
    """The release's entry rows a batch at a time; a missing row is drift (the release no longer holds what it listed)."""
    try:
        yield from release_entry_batches(session, release_pk, BATCH)
    except ReleaseError as exc:
        raise ReleaseDrift(str(exc)) from exc


def _entries(store: Store, release_pk: int, report: PullReport) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """(entry, turns) for each live entry in release order: entry rows and their turns read a batch at a time, turns checked."""
    rev = models.TranscriptRevision
    with store.session() as session:
        for chunk in _entry_batches(session, release_pk):
            live = [e for e in chunk if "erased" not in e]
            report.erased_skipped += len(chunk) - len(live)
            turns = dict(session.execute(select(rev.pk, rev.turns).where(rev.pk.in_([e["revision_pk"] for e in live]))).all())
            _end_batch(session)
            for entry in live:
                got = turns.pop(entry["revision_pk"], None)
                if got is None or sha256_json(got) != entry["revision_sha256"]:
                    raise ReleaseDrift(f"{entry['recording']}: its released transcript (revision {entry['revision_pk']}) is missing "
                                       "or changed in the store; run `turnscribe corpus verify`")
                yield entry, got


def _redaction(entry: dict[str, Any], turns: list[Any]) -> tuple[list[Any], list[tuple[float, float]]]:
    from corpus.governance.pii import redact_turns, redacted_intervals

    spans = [FrozenSpan(*s) for s in entry.get("pii_spans") or []]
    if not spans:
        return turns, []
    return redact_turns(turns, spans), redacted_intervals(turns, spans)


def pull_release(store: Store, principal: Principal, name: str, fmt: str, out: Path, *, audio: str = "link",
                 on_item: Callable[[Item], None] | None = None) -> PullReport:
    """Write release `name` as `fmt` under `out` (a new or empty folder), audio linked, included or cut per turn."""
    require(principal, "pull_release")
    exporter_cls = exporter_class(fmt)
    if audio not in AUDIO_MODES:
        raise PullError(f"unknown audio mode {audio!r}; modes: {', '.join(AUDIO_MODES)}")
    if audio not in exporter_cls.audio_modes:
        raise PullError(f"{fmt} needs --audio {' or '.join(exporter_cls.audio_modes)}, not {audio}")
    with store.session() as session:
        release = find_release(session, name)
        release_pk, release_id, card = release.pk, release.release_id, release.card
        form, created_from = load_header_field(session, release_pk, "format"), load_header_field(session, release_pk, "created_from")
    if form != FORMAT:
        raise PullError(f"release {name} has manifest format {form!r}; this version reads {FORMAT}")
    out = out.resolve()
    created = _prepare_out(out)
    redact = bool(created_from.get("redact_pii"))
    pii_audio = str(created_from.get("pii_audio") or "silence")
    report = PullReport(name, release_id, fmt, audio, str(out))
    try:
        exporter = exporter_cls(out, audio)
        for entry, turns in _entries(store, release_pk, report):
            intervals: list[tuple[float, float]] = []
            if redact:
                turns, intervals = _redaction(entry, turns)
                report.redacted_recordings += bool(intervals)
            source = store.blobs.path_for(entry["working_sha256"])
            if not source.is_file():
                raise ReleaseDrift(f"{entry['recording']}: its audio blob is missing; run `turnscribe corpus verify`")
            item = Item(entry["recording"], entry, load_stored(turns), 0, 0)
            expected = entry["working_sha256"]
            try:
                if audio == "cut":
                    item.cuts = place_cuts(source, expected, out, item.split, item.key, item.turns, intervals, pii_audio)
                else:
                    item.audio = place_whole(source, expected, out, item.split, item.key, audio, intervals, pii_audio)
            except AudioMismatch as exc:
                raise ReleaseDrift(f"{entry['recording']}: {exc}") from exc
            info = sf.info(source)  # read after the hash check: a changed blob may not even parse
            item.num_samples, item.sample_rate = int(info.frames), int(info.samplerate)
            exporter.add(item)
            report.recordings += 1
            report.turns += len(turns)
            report.splits[item.split] = report.splits.get(item.split, 0) + 1
            if on_item is not None:
                on_item(item)
        report.files = exporter.close()
        _write_about(out, report, card)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() and not child.is_symlink() else child.unlink()
        raise
    with store.session() as session:
        session.add(models.Pull(release_pk=release_pk, format=fmt, audio=audio, path=str(out), host=socket.gethostname()[:255],
                                pulled_by=principal.username))
        record_event(session, principal.username, "release_pull", f"release:{name}", {
            "release_id": release_id, "format": fmt, "audio": audio, "recordings": report.recordings,
            "erased_skipped": report.erased_skipped, "redacted_recordings": report.redacted_recordings, "path": str(out),
        })
        session.commit()
    return report


def _write_about(out: Path, report: PullReport, card: dict[str, Any]) -> None:
    """`release.json` (what was pulled) and the dataset card beside the export."""
    from corpus.releases.card import render_markdown

    (out / "release.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    if card:
        (out / "CARD.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        (out / "CARD.md").write_text(render_markdown(card))
