"""The unit of pre-annotation work: one recording's audio and settings in, turns and provenance out.

`Preannotator` holds the loaded models and nothing else: no store, no globals, so a
later distributed engine can run one per worker and map recordings over it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.model_bundles import identify_asr, identify_diarizer
from asr.models import resolve_model
from asr.transcriber import AsrOptions, Transcriber, options_for
from asr.turns import build_turns
from store.turns import TurnJson
from diarization.backends import load_diarizer
from diarization.separation import separation_flag
from diarization.types import SAMPLE_RATE, ProgressHook


@dataclass(frozen=True)
class PreannotationSettings:
    """What to run; everything here (and the models' own versions) is stored with the result."""

    asr_model: str = "tiny.en"
    asr: AsrOptions | None = None  # None: the defaults chosen for `asr_model` (asr.transcriber.options_for)
    diarizer: str = "embedded"
    pipeline_dir: Path | None = None
    device: str = "auto"
    compute_type: str | None = None
    fallback_to_cpu: bool = False


@dataclass
class Preannotation:
    turns: list[TurnJson]  # the one JSON form, checked by build_turns
    language: str
    language_probability: float
    duration: float
    seconds: float
    params: dict[str, Any]
    flags: list[str] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.duration if self.duration else 0.0


class Preannotator:
    """Loaded ASR model + diarizer; call it once per recording."""

    def __init__(self, settings: PreannotationSettings, models_dir: Path) -> None:
        self.settings = settings
        model = resolve_model(settings.asr_model, models_dir)
        options = settings.asr if settings.asr is not None else options_for(settings.asr_model)
        self.transcriber = Transcriber(model, options, settings.device, settings.compute_type, settings.fallback_to_cpu)
        self.diarizer = load_diarizer(settings.diarizer, settings.pipeline_dir, settings.device, settings.fallback_to_cpu)
        # which files made each result, by checksum (a changed imported bundle is refused here)
        self.bundles = {"asr": identify_asr(settings.asr_model, model.path),
                        "diarization": identify_diarizer(settings.diarizer, settings.pipeline_dir)}

    @property
    def author(self) -> str:
        return f"whisper:{self.transcriber.model_dir.name}+{self.diarizer.name}"

    def __call__(self, audio: np.ndarray, *, num_speakers: int | None = None, language: str | None = None,
                 declared_languages: list[str] | None = None, vocabulary: Sequence[str] = (),
                 hook: ProgressHook | None = None) -> Preannotation:
        """Diarize, transcribe, assign words to speakers; flag a language that contradicts the declared one.

        `vocabulary`: the protocol's names, places and terms, shown to the recogniser.
        """
        start = time.perf_counter()
        duration = len(audio) / SAMPLE_RATE
        diarization = self.diarizer(audio, num_speakers=num_speakers, hook=hook)
        regions = [(s.start, s.end) for s in diarization.segments]
        asr = self.transcriber.transcribe(
            audio, language=language, speech_regions=regions, vocabulary=vocabulary,
            on_progress=(lambda f: hook("transcription", f)) if hook else None,
        )
        turns = build_turns(asr.words, diarization.segments, diarization.exclusive)
        flags = []
        if declared_languages and asr.language not in declared_languages:
            flags.append(f"detected language '{asr.language}' ({asr.language_probability:.0%}) is not the declared "
                         f"{', '.join(declared_languages)}")
        if num_speakers is not None and len(diarization.speakers) < num_speakers and duration > 5:
            flags.append(f"{len(diarization.speakers)} speaker(s) found, {num_speakers} declared")
        separation = separation_flag(diarization.params.get("cluster_separation"),  # thresholds and their data: there
                                     diarization.params.get("cluster_agreement"),
                                     diarization.params.get("cluster_voice_distance"))
        if separation is not None:
            flags.append(separation)
        params = {
            "asr": self.transcriber.params(), "diarization": diarization.params,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.settings).items()},
            "language": {"forced": language, "detected": asr.language, "probability": asr.language_probability},
            "guards_dropped_words": asr.dropped, "num_speakers": num_speakers, "bundles": self.bundles,
            "vocabulary": list(vocabulary),
        }
        return Preannotation(turns, asr.language, asr.language_probability, duration,
                             time.perf_counter() - start, params, flags)
