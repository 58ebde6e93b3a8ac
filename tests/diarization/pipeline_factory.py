"""Build a small, REAL pyannote.audio speaker-diarization pipeline directory for tests.

pyannote's licensed weights cannot be had here, so tests build the same kind of
directory an organisation copies in (``config.yaml`` + ``segmentation/`` +
``embedding/`` + ``plda/``) from pyannote.audio's own model classes with random
weights, saved in pyannote's own checkpoint format, and load it through exactly the
code path a user's directory takes (``Pipeline.from_pretrained(directory)``).

- ``segmentation/pytorch_model.bin``: a ``PyanNet`` (SincNet stride 10, one
  bidirectional LSTM layer of 32 units, one linear layer of 32 units) with powerset
  specifications like pyannote's segmentation-3.0: 10 s chunks, 3 speakers per chunk,
  at most 2 per frame (7 powerset classes).
- ``embedding/pytorch_model.bin``: an ``XVectorMFCC`` with 256-dimensional output
  (default: about ten times faster on CPU), or a ``WeSpeakerResNet34`` (256-dimensional,
  the architecture pyannote's community-1 pipeline uses) with ``embedding="wespeaker"``.
- ``plda/xvec_transform.npz`` (``mean1``, ``mean2``, ``lda``) and ``plda/plda.npz``
  (``mu``, ``tr``, ``psi``): a random but well-conditioned PLDA (LDA dimension 128).

Random weights give meaningless speaker labels: that is expected. The only thing
tuned by hand is the segmentation classifier's bias, pushed away from the
"nobody speaks" class so that the pipeline goes all the way through embedding and
clustering instead of exiting early on an all-silent segmentation.

Checkpoints are written the way Lightning's ``ModelCheckpoint`` writes them
(``state_dict``, ``hyper_parameters``, ``pytorch-lightning_version``) plus the
``pyannote.audio`` metadata block that ``Model.on_save_checkpoint`` adds, which is
what ``Model.from_pretrained`` reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

SEGMENTATION_DURATION = 10.0
SEGMENTATION_SPEAKERS = 3
SEGMENTATION_MAX_PER_FRAME = 2
PYANNET_HPARAMS: dict[str, Any] = {
    "sincnet": {"stride": 10},
    "lstm": {"hidden_size": 32, "num_layers": 1, "bidirectional": True, "monolithic": True, "dropout": 0.0},
    "linear": {"hidden_size": 32, "num_layers": 1},
}
EMBEDDING_DIMENSION = 256  # WeSpeakerResNet34's embedding size (XVectorMFCC is built to match)
EMBEDDING_DURATION = 10.0
LDA_DIMENSION = 128  # pyannote's PLDA default lda_dimension

PIPELINE_PARAMS: dict[str, Any] = {
    # SpeakerDiarization.default_parameters() in pyannote.audio 4.0.7 (powerset segmentation
    # needs no threshold; VBxClustering needs threshold, Fa and Fb)
    "segmentation": {"min_duration_off": 0.0},
    "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
}


def _save_checkpoint(model: Any, path: Path) -> None:
    """Write `model` as a Lightning-style checkpoint that `Model.from_pretrained` reads."""
    import lightning

    checkpoint: dict[str, Any] = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "epoch": 0,
        "global_step": 0,
    }
    model.on_save_checkpoint(checkpoint)  # adds the "pyannote.audio" block (versions, architecture, specifications)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


def _segmentation_model() -> Any:
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    model = PyanNet(**PYANNET_HPARAMS)
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=SEGMENTATION_DURATION,
        min_duration=None,
        warm_up=(0.0, 0.0),
        classes=[f"speaker#{i + 1}" for i in range(SEGMENTATION_SPEAKERS)],
        powerset_max_classes=SEGMENTATION_MAX_PER_FRAME,
        permutation_invariant=True,
    )
    model.build()  # adds the task-dependent classifier (7 powerset classes) and activation
    with torch.no_grad():
        # powerset class order: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}. Push the
        # classifier away from "silence" and the overlap classes so random weights
        # still produce single-speaker frames, which the pipeline then embeds and clusters.
        bias = torch.tensor([-4.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
        model.classifier.bias.copy_(bias)
    return model.eval()


EMBEDDING_CLASSES = {
    # pyannote.audio's own embedding architectures. XVectorMFCC (MFCC > TDNN > stats
    # pooling) embeds 10 s about ten times faster than WeSpeakerResNet34 on CPU,
    # which keeps the test module short; WeSpeakerResNet34 is what community-1 ships.
    "xvector": ("pyannote.audio.models.embedding", "XVectorMFCC", {
        "dimension": EMBEDDING_DIMENSION,
        # 40 mel bands (torchaudio's default 128 leaves empty filters with a 400-point FFT)
        "mfcc": {"n_mfcc": 40, "melkwargs": {"n_fft": 400, "hop_length": 160, "n_mels": 40}},
    }),
    "wespeaker": ("pyannote.audio.models.embedding", "WeSpeakerResNet34", {}),
}


def _embedding_model(kind: str) -> Any:
    from importlib import import_module

    from pyannote.audio.core.task import Problem, Resolution, Specifications

    try:
        module_name, class_name, kwargs = EMBEDDING_CLASSES[kind]
    except KeyError:
        raise ValueError(f"embedding must be one of {sorted(EMBEDDING_CLASSES)}, not {kind!r}") from None
    model = getattr(import_module(module_name), class_name)(**kwargs)
    model.specifications = Specifications(
        problem=Problem.REPRESENTATION,
        resolution=Resolution.CHUNK,
        duration=EMBEDDING_DURATION,
        min_duration=None,
        warm_up=(0.0, 0.0),
    )
    assert model.dimension == EMBEDDING_DIMENSION
    return model.eval()


def _random_orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q[:, :cols]


def _write_plda(folder: Path, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "xvec_transform.npz",
        mean1=(0.01 * rng.standard_normal(EMBEDDING_DIMENSION)).astype(np.float64),
        mean2=(0.01 * rng.standard_normal(LDA_DIMENSION)).astype(np.float64),
        lda=_random_orthonormal(rng, EMBEDDING_DIMENSION, LDA_DIMENSION),
    )
    np.savez(
        folder / "plda.npz",
        mu=(0.01 * rng.standard_normal(LDA_DIMENSION)).astype(np.float64),
        tr=_random_orthonormal(rng, LDA_DIMENSION, LDA_DIMENSION),
        psi=np.linspace(5.0, 0.05, LDA_DIMENSION),
    )


def pipeline_config() -> dict[str, Any]:
    """The `config.yaml` content: what a copied-in pyannote pipeline directory holds."""
    import pyannote.audio

    return {
        "dependencies": {"pyannote.audio": pyannote.audio.__version__},
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": "$model/segmentation",
                "embedding": "$model/embedding",
                "plda": "$model/plda",
                "clustering": "VBxClustering",
                "segmentation_step": 0.1,
                "embedding_exclude_overlap": True,
                "embedding_batch_size": 8,
                "segmentation_batch_size": 8,
            },
        },
        "params": PIPELINE_PARAMS,
    }


def build_tiny_pipeline(directory: Path, seed: int = 0, embedding: str = "xvector") -> Path:
    """Write a small, real pyannote speaker-diarization pipeline directory; return it.

    `embedding` picks pyannote's embedding class: "xvector" (XVectorMFCC, default, fast
    on CPU) or "wespeaker" (WeSpeakerResNet34, as in pyannote's community-1 pipeline).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    _save_checkpoint(_segmentation_model(), directory / "segmentation" / "pytorch_model.bin")
    _save_checkpoint(_embedding_model(embedding), directory / "embedding" / "pytorch_model.bin")
    _write_plda(directory / "plda", rng)
    (directory / "config.yaml").write_text(yaml.safe_dump(pipeline_config(), sort_keys=False))
    return directory
