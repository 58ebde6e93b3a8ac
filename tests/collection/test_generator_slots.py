"""Choosing the words the synthetic generator's script slots are filled from (no espeak-ng needed)."""

from __future__ import annotations

import numpy as np
import pytest

from collection.synthetic.generator import SCRIPTS, SLOT_VALUES, main, script_lines, slot_words


def test_chosen_slot_words_fill_the_script_and_the_others_stay() -> None:
    assert slot_words({}) == SLOT_VALUES
    slots = slot_words({"name": ["Okonkwo"], "day": ["Sunday"]})
    assert slots["name"] == ("Okonkwo",) and slots["doctor"] == SLOT_VALUES["doctor"]
    lines = script_lines("booking", 10, np.random.default_rng(3), slots)
    assert lines[-2] == SCRIPTS["booking"]["closing"][0].format(name="Okonkwo")
    assert "Sunday" in lines[-1]  # day2 may be no other day than the only one given


def test_unknown_or_empty_slots_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown slot\(s\) nmae \(slots: party, day"):
        slot_words({"nmae": ["Okonkwo"]})
    with pytest.raises(ValueError, match=r"slot\(s\) city given no words"):
        slot_words({"city": [" ", ""]})
    with pytest.raises(SystemExit):
        main(["--slot", "city"])
    assert "write SLOT=WORD,WORD" in capsys.readouterr().err
