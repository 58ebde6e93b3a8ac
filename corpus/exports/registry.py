"""The export formats by name (`turnscribe corpus pull --format NAME`), imported only when used."""

from __future__ import annotations

import importlib

from corpus.exports.base import Exporter

FORMATS: dict[str, tuple[str, str, str]] = {
    "lhotse": ("corpus.exports.lhotse_manifests", "LhotseExporter", "Lhotse recordings + supervisions (JSONL.GZ per split)"),
    "hf": ("corpus.exports.hf_datasets", "HfDatasetsExporter", "Hugging Face datasets DatasetDict (load_from_disk, or load_dataset(\"arrow\"))"),
    "nemo": ("corpus.exports.nemo", "NemoExporter", "NeMo ASR JSONL manifests per split"),
    "kaldi": ("corpus.exports.kaldi", "KaldiExporter", "Kaldi data directories (wav.scp, segments, text, utt2spk, spk2utt)"),
    "sctk": ("corpus.exports.sctk", "SctkExporter", "RTTM + STM + CTM per split"),
    "textgrid": ("corpus.exports.textgrid", "TextGridExporter", "Praat TextGrid per recording, a tier per speaker"),
    "webvtt": ("corpus.exports.webvtt", "WebVttExporter", "WebVTT per recording with speaker voices"),
    "eaf": ("corpus.exports.elan", "ElanExporter", "ELAN .eaf per recording, a tier per speaker and its personal-data tier"),
    "labelstudio": ("corpus.exports.labelstudio", "LabelStudioExporter", "Label Studio tasks with the turns as predictions, and the labeling config"),
    "jsonl": ("corpus.exports.jsonl", "JsonlExporter", "plain JSONL, one line per turn"),
}


class UnknownFormat(ValueError):
    """A format name not in FORMATS."""


def exporter_class(name: str) -> type[Exporter]:
    if name not in FORMATS:
        raise UnknownFormat(f"unknown format {name!r}; formats: {', '.join(FORMATS)}")
    module, cls, _ = FORMATS[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
