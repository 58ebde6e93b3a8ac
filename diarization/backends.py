"""Choosing and loading a diarization backend by name."""

from __future__ import annotations

from pathlib import Path

from diarization.types import Diarizer

BACKENDS = ("embedded", "pyannote")


def load_diarizer(name: str, pipeline_dir: Path | None = None, device: str = "auto", fallback: bool = False) -> Diarizer:
    """'embedded' needs nothing; 'pyannote' needs the organisation's local pipeline directory."""
    if name == "embedded":
        from diarization.embedded import EmbeddedDiarizer

        return EmbeddedDiarizer()
    if name == "pyannote":
        from diarization.pyannote_backend import DiarizerUnavailable, PyannoteDiarizer

        if pipeline_dir is None:
            raise DiarizerUnavailable(
                "the pyannote backend needs --pipeline DIR: a local copy of a pyannote speaker-diarization "
                "pipeline (config.yaml plus its model folders); nothing is downloaded"
            )
        return PyannoteDiarizer(pipeline_dir, device=device, fallback=fallback)
    raise ValueError(f"unknown diarizer '{name}' (choose from {', '.join(BACKENDS)})")
