"""ELAN annotation documents (EAF 3.0): one file per recording, a tier per speaker, and under each
speaker a dependent tier of personal-data marks (time-aligned, `Included_In` the turn).

Written with the standard library (ELAN needs no Python package at run time); the tests read
every file back with pympi-ling. ELAN tiers cannot hold overlapping annotations either, so a
speaker's turn that starts inside their previous one is appended to it (text kept, as in TextGrid).
A personal-data mark is what a redacted release froze (`pii_spans`): the turn already carries
the tag word (`[phone]`) over the span's time, and the mark repeats it with its kind.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text

UTTERANCE = "utterance"
PERSONAL_DATA = "personal-data"
PII_SUFFIX = "/personal-data"
# ELAN's four standard constraints; only Included_In is used, all are declared as ELAN itself does
_CONSTRAINTS = {
    "Time_Subdivision": "Time subdivision of parent annotation's time interval, no time gaps allowed within this interval",
    "Symbolic_Subdivision": "Symbolic subdivision of a parent annotation. Annotations refering to the same parent are ordered",
    "Symbolic_Association": "1-1 association with a parent annotation",
    "Included_In": "Time alignable annotations within the parent annotation's time interval, gaps are allowed",
}
# XML 1.0 cannot carry most C0 controls (not even escaped): such a character in a transcript becomes U+FFFD
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", normalise_text(text))


@dataclass
class SpeakerTier:
    """One speaker's turns (ms, ms, text) and their personal-data marks (ms, ms, kind)."""

    turns: list[tuple[int, int, str]] = field(default_factory=list)
    marks: list[tuple[int, int, str]] = field(default_factory=list)

    def add_turn(self, start: int, end: int, text: str) -> None:
        if self.turns and start < self.turns[-1][1]:
            prev = self.turns[-1]
            self.turns[-1] = (prev[0], max(prev[1], end), normalise_text(f"{prev[2]} {text}"))
        else:
            self.turns.append((start, end, text))

    def add_mark(self, start: int, end: int, kind: str) -> None:
        """A mark inside its turn; marks that touch or overlap merge (a dependent tier holds no overlaps)."""
        if self.marks and start <= self.marks[-1][1]:
            prev = self.marks[-1]
            kinds = prev[2] if kind in prev[2].split("+") else f"{prev[2]}+{kind}"
            self.marks[-1] = (prev[0], max(prev[1], end), kinds)
        else:
            self.marks.append((start, end, kind))


def _ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000))


def speaker_tiers(item: Item) -> dict[str, SpeakerTier]:
    """The item's timed turns per speaker, in ms, with the marks of the entry's frozen PII spans."""
    kinds_by_turn: dict[int, set[str]] = {}
    for turn_index, _, _, kind in item.entry.get("pii_spans") or []:
        kinds_by_turn.setdefault(int(turn_index), set()).add(str(kind))
    end_ms = _ms(item.duration)
    tiers: dict[str, SpeakerTier] = {}
    for index, turn in item.timed_turns():
        start, end = _ms(turn.start), min(_ms(turn.end), end_ms)
        if end <= start:
            continue
        tier = tiers.setdefault(item.speaker(turn), SpeakerTier())
        tier.add_turn(start, end, xml_text(turn.text))
        tags = {f"[{kind}]": kind for kind in kinds_by_turn.get(index, ())}
        for word in sorted(turn.words, key=lambda w: w.start):
            if word.text in tags:
                mark_start, mark_end = max(_ms(word.start), start), min(_ms(word.end), end)
                if mark_end > mark_start:
                    tier.add_mark(mark_start, mark_end, tags[word.text])
    return tiers


def eaf_document(item: Item, media: str | None) -> ET.ElementTree:
    """The EAF 3.0 document of one recording; `media` is the audio's path relative to the .eaf file."""
    root = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": "turnscribe", "DATE": "1970-01-01T00:00:00+00:00", "FORMAT": "3.0", "VERSION": "3.0",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
    })  # a fixed DATE: the same release pulls to the same bytes
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    if media:
        ET.SubElement(header, "MEDIA_DESCRIPTOR", {"MEDIA_URL": media, "RELATIVE_MEDIA_URL": media, "MIME_TYPE": "audio/x-wav"})
    order = ET.SubElement(root, "TIME_ORDER")
    tier_elements: list[ET.Element] = []
    slots = annotations = 0

    def slot(ms: int) -> str:
        nonlocal slots
        slots += 1
        ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": f"ts{slots}", "TIME_VALUE": str(ms)})
        return f"ts{slots}"

    def annotate(tier: ET.Element, start: int, end: int, value: str) -> None:
        nonlocal annotations
        annotations += 1
        wrapper = ET.SubElement(tier, "ANNOTATION")
        aligned = ET.SubElement(wrapper, "ALIGNABLE_ANNOTATION", {
            "ANNOTATION_ID": f"a{annotations}", "TIME_SLOT_REF1": slot(start), "TIME_SLOT_REF2": slot(end)})
        ET.SubElement(aligned, "ANNOTATION_VALUE").text = value

    for speaker, tier in sorted(speaker_tiers(item).items()):
        main = ET.Element("TIER", {"LINGUISTIC_TYPE_REF": UTTERANCE, "PARTICIPANT": speaker, "TIER_ID": speaker})
        for start, end, text in tier.turns:
            annotate(main, start, end, text)
        marks = ET.Element("TIER", {"LINGUISTIC_TYPE_REF": PERSONAL_DATA, "PARENT_REF": speaker,
                                    "PARTICIPANT": speaker, "TIER_ID": speaker + PII_SUFFIX})
        for start, end, kind in tier.marks:
            annotate(marks, start, end, kind)
        tier_elements += [main, marks]
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(annotations)
    root.extend(tier_elements)
    ET.SubElement(root, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": UTTERANCE,
                                            "TIME_ALIGNABLE": "true"})
    ET.SubElement(root, "LINGUISTIC_TYPE", {"CONSTRAINTS": "Included_In", "GRAPHIC_REFERENCES": "false",
                                            "LINGUISTIC_TYPE_ID": PERSONAL_DATA, "TIME_ALIGNABLE": "true"})
    for stereotype, description in _CONSTRAINTS.items():
        ET.SubElement(root, "CONSTRAINT", {"DESCRIPTION": description, "STEREOTYPE": stereotype})
    ET.indent(root)
    return ET.ElementTree(root)


class ElanExporter(Exporter):
    name = "eaf"
    needs_audio = False

    def add(self, item: Item) -> None:
        target = self.root / item.split / f"{item.key}.eaf"
        target.parent.mkdir(parents=True, exist_ok=True)
        media = os.path.relpath(item.audio, target.parent) if item.audio is not None else None
        staged = target.with_suffix(".eaf.part")
        eaf_document(item, media).write(staged, encoding="UTF-8", xml_declaration=True)
        staged.replace(target)
        self.written += 1
