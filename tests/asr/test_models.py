"""Finding models offline: the shipped ones, user directories, and clear errors for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asr.devices import DeviceUnavailable, choose_device, cuda_devices
from asr.models import ModelUnavailable, resolve_model
from asr.transcriber import AsrOptions, Transcriber


def test_embedded_tiny_en_ships_complete(tmp_path: Path) -> None:
    model = resolve_model("tiny.en", tmp_path)
    assert (model.path / "tokenizer.json").is_file() and model.name == "tiny.en"


def test_base_is_joined_once_from_its_two_packages(tmp_path: Path) -> None:
    model = resolve_model("base", tmp_path)
    assert model.path == tmp_path / "whisper-base"
    size = (model.path / "model.bin").stat().st_size
    mtime = (model.path / "model.bin").stat().st_mtime_ns
    assert size == 94371840 + 50845767
    assert resolve_model("base", tmp_path).path == model.path
    assert (model.path / "model.bin").stat().st_mtime_ns == mtime, "joined only once"
    assert not list(tmp_path.glob(".whisper-base-*"))


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


def test_a_gpu_requested_where_none_exists() -> None:
    if cuda_devices() > 0:
        assert choose_device("cuda").compute_type == "float16"
        return
    with pytest.raises(DeviceUnavailable, match="sees no CUDA GPU"):
        choose_device("cuda")
    assert choose_device("cuda", fallback=True) == choose_device("cpu")
    assert choose_device("auto").compute_type == "int8"
