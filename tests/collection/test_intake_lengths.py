"""Issue #10 item 14: the header first, the true length always, memory bounded by a block, not by the file."""

from __future__ import annotations

import struct
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from collection.decoding import decode, probe
from collection.intake import ingest_manifest
from collection.measurements import TooLong, measure_file
from collection.synthetic import DIALOGUES_DIR
from store import models
from store.db import Store
from tests.conftest import EN_PROTOCOL
from tests.factories import import_consent_file, manifest_rows, register_en, variant_row, write_manifest

SOURCE = DIALOGUES_DIR / "dlg001.flac"
FRAMES = sf.info(SOURCE).frames  # what every faithful reading of the dialogue must find
RATE = sf.info(SOURCE).samplerate


def _streamed_wav(target: Path) -> Path:
    """What `ffmpeg -f wav -` writes to a pipe: RIFF and data sizes unknown (0xFFFFFFFF)."""
    piped = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(SOURCE), "-f", "wav", "-"],
                           capture_output=True, check=True).stdout
    assert piped[4:8] == b"\xff\xff\xff\xff"
    target.write_bytes(piped)
    return target


def _data_size_at(data: bytearray) -> int:
    return data.index(b"data") + 4


def _short_header_wav(target: Path, claimed_frames: int) -> Path:
    """A WAV whose data chunk claims fewer frames than the file holds (libsndfile stops at the claim)."""
    sf.write(target, sf.read(SOURCE, dtype="int16")[0], RATE, subtype="PCM_16")
    data = bytearray(target.read_bytes())
    at = _data_size_at(data)
    data[at : at + 4] = struct.pack("<I", claimed_frames * 2)
    target.write_bytes(bytes(data))
    return target


def _wav_with_trailing_chunk(target: Path) -> Path:
    """A correct WAV followed by a LIST chunk: metadata after the data, not audio."""
    sf.write(target, sf.read(SOURCE, dtype="int16")[0], RATE, subtype="PCM_16")
    payload = b"INFOISFT" + struct.pack("<I", 8) + b"testing!"
    data = bytearray(target.read_bytes()) + b"LIST" + struct.pack("<I", len(payload)) + payload
    data[4:8] = struct.pack("<I", len(data) - 8)
    target.write_bytes(bytes(data))
    return target


def test_the_true_length_is_measured_whatever_the_wav_header_says(tmp_path: Path) -> None:
    streamed = _streamed_wav(tmp_path / "streamed.wav")
    short = _short_header_wav(tmp_path / "short.wav", FRAMES // 3)
    trailing = _wav_with_trailing_chunk(tmp_path / "trailing.wav")
    assert sf.info(short).frames == FRAMES // 3, "bare libsndfile believes the header"
    for path in (streamed, short, trailing):
        assert probe(path).frames == FRAMES, path.name
        assert decode(path).num_samples == FRAMES, path.name
    assert "unknown length" in probe(streamed).note
    assert f"declares {FRAMES // 3} frames; the file holds {FRAMES} frames" in probe(short).note
    assert probe(trailing).note == "" and probe(trailing).layout is None
    expected = sf.read(SOURCE, dtype="int16")[0]
    assert np.array_equal(decode(short).samples[:, 0], expected.astype(np.float32) / 32768), "the samples, not only the count"


def test_intake_stores_the_true_length_and_says_what_the_header_claimed(store: Store, dialogues: Path) -> None:
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    _streamed_wav(dialogues / "streamed.wav")
    _short_header_wav(dialogues / "short.wav", FRAMES // 3)
    base = manifest_rows(dialogues)[0]
    rows = [variant_row(base, "streamed.wav", "s-streamed"), variant_row(base, "short.wav", "s-short")]
    report = ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test")
    assert [o.status for o in report.outcomes] == ["accepted", "accepted"], report.outcomes
    with store.session() as session:
        recordings = session.scalars(select(models.Recording).order_by(models.Recording.pk)).all()
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "ingest_accepted")
                                 .order_by(models.AuditEvent.pk)).all()
    for recording in recordings:
        assert recording.num_samples == FRAMES and recording.duration_s == pytest.approx(FRAMES / RATE)
        working = sf.info(store.blobs.path_for(recording.working_sha256))
        assert working.frames == pytest.approx(FRAMES * 16000 / RATE, abs=1), "the working copy has the whole audio"
    notes = [t for e in events for t in e.details["transforms"] if t.startswith("length:")]
    assert len(notes) == 2 and "unknown length" in notes[0] and f"declares {FRAMES // 3} frames" in notes[1]


def test_an_over_long_file_is_refused_from_its_header_before_decoding(store: Store, dialogues: Path) -> None:
    text = EN_PROTOCOL.read_text().replace("max_duration_s: 3600", "max_duration_s: 20")
    register_en(store, text)
    import_consent_file(store, dialogues / "consent.csv")
    whole = SOURCE.read_bytes()
    (dialogues / "cut.flac").write_bytes(whole[: len(whole) // 2])  # the header still says 28.5 s; half the frames are gone
    base = manifest_rows(dialogues)[0]
    report = ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", [variant_row(base, "cut.flac", "s-cut")]), actor="test")
    outcome = report.outcomes[0]
    assert outcome.status == "rejected"
    assert [(r.code, r.message) for r in outcome.reasons if r.code in ("duration", "decode")] == [
        ("duration", f"its header says {FRAMES / RATE:.1f} s, longer than the maximum 20 s")]
    with pytest.raises(TooLong, match="its header says"):
        measure_file(dialogues / "cut.flac", dialogues / "w.wav", 20)


def _tiled(target: Path, minutes: float) -> Path:
    """A 48 kHz stereo WAV of `minutes`, written a block at a time from the dialogue."""
    speech = sf.read(SOURCE, dtype="float32")[0]
    import soxr

    block = np.repeat(soxr.resample(speech, RATE, 48000)[:, None], 2, axis=1)
    frames = int(minutes * 60 * 48000)
    with sf.SoundFile(target, "w", samplerate=48000, channels=2, subtype="PCM_16") as out:
        while frames > 0:
            out.write(block[:frames])
            frames -= len(block)
    return target


def _peak_traced(path: Path, out: Path) -> int:
    tracemalloc.start()
    try:
        measured, _ = measure_file(path, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert measured.duration_s > 0


def test_measuring_holds_a_block_not_the_file(tmp_path: Path) -> None:
    short, long = _tiled(tmp_path / "2min.wav", 2), _tiled(tmp_path / "8min.wav", 8)
    peak_short, peak_long = _peak_traced(short, tmp_path / "a.wav"), _peak_traced(long, tmp_path / "b.wav")
    whole_long = 8 * 60 * 48000 * 2 * 4  # the 8-minute file as float32: what reading it whole would hold
    assert peak_long < peak_short * 1.25 + 2**20, (peak_short, peak_long)
    assert peak_long < whole_long / 8, (peak_long, whole_long)
    assert sf.info(tmp_path / "b.wav").frames == pytest.approx(8 * 60 * 16000, abs=1)
