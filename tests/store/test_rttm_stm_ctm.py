"""RTTM, STM and CTM: the lines SCTK and pyannote read, and reading them back into turns."""

from __future__ import annotations

from pathlib import Path

from pyannote.database.util import load_rttm

from collection.synthetic import DIALOGUES_DIR
from store.rttm_stm_ctm import read_ctm, read_rttm, read_stm, turns_to_rttm, turns_to_stm, words_to_ctm
from store.turns import Turn, Word

TURNS = [
    Turn("B", 1.0, 1.4, ""),  # an untranscribed backchannel: in the RTTM, not in the STM
    Turn("A", 0.5, 1.25, "hi  there", (Word("hi", 0.5, 0.8, 0.91), Word("there", 0.85, 1.25, 0.4))),
    Turn("B", 2.0, 2.5, "ok", (Word("ok", 2.0, 2.0, 0.7),)),  # an instant word: no CTM line
]


def test_lines_as_sctk_reads_them() -> None:
    assert turns_to_rttm(TURNS, "f").splitlines() == [
        "SPEAKER f 1 1.000 0.400 <NA> <NA> B <NA> <NA>",
        "SPEAKER f 1 0.500 0.750 <NA> <NA> A <NA> <NA>",
        "SPEAKER f 1 2.000 0.500 <NA> <NA> B <NA> <NA>",
    ]
    assert turns_to_stm(TURNS, "f").splitlines() == ["f 1 A 0.500 1.250 hi there", "f 1 B 2.000 2.500 ok"]
    assert words_to_ctm(TURNS, "f").splitlines() == ["f 1 0.500 0.300 hi 0.910", "f 1 0.850 0.400 there 0.400"]


def test_what_is_written_reads_back(tmp_path: Path) -> None:
    rttm = read_rttm(turns_to_rttm(TURNS, "f") + turns_to_rttm(TURNS[:1], "g"))
    assert {uri: [(t.speaker, t.start, round(t.end, 3)) for t in turns] for uri, turns in rttm.items()} == {
        "f": [("B", 1.0, 1.4), ("A", 0.5, 1.25), ("B", 2.0, 2.5)], "g": [("B", 1.0, 1.4)]}
    assert read_stm(";; a comment\n" + turns_to_stm(TURNS, "f")) == {"f": [Turn("A", 0.5, 1.25, "hi there"), Turn("B", 2.0, 2.5, "ok")]}
    ctm = read_ctm(words_to_ctm(TURNS, "f"))["f"]
    assert [(w.text, w.start, round(w.end, 3), w.probability) for w in ctm] == [("hi", 0.5, 0.8, 0.91), ("there", 0.85, 1.25, 0.4)]
    (tmp_path / "f.rttm").write_text(turns_to_rttm(TURNS, "f"))
    assert load_rttm(tmp_path / "f.rttm")["f"].label_duration("A") == 0.75, "pyannote reads the same file"


def test_the_committed_ground_truth_reads_as_turns() -> None:
    rttm = read_rttm((DIALOGUES_DIR / "dlg001.rttm").read_text())["dlg001"]
    stm = read_stm((DIALOGUES_DIR / "dlg001.stm").read_text())["dlg001"]
    assert [(t.speaker, t.start, t.end) for t in stm] == [(t.speaker, t.start, round(t.end, 3)) for t in rttm]
    assert turns_to_rttm(rttm, "dlg001") == (DIALOGUES_DIR / "dlg001.rttm").read_text()
    assert turns_to_stm(stm, "dlg001") == (DIALOGUES_DIR / "dlg001.stm").read_text()
