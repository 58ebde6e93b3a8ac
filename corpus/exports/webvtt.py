"""WebVTT subtitles with speaker labels (`<v speaker>`), one file per recording."""

from __future__ import annotations

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text


def timestamp(seconds: float) -> str:
    millis = int(round(max(seconds, 0.0) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebVttExporter(Exporter):
    name = "webvtt"
    needs_audio = False

    def add(self, item: Item) -> None:
        lines = ["WEBVTT", ""]
        for i, turn in item.timed_turns():
            lines += [f"{item.key}-{i:04d}", f"{timestamp(turn.start)} --> {timestamp(turn.end)}",
                      f"<v {escape(item.speaker(turn))}>{escape(normalise_text(turn.text))}", ""]
        self.write_file(f"{item.split}/{item.key}.vtt", "\n".join(lines))
