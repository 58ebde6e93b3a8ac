"""pyannote.audio speaker diarization from a local pipeline directory.

The organisation copies its licensed pyannote pipeline in once, as a directory::

    <dir>/config.yaml                     pipeline class, its models ($model/...) and parameters
    <dir>/segmentation/pytorch_model.bin  segmentation model checkpoint
    <dir>/embedding/pytorch_model.bin     speaker embedding model checkpoint
    <dir>/plda/xvec_transform.npz         PLDA (VBx clustering)
    <dir>/plda/plda.npz

`PyannoteDiarizer(<dir>)` checks that directory, names whatever is missing or corrupt,
and loads it with `pyannote.audio.Pipeline.from_pretrained(<dir>)`, the same path a
user takes. Nothing reaches a model hub or pyannote's telemetry endpoint: this module
sets `HF_HUB_OFFLINE=1` and `PYANNOTE_METRICS_ENABLED=false` before pyannote.audio is
imported (pyannote.audio 4 sends usage metrics by default), and again before each
load and call. Audio is passed in memory, never as a file path, so no audio decoder
(torchcodec/FFmpeg) is involved.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from store.settings import enforce_offline


def _enforce_offline() -> None:
    """No hub downloads, no usage metrics: set before (and after) pyannote.audio is imported."""
    enforce_offline()
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported before us: its offline flag was read from the environment then
        hub.HF_HUB_OFFLINE = True


_enforce_offline()

import numpy as np  # noqa: E402

from diarization.types import SAMPLE_RATE, DiarizationResult, ProgressHook, SpeakerSegment, exclusive_from  # noqa: E402

CONFIG_FILE = "config.yaml"
MODEL_FILE = "pytorch_model.bin"
PLDA_FILES = ("xvec_transform.npz", "plda.npz")
PLDA_KEYS = {"xvec_transform.npz": ("mean1", "mean2", "lda"), "plda.npz": ("mu", "tr", "psi")}
DEVICES = ("auto", "cpu", "cuda")
_COPY_HINT = (
    "Copy your organisation's pyannote speaker-diarization pipeline directory there "
    "(config.yaml plus its segmentation/, embedding/ and plda/ folders, as downloaded once "
    "from its licensed source); nothing is fetched from the internet."
)


class DiarizerUnavailable(RuntimeError):
    """The pyannote backend cannot run as asked: missing or broken pipeline directory, or device."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_references(config: Mapping[str, Any]) -> dict[str, str]:
    """`{parameter: value}` for the pipeline's model/PLDA parameters given as strings."""
    params = (config.get("pipeline") or {}).get("params") or {}
    return {key: value for key, value in params.items() if isinstance(value, str) and _is_asset_param(key, value)}


def _is_asset_param(key: str, value: str) -> bool:
    return value.startswith("$model/") or key in {"segmentation", "embedding", "plda"}


def _expected_files(key: str, folder: Path) -> list[Path]:
    if key == "plda":
        return [folder / name for name in PLDA_FILES]
    return [folder / MODEL_FILE]


def _check_file(path: Path, directory: Path) -> None:
    """Raise DiarizerUnavailable when `path` is missing, empty or not a readable archive."""
    shown = path.relative_to(directory) if path.is_relative_to(directory) else path
    if not path.is_file():
        raise DiarizerUnavailable(
            f"pyannote pipeline file {shown} is missing from {directory}. Copy it there from "
            f"the licensed pipeline (the same file in that pipeline's {shown.parent}/ folder)."
        )
    if path.stat().st_size == 0:
        raise DiarizerUnavailable(
            f"pyannote pipeline file {shown} in {directory} is empty (an interrupted copy?). "
            f"Copy it there again from the licensed pipeline."
        )
    problem = None
    if not zipfile.is_zipfile(path):  # .npz archives and torch.save checkpoints (since torch 1.6) are zip files
        kind = "an .npz archive" if path.suffix == ".npz" else "a PyTorch checkpoint"
        problem = f"it is not {kind} (truncated, or not the right file)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # CRC of every entry
            if bad is not None:
                problem = f"its entry {bad} fails its checksum"
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as arrays:
                    missing = [k for k in PLDA_KEYS.get(path.name, ()) if k not in arrays.files]
                if missing:
                    problem = f"it lacks the arrays {', '.join(missing)}"
        except Exception as error:  # noqa: BLE001 - any failure means the copy is unusable
            problem = f"it cannot be read ({type(error).__name__}: {error})"
    if problem:
        raise DiarizerUnavailable(
            f"pyannote pipeline file {shown} in {directory} is corrupt: {problem}. "
            f"Copy it there again from the licensed pipeline."
        )


def check_pipeline_directory(directory: Path | str) -> tuple[Path, dict[str, Any], dict[str, Path]]:
    """Validate a local pipeline directory without loading it.

    Returns the resolved directory, the parsed config.yaml and `{parameter: file}` for every
    model file it refers to; raises DiarizerUnavailable naming the first problem found.
    """
    import yaml

    directory = Path(directory).expanduser().resolve()
    if not directory.exists():
        raise DiarizerUnavailable(f"pyannote pipeline directory {directory} does not exist. {_COPY_HINT}")
    if not directory.is_dir():
        raise DiarizerUnavailable(f"pyannote pipeline directory {directory} is not a directory. {_COPY_HINT}")
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise DiarizerUnavailable(
            f"pyannote pipeline directory {directory} has no {CONFIG_FILE}. {_COPY_HINT}"
        )
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except Exception as error:  # noqa: BLE001
        raise DiarizerUnavailable(f"{config_path} is not valid YAML ({error}). Copy it there again.") from error
    if not isinstance(config, dict) or not isinstance(config.get("pipeline"), dict) or "name" not in config["pipeline"]:
        raise DiarizerUnavailable(
            f"{config_path} is not a pyannote pipeline config (it needs `pipeline: {{name: ..., params: ...}}`). "
            "Copy the config.yaml of the licensed pipeline there."
        )

    files: dict[str, Path] = {}
    for key, value in _model_references(config).items():
        if value.startswith("$model/"):
            subfolder = value.split("/", 1)[1].split("@", 1)[0]
            folder = directory / subfolder
        else:
            folder = Path(value).expanduser()  # pyannote reads such a path as given (relative to the cwd)
            if not folder.exists():
                raise DiarizerUnavailable(
                    f"{config_path} sets {key}: {value!r}, which is not a file or folder in {directory} "
                    "(it looks like a model-hub name, and nothing is downloaded here). Copy that model into "
                    f"the directory (e.g. {key}/{MODEL_FILE if key != 'plda' else 'plda.npz'}) and refer to it "
                    f"as $model/{key} in {CONFIG_FILE}."
                )
        if folder.is_file():
            expected = [folder]
        elif key in {"segmentation", "embedding", "plda"}:
            expected = _expected_files(key, folder)
        else:  # another kind of asset (e.g. a calibration): pyannote knows its files, we check the folder
            if not folder.is_dir():
                raise DiarizerUnavailable(
                    f"{config_path} sets {key}: {value!r}, but {folder} is missing. Copy that folder there "
                    "from the licensed pipeline."
                )
            continue
        for path in expected:
            _check_file(path, directory)
            files[f"{key}/{path.name}" if len(expected) > 1 else key] = path
    return directory, config, files


def resolve_device(device: str, fallback: bool = False) -> tuple[str, str | None]:
    """`(device to use, reason it differs from the request or None)` for "auto", "cpu" or "cuda[:N]"."""
    import torch

    requested = str(device).strip().lower()
    if requested == "auto":
        return ("cuda" if torch.cuda.is_available() else "cpu"), None
    if requested == "cpu":
        return "cpu", None
    if requested == "cuda" or requested.startswith("cuda:"):
        if torch.cuda.is_available():
            if ":" in requested:
                index = int(requested.split(":", 1)[1])
                if index >= torch.cuda.device_count():
                    reason = f"CUDA device {index} does not exist (torch sees {torch.cuda.device_count()})"
                    if not fallback:
                        raise DiarizerUnavailable(f"pyannote diarization asked for {requested}, but {reason}.")
                    return "cpu", reason
            return requested, None
        reason = "no CUDA GPU is available to torch (torch.cuda.is_available() is False)"
        if not fallback:
            raise DiarizerUnavailable(
                f"pyannote diarization asked for device {requested!r}, but {reason}. "
                "Use device='cpu' or 'auto', or allow fallback to the CPU."
            )
        return "cpu", reason
    raise ValueError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), not {device!r}")


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class _HookAdapter:
    """pyannote's `hook(step_name, step_artifact, file=..., total=..., completed=...)` -> ours.

    pyannote calls the hook with `completed`/`total` while a long step runs and once without
    them when the step is done; `completed` can exceed `total` (segmentation reports whole
    batches), so fractions are clamped to [0, 1].
    """

    def __init__(self, hook: ProgressHook):
        self.hook = hook

    def __call__(self, step_name: str, step_artifact: Any = None, file: Any = None,
                 total: int | None = None, completed: int | None = None, **_: Any) -> None:
        if total is None or completed is None:
            fraction = 1.0
        elif total <= 0:
            fraction = 1.0
        else:
            fraction = min(1.0, max(0.0, float(completed) / float(total)))
        self.hook(str(step_name), fraction)


def _segments(annotation: Any) -> list[SpeakerSegment]:
    return [
        SpeakerSegment(float(turn.start), float(turn.end), str(label))
        for turn, _, label in annotation.itertracks(yield_label=True)
    ]


def _first_appearance_names(*segment_lists: list[SpeakerSegment]) -> dict[str, str]:
    names: dict[str, str] = {}
    for segments in segment_lists:
        for segment in sorted(segments, key=lambda s: (s.start, s.end, s.speaker)):
            if segment.speaker not in names:
                names[segment.speaker] = f"SPEAKER_{len(names):02d}"
    return names


def _finish(segments: list[SpeakerSegment], names: dict[str, str], duration: float) -> list[SpeakerSegment]:
    """Rename, round to the millisecond, clip to [0, duration], drop empty, sort."""
    out = []
    for s in segments:
        start = min(max(round(s.start, 3), 0.0), duration)
        end = min(max(round(s.end, 3), 0.0), duration)
        if end > start:
            out.append(SpeakerSegment(start, end, names[s.speaker]))
    return sorted(out, key=lambda s: (s.start, s.end, s.speaker))


class PyannoteDiarizer:
    """A pyannote.audio speaker-diarization pipeline loaded from a local directory.

    `device`: "auto" (CUDA when torch sees a GPU, else CPU), "cpu" or "cuda"/"cuda:N".
    Asking for CUDA without a GPU raises DiarizerUnavailable, unless `fallback=True`, in
    which case it warns and runs on the CPU.
    """

    name = "pyannote"

    def __init__(self, pipeline_dir: Path | str, *, device: str = "auto", fallback: bool = False):
        _enforce_offline()
        self.directory, self.config, self.model_files = check_pipeline_directory(pipeline_dir)
        self.requested_device = str(device)
        self.device, reason = resolve_device(device, fallback=fallback)
        if reason is not None:
            warnings.warn(
                f"pyannote diarization: {reason}; falling back to the CPU (much slower).",
                RuntimeWarning,
                stacklevel=2,
            )
        self.config_sha256 = _sha256(self.directory / CONFIG_FILE)
        self.model_sha256 = {key: _sha256(path) for key, path in self.model_files.items()}
        self._pipeline = self._load()
        self._lock = threading.Lock()

    def _load(self) -> Any:
        import torch

        _enforce_offline()
        with warnings.catch_warnings():
            # we never hand pyannote a file to decode, so a missing torchcodec/FFmpeg does not matter
            warnings.filterwarnings("ignore", message=r"(?s).*torchcodec is not installed correctly")
            import pyannote.audio
            from pyannote.audio import Pipeline
        _enforce_offline()
        self.pyannote_version = pyannote.audio.__version__

        try:
            pipeline = Pipeline.from_pretrained(self.directory)
        except DiarizerUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - whatever pyannote raised, say what to fix
            culprit = self._diagnose()
            if culprit is not None:
                raise culprit from error
            raise DiarizerUnavailable(
                f"pyannote.audio {self.pyannote_version} could not load the pipeline in {self.directory} "
                f"({type(error).__name__}: {error}). Check that config.yaml and the model files "
                f"({', '.join(str(p.relative_to(self.directory)) for p in self.model_files.values())}) "
                "come from the same licensed pipeline, made for pyannote.audio "
                f"{self.pyannote_version.split('.')[0]}.x."
            ) from error
        if pipeline is None:
            raise DiarizerUnavailable(f"pyannote.audio could not load the pipeline in {self.directory}. {_COPY_HINT}")
        if not hasattr(pipeline, "apply"):
            raise DiarizerUnavailable(f"{self.directory / CONFIG_FILE} does not describe a pyannote pipeline.")
        try:
            pipeline.to(torch.device(self.device))
        except Exception as error:  # noqa: BLE001
            raise DiarizerUnavailable(f"could not move the pyannote pipeline to {self.device}: {error}") from error
        return pipeline

    def _diagnose(self) -> DiarizerUnavailable | None:
        """After a failed load: load each model file on its own to name the one at fault."""
        from pyannote.audio import Model
        from pyannote.audio.core.plda import PLDA

        plda_files = {p.name: p for k, p in self.model_files.items() if k.startswith("plda/")}
        for key, path in self.model_files.items():
            if key.startswith("plda/"):
                continue
            try:
                Model.from_pretrained(path, strict=False)
            except Exception as error:  # noqa: BLE001
                shown = path.relative_to(self.directory) if path.is_relative_to(self.directory) else path
                return DiarizerUnavailable(
                    f"pyannote pipeline file {shown} in {self.directory} is corrupt or not a pyannote.audio "
                    f"{self.pyannote_version.split('.')[0]}.x model checkpoint ({type(error).__name__}: {error}). "
                    "Copy it there again from the licensed pipeline."
                )
        if set(plda_files) == set(PLDA_FILES):
            try:
                PLDA(plda_files["xvec_transform.npz"], plda_files["plda.npz"])
            except Exception as error:  # noqa: BLE001
                return DiarizerUnavailable(
                    f"the PLDA files in {plda_files['plda.npz'].parent} are inconsistent ({type(error).__name__}: "
                    f"{error}). Copy xvec_transform.npz and plda.npz there again from the licensed pipeline."
                )
        return None

    def pipeline_parameters(self) -> dict[str, Any]:
        """The instantiated (tuned) pipeline parameters, e.g. clustering threshold, Fa, Fb."""
        try:
            return _json_safe(self._pipeline.parameters(instantiated=True))
        except Exception:  # noqa: BLE001 - an uninstantiated pipeline uses its defaults
            return {}

    def _params(self, num_speakers: int | None, min_speakers: int | None, max_speakers: int | None) -> dict[str, Any]:
        import torch

        return {
            "backend": self.name,
            "pipeline_dir": str(self.directory),
            "pipeline_class": str(self.config["pipeline"]["name"]),
            "config_sha256": self.config_sha256,
            "model_sha256": dict(self.model_sha256),
            "pipeline_config": _json_safe(self.config.get("pipeline", {})),
            "pipeline_params": self.pipeline_parameters(),
            "pyannote_audio_version": self.pyannote_version,
            "torch_version": torch.__version__,
            "device": self.device,
            "device_requested": self.requested_device,
            "num_speakers": num_speakers,
            "min_speakers": min_speakers,
            "max_speakers": max_speakers,
            "sample_rate": SAMPLE_RATE,
        }

    def __call__(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        hook: ProgressHook | None = None,
    ) -> DiarizationResult:
        """Diarize 16 kHz mono float32 audio; `num_speakers` fixes the count when known."""
        import torch

        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2 and 1 in samples.shape:
            samples = samples.reshape(-1)
        if samples.ndim != 1:
            raise ValueError(f"audio must be mono 16 kHz samples (1-D), got shape {samples.shape}")
        params = self._params(num_speakers, min_speakers, max_speakers)
        duration = len(samples) / SAMPLE_RATE
        params["duration"] = round(duration, 3)
        if len(samples) == 0:
            return DiarizationResult(segments=[], exclusive=[], params=params)

        kwargs = {
            key: value
            for key, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers))
            if value is not None
        }
        file = {
            "waveform": torch.from_numpy(np.ascontiguousarray(samples))[None],
            "sample_rate": SAMPLE_RATE,
            "uri": "recording",
        }
        _enforce_offline()
        with self._lock:  # one pipeline object: calls on it are serialised
            output = self._pipeline(file, hook=_HookAdapter(hook) if hook is not None else None, **kwargs)

        if hasattr(output, "speaker_diarization"):  # pyannote.audio 4: DiarizeOutput
            segments = _segments(output.speaker_diarization)
            exclusive_annotation = getattr(output, "exclusive_speaker_diarization", None)
            exclusive = _segments(exclusive_annotation) if exclusive_annotation is not None else None
        elif hasattr(output, "itertracks"):  # legacy pipelines return a bare Annotation
            segments, exclusive = _segments(output), None
        elif isinstance(output, tuple) and output and hasattr(output[0], "itertracks"):  # 3.x return_embeddings
            segments, exclusive = _segments(output[0]), None
        else:
            raise TypeError(f"unexpected pyannote pipeline output: {type(output).__name__}")

        names = _first_appearance_names(segments, exclusive or [])
        segments = _finish(segments, names, duration)
        if exclusive is None:
            exclusive = exclusive_from(segments)
            params["exclusive_source"] = "turnscribe"
        else:
            exclusive = _finish(exclusive, names, duration)
            params["exclusive_source"] = "pyannote"
        if hook is not None:
            hook("done", 1.0)
        return DiarizationResult(segments=segments, exclusive=exclusive, params=params)
