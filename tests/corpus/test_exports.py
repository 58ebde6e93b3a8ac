"""Every export format, read back by the tool that consumes it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select, update

from store import models
from store.accounts import PermissionDenied, authenticate
from corpus.exports.pull import PullError, pull_release
from corpus.exports.registry import UnknownFormat
from collection.synthetic import DIALOGUES_DIR
from corpus.releases.build import build_release
from tests.conftest import open_test_store
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus, build_corpus, store_entry, stored_entries

ON = dt.date(2026, 11, 1)
RATIOS = {"train": 0.6, "dev": 0.2, "test": 0.2}


@pytest.fixture
def released(corpus: Corpus) -> Corpus:
    """A fresh released corpus, for the tests that change the store."""
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON, ratios=RATIOS)
    return corpus


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pulled_from(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """One released corpus per database, shared by the format tests: a pull reads the store (entries
    and turns, streamed) and adds nothing but its audit event, so building it once per module is enough."""
    root = tmp_path_factory.mktemp(f"released-{request.param}")
    store = open_test_store(request, root / "home", request.param)
    corpus = build_corpus(store, Path(shutil.copytree(DIALOGUES_DIR, root / "dialogues")))
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON, ratios=RATIOS)
    yield corpus
    store.close()


def _approved_texts(corpus: Corpus) -> dict[str, list[str]]:
    """recording key -> its approved turns' texts (what every export must carry)."""
    out = {}
    with corpus.store.session() as session:
        for entry in stored_entries(corpus.store, "v1"):
            out[entry["recording"]] = [t["text"] for t in session.get(models.TranscriptRevision, entry["revision_pk"]).turns]
    return out


def test_lhotse_manifests_load_and_validate_with_lhotse(pulled_from: Corpus, tmp_path: Path) -> None:
    from lhotse import CutSet, load_manifest
    from lhotse.qa import validate_recordings_and_supervisions

    report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "lhotse", tmp_path / "out", audio="link")
    splits = {e["split"] for e in stored_entries(pulled_from.store, "v1")}
    assert report.recordings == 6 and set(report.splits) == splits
    texts = _approved_texts(pulled_from)
    seen = 0
    for split in splits:
        recordings = load_manifest(tmp_path / "out" / "lhotse" / f"recordings_{split}.jsonl.gz")
        supervisions = load_manifest(tmp_path / "out" / "lhotse" / f"supervisions_{split}.jsonl.gz")
        validate_recordings_and_supervisions(recordings, supervisions, read_data=True)
        for sup in supervisions:
            assert sup.text in texts[sup.recording_id] and sup.speaker.startswith("spk-") and sup.alignment["word"]
            seen += 1
        cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions).trim_to_supervisions()
        cut = next(iter(cuts))
        assert cut.load_audio().shape[1] == pytest.approx(cut.duration * 16000, abs=2)
    assert seen == sum(len(v) for v in texts.values())
    audio = next((tmp_path / "out" / "audio").rglob("*.wav"))
    assert audio.is_symlink() and Path(os.readlink(audio)).is_absolute()


def test_lhotse_cut_mode_has_one_recording_per_turn(pulled_from: Corpus, tmp_path: Path) -> None:
    from lhotse import load_manifest
    from lhotse.qa import validate_recordings_and_supervisions

    pull_release(pulled_from.store, pulled_from.consumer, "v1", "lhotse", tmp_path / "out", audio="cut")
    split = stored_entries(pulled_from.store, "v1")[0]["split"]
    recordings = load_manifest(tmp_path / "out" / "lhotse" / f"recordings_{split}.jsonl.gz")
    supervisions = load_manifest(tmp_path / "out" / "lhotse" / f"supervisions_{split}.jsonl.gz")
    validate_recordings_and_supervisions(recordings, supervisions, read_data=True)
    assert len(recordings) == len(supervisions) and all(s.start == 0 for s in supervisions)
    first = next(iter(recordings))
    assert not Path(first.sources[0].source).is_symlink() and sf.info(first.sources[0].source).samplerate == 16000


def test_kaldi_directories_are_sorted_and_mutually_consistent(pulled_from: Corpus, tmp_path: Path) -> None:
    report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "kaldi", tmp_path / "out", audio="include")
    texts = _approved_texts(pulled_from)
    utterances = 0
    for split in report.splits:
        d = tmp_path / "out" / "kaldi" / split
        files = {name: (d / name).read_text().splitlines() for name in ("wav.scp", "segments", "text", "utt2spk", "spk2utt")}
        for name, lines in files.items():
            assert lines == sorted(lines, key=str.encode), f"{name} is in C-locale order"
            assert len({line.split()[0] for line in lines}) == len(lines), f"{name} has unique keys"
        utts = [line.split()[0] for line in files["text"]]
        assert utts == [line.split()[0] for line in files["segments"]] == [line.split()[0] for line in files["utt2spk"]]
        utt2spk = dict(line.split() for line in files["utt2spk"])
        inverse: dict[str, list[str]] = defaultdict(list)
        for utt, spk in utt2spk.items():
            inverse[spk].append(utt)
            assert utt.startswith(spk + "-"), "utterance ids carry their speaker id"
        assert {line.split()[0]: line.split()[1:] for line in files["spk2utt"]} == dict(inverse)
        wavs = dict(line.split(maxsplit=1) for line in files["wav.scp"])
        for line in files["segments"]:
            _, rec, start, end = line.split()
            assert rec in wavs and 0 <= float(start) < float(end) <= sf.info(wavs[rec]).duration + 0.001
        for line in files["text"]:
            utt, words = line.split(maxsplit=1)
            key = "rec-" + utt.split("-rec-")[1].rsplit("-", 1)[0]  # <speaker>-rec-<pk>-<turn>
            assert words in texts[key]
        utterances += len(utts)
        assert all(not Path(p).is_symlink() for p in wavs.values()), "include mode copies the audio"
    assert utterances == sum(len(v) for v in texts.values())


def test_hf_dataset_loads_with_load_from_disk_and_decodes_audio(pulled_from: Corpus, tmp_path: Path) -> None:
    from datasets import load_from_disk

    report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "hf", tmp_path / "out", audio="include")
    dataset = load_from_disk(str(tmp_path / "out" / "hf" / "dataset"))
    assert set(dataset) == set(report.splits) and sum(len(dataset[s]) for s in dataset) == 6
    texts = _approved_texts(pulled_from)
    split = next(iter(dataset))
    row = dataset[split][0]
    assert [t["text"] for t in row["turns"]] == texts[row["id"]]
    samples = row["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[-1] == pytest.approx(row["duration"] * 16000, abs=2)
    assert not (tmp_path / "out" / "hf" / ".staging").exists()
    from datasets import load_dataset

    root = tmp_path / "out" / "hf" / "dataset"
    loaded = load_dataset("arrow", data_files={s: str(root / s / "*.arrow") for s in dataset}, cache_dir=str(tmp_path / "cache"))
    assert loaded[split][0]["id"] == row["id"] and loaded[split].features["audio"].sampling_rate == 16000


def test_hf_cut_mode_has_a_row_per_turn(pulled_from: Corpus, tmp_path: Path) -> None:
    from datasets import load_from_disk

    pull_release(pulled_from.store, pulled_from.consumer, "v1", "hf", tmp_path / "out", audio="cut")
    dataset = load_from_disk(str(tmp_path / "out" / "hf" / "dataset"))
    assert sum(len(dataset[s]) for s in dataset) == sum(len(v) for v in _approved_texts(pulled_from).values())
    row = dataset[next(iter(dataset))][0]
    assert row["audio"].get_all_samples().data.shape[-1] == pytest.approx((row["end"] - row["start"]) * 16000, abs=2)


def test_rttm_stm_ctm_read_by_pyannote_and_consistent(pulled_from: Corpus, tmp_path: Path) -> None:
    from pyannote.database.util import load_rttm

    report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "sctk", tmp_path / "out")
    entries = stored_entries(pulled_from.store, "v1")
    for split in report.splits:
        annotations = load_rttm(tmp_path / "out" / "sctk" / f"{split}.rttm")
        keys = [e["recording"] for e in entries if e["split"] == split]
        assert sorted(annotations) == sorted(keys)
        for key in keys:
            speakers = {s["speaker_id"] for e in entries if e["recording"] == key for s in e["speakers"]}
            assert set(annotations[key].labels()) == speakers
        stm = (tmp_path / "out" / "sctk" / f"{split}.stm").read_text().splitlines()
        ctm = (tmp_path / "out" / "sctk" / f"{split}.ctm").read_text().splitlines()
        stm_words = sum(len(line.split()[5:]) for line in stm)
        assert len(ctm) == stm_words and all(len(line.split()) == 6 for line in ctm)


def test_textgrid_has_a_tier_per_speaker_read_by_praatio(pulled_from: Corpus, tmp_path: Path) -> None:
    from praatio import textgrid

    report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "textgrid", tmp_path / "out")
    texts = _approved_texts(pulled_from)
    grids = sorted((tmp_path / "out" / "textgrid").rglob("*.TextGrid"))
    assert len(grids) == 6 == report.files
    for path in grids:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
        assert all(name.startswith("spk-") for name in grid.tierNames) and len(grid.tierNames) == 2
        labels = [entry.label for name in grid.tierNames for entry in grid.getTier(name).entries]
        assert sorted(labels) == sorted(texts[path.stem])


def test_webvtt_nemo_and_jsonl(pulled_from: Corpus, tmp_path: Path) -> None:
    texts = _approved_texts(pulled_from)
    pull_release(pulled_from.store, pulled_from.consumer, "v1", "webvtt", tmp_path / "vtt")
    vtt = sorted((tmp_path / "vtt" / "webvtt").rglob("*.vtt"))
    body = vtt[0].read_text()
    assert body.startswith("WEBVTT\n") and "<v spk-" in body and " --> " in body
    assert body.count("<v ") == len(texts[vtt[0].stem])

    pull_release(pulled_from.store, pulled_from.consumer, "v1", "nemo", tmp_path / "nemo", audio="cut")
    lines = [json.loads(line) for p in (tmp_path / "nemo" / "nemo").glob("*_manifest.json") for line in p.read_text().splitlines()]
    assert len(lines) == sum(len(v) for v in texts.values())
    assert all(sf.info(line["audio_filepath"]).duration == pytest.approx(line["duration"], abs=0.002) for line in lines)

    pull_release(pulled_from.store, pulled_from.consumer, "v1", "jsonl", tmp_path / "jsonl")
    turns = [json.loads(line) for line in (tmp_path / "jsonl" / "jsonl" / "turns.jsonl").read_text().splitlines()]
    assert [t["text"] for t in turns if t["recording"] == next(iter(texts))] == texts[next(iter(texts))]
    about = json.loads((tmp_path / "jsonl" / "release.json").read_text())
    assert about["release"] == "v1" and (tmp_path / "jsonl" / "CARD.md").read_text().startswith("# v1")


def test_pull_refuses_bad_requests_and_records_the_pull(released: Corpus, tmp_path: Path) -> None:
    with released.store.session() as session:
        annie = authenticate(session, "annie", PASSWORD)
        session.commit()
    with pytest.raises(PermissionDenied):
        pull_release(released.store, annie, "v1", "jsonl", tmp_path / "a")
    with pytest.raises(UnknownFormat, match="formats: lhotse"):
        pull_release(released.store, released.consumer, "v1", "mp3", tmp_path / "a")
    with pytest.raises(PullError, match="audio mode"):
        pull_release(released.store, released.consumer, "v1", "jsonl", tmp_path / "a", audio="stream")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(PullError, match="not an empty folder"):
        pull_release(released.store, released.consumer, "v1", "jsonl", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with released.store.session() as session:
        revision_pk = stored_entries(released.store, "v1")[4]["revision_pk"]
        session.execute(update(models.TranscriptRevision).where(models.TranscriptRevision.pk == revision_pk).values(turns=[]))
        session.commit()
    with pytest.raises(PullError, match="changed in the store"):
        pull_release(released.store, released.consumer, "v1", "kaldi", tmp_path / "drift")
    assert not (tmp_path / "drift").exists(), "a failed pull leaves nothing half-written"
    with released.store.session() as session:
        pulls = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "release_pull")).all()
    assert pulls == []


def test_pull_skips_erased_entries_and_says_how_many(released: Corpus, tmp_path: Path) -> None:
    erased_key = stored_entries(released.store, "v1")[0]["recording"]
    with released.store.session() as session:
        session.add(models.Tombstone(tombstone_id="tomb-9", erased_by="manny", reason="erasure request", counts={}))
        session.commit()
    store_entry(released.store, "v1", 0, {"erased": "tomb-9"})
    report = pull_release(released.store, released.consumer, "v1", "jsonl", tmp_path / "out")
    assert report.erased_skipped == 1 and report.recordings == 5
    keys = {json.loads(line)["recording"] for line in (tmp_path / "out" / "jsonl" / "turns.jsonl").read_text().splitlines()}
    assert erased_key not in keys and len(keys) == 5
    with released.store.session() as session:
        event = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "release_pull")).one()
    assert event.actor == "connie" and event.details["erased_skipped"] == 1


def test_redacted_release_tags_text_and_silences_audio_copies_only(corpus: Corpus, tmp_path: Path) -> None:
    from store.blobs import sha256_file
    from corpus.governance.pii import mark_span

    with corpus.store.session() as session:
        annie = authenticate(session, "annie", PASSWORD)
        approved = session.scalar(select(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == corpus.recordings["dlg001"], models.TranscriptRevision.stage == "approved"))
        mark_span(session, annie, approved.pk, 0, 5, 7, "other")  # "Hello, I'd like to book [a table] for three, please."
        session.commit()
        said = approved.turns[0]["text"].split()
        span_words = approved.turns[0]["words"][5:7]
        working = session.get(models.Recording, corpus.recordings["dlg001"]).working_sha256
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "private", on=ON, redact_pii=True)
    entry = next(e for e in stored_entries(corpus.store, "private") if e["session_id"] == "dlg001")
    assert entry["pii_spans"] == [[0, 5, 7, "other"]]

    report = pull_release(corpus.store, corpus.consumer, "private", "jsonl", tmp_path / "out", audio="link")
    assert report.redacted_recordings == 1
    turns = [json.loads(line) for line in (tmp_path / "out" / "jsonl" / "turns.jsonl").read_text().splitlines()]
    first = next(t for t in turns if t["recording"] == entry["recording"] and t["turn"] == 0)
    assert first["text"] == " ".join([*said[:5], "[other]", *said[7:]])
    copy = Path(first["audio"])
    assert not copy.is_symlink(), "a redacted recording is written as a copy even in link mode"
    samples, rate = sf.read(copy, dtype="float32")
    inside = samples[int(span_words[0]["start"] * rate) + 10 : int(span_words[1]["end"] * rate) - 10]
    assert np.abs(inside).max() == 0.0
    original, _ = sf.read(corpus.store.blobs.path_for(working), dtype="float32")
    assert np.abs(original[int(span_words[0]["start"] * rate): int(span_words[1]["end"] * rate)]).max() > 0.01
    assert sha256_file(corpus.store.blobs.path_for(working)) == working, "the stored working copy is untouched"
    others = [Path(t["audio"]) for t in turns if t["recording"] != entry["recording"]]
    assert others and all(p.is_symlink() for p in others)


def test_pull_reads_entry_rows_a_batch_per_query_and_never_the_manifest_whole(pulled_from: Corpus, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """What keeps a pull's memory flat: one bounded query per batch of entry rows, and no read of the manifest header."""
    from sqlalchemy import event

    import corpus.exports.pull as pull

    monkeypatch.setattr(pull, "BATCH", 4)  # 6 entries: a full batch of 4, then 2 (short: the last query)
    statements: list[tuple[str, list[str]]] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, [d[0] for d in cursor.description or []]))

    event.listen(pulled_from.store.engine, "after_cursor_execute", seen)
    try:
        report = pull_release(pulled_from.store, pulled_from.consumer, "v1", "jsonl", tmp_path / "out")
    finally:
        event.remove(pulled_from.store.engine, "after_cursor_execute", seen)
    assert report.recordings == 6
    entry_reads = [s for s, _ in statements if "release_entries" in s]
    assert len(entry_reads) == 2 and all("LIMIT" in s.upper() for s in entry_reads), entry_reads
    whole = [s for s, columns in statements if "manifest" in [c.lower() for c in columns]]
    assert whole == [], "a pull reads two header fields by JSON path, never the stored manifest"
    keys = [json.loads(line)["recording"] for line in (tmp_path / "out" / "jsonl" / "turns.jsonl").read_text().splitlines()]
    assert list(dict.fromkeys(keys)) == [e["recording"] for e in stored_entries(pulled_from.store, "v1")], "release order"
