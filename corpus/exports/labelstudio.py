"""Label Studio tasks: one task per recording with its released turns as a prediction.

`labelstudio/tasks.json` (a JSON list, written as it streams) imports into a project made
with `labelstudio/config.xml`: Label Studio's speaker-segmentation template with a
transcription per region (`Labels` "speaker" + `TextArea` "transcription", both on
`Audio` "audio"). Each turn is one region: a `labels` result (its speaker) and a
`textarea` result (its text) sharing the region id. `data.audio` is a Label Studio
local-files URL relative to the pull folder (set the project's local storage root to the
folder the pull was written in). `turnscribe collect import-labelstudio` reads the same
shape back (collection/labelstudio.py).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from corpus.exports.base import Exporter, Item

LOCAL_FILES = "/data/local-files/?d="


class LabelStudioExporter(Exporter):
    name = "labelstudio"
    needs_audio = True
    audio_modes = ("link", "include")  # a task is a whole recording
    def __init__(self, out, audio_mode: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(out, audio_mode)
        self.pull_root = out
        self.speakers: set[str] = set()
        self.tasks = 0

    def task(self, item: Item) -> dict[str, object]:
        results: list[dict[str, object]] = []
        for index, turn in item.timed_turns():
            region = f"{item.key}-{index:04d}"
            speaker = item.speaker(turn)
            self.speakers.add(speaker)
            where = {"start": turn.start, "end": turn.end, "channel": 0}
            results.append({"id": region, "from_name": "speaker", "to_name": "audio", "type": "labels",
                            "origin": "prediction", "value": {**where, "labels": [speaker]}})
            results.append({"id": region, "from_name": "transcription", "to_name": "audio", "type": "textarea",
                            "origin": "prediction", "value": {**where, "text": [turn.text]}})
        audio = os.path.relpath(item.audio, self.pull_root) if item.audio is not None else ""
        return {
            "data": {"audio": LOCAL_FILES + audio, "recording": item.key, "split": item.split,
                     "session_id": item.entry["session_id"], "language": item.entry["language"]},
            "predictions": [{"model_version": "turnscribe", "result": results}],
        }

    def add(self, item: Item) -> None:
        handle = self.handle("tasks.json")
        handle.write(("[\n" if self.tasks == 0 else ",\n") + json.dumps(self.task(item), ensure_ascii=False))
        self.tasks += 1

    def close(self) -> int:
        handle = self.handle("tasks.json")  # opens an empty list when the release had no live entry
        handle.write("[\n]\n" if self.tasks == 0 else "\n]\n")
        self.write_file("config.xml", labeling_config(sorted(self.speakers)))
        return super().close()


def labeling_config(speakers: list[str]) -> str:
    """Label Studio's segmentation + per-region transcription template, one label per speaker."""
    view = ET.Element("View")
    labels = ET.SubElement(view, "Labels", {"name": "speaker", "toName": "audio"})
    for speaker in speakers:
        ET.SubElement(labels, "Label", {"value": speaker})
    ET.SubElement(view, "Audio", {"name": "audio", "value": "$audio"})
    ET.SubElement(view, "TextArea", {"name": "transcription", "toName": "audio", "perRegion": "true",
                                     "editable": "true", "rows": "2"})
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"
