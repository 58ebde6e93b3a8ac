"""The "voices barely separate" figure: no false alarm on real two-speaker speech or on
realistic dialogues of a seed the threshold was not chosen on. (Raised on one voice
registered as two: not reached, see diarization/separation.py.) Real diarizer, real audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from collection.synthetic import DIALOGUES_DIR
from collection.synthetic.generator import generate_dialogues
from collection.synthetic.reference_audio import one_voice, real_conversations, synthetic_conversations
from diarization.embedded import EmbeddedDiarizer
from diarization.separation import VOICE_SEPARATION_FLAG, separation_flag

HELD_OUT_SEED = 12  # the threshold was chosen on realistic seeds 0, 10 and 11 (diarization/separation.py)


@pytest.fixture(scope="module")
def diarizer() -> EmbeddedDiarizer:
    return EmbeddedDiarizer()


def _separation(diarizer: EmbeddedDiarizer, audio) -> float | None:
    return diarizer(audio, num_speakers=2).params["cluster_separation"]


def test_the_flag_text_names_the_silhouette_and_the_threshold() -> None:
    assert separation_flag(None) is None and separation_flag(VOICE_SEPARATION_FLAG) is None
    text = separation_flag(0.1)
    assert text is not None and "voices barely separate" in text and "0.10" in text and str(VOICE_SEPARATION_FLAG) in text


def test_no_false_alarm_on_the_real_two_speaker_recordings(diarizer: EmbeddedDiarizer) -> None:
    conversations = real_conversations()
    assert len(conversations) == 5 and all(len(c.speakers) == 2 for c in conversations)
    values = {c.name: _separation(diarizer, c.audio) for c in conversations}
    assert all(v is not None and separation_flag(v) is None for v in values.values()), values
    # the plain real call sat at 0.22 and was flagged by the threshold chosen on synthetic voices (0.26)
    assert values["pyannote-sample"] < 0.26


def test_no_false_alarm_on_realistic_dialogues_of_a_held_out_seed(diarizer: EmbeddedDiarizer, tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    generate_dialogues(tmp_path, count=6, seed=HELD_OUT_SEED, realistic=True)
    conditions = json.loads((tmp_path / "truth.json").read_text())["conditions"]
    assert {c["telephone_line"] for c in conditions.values()} == {True, False}
    assert any(c["rt60_s"] for c in conditions.values())
    values = {c.name: _separation(diarizer, c.audio) for c in synthetic_conversations(tmp_path)}
    assert len(values) == 6
    assert all(v is not None and separation_flag(v) is None for v in values.values()), values


def test_one_voice_registered_as_two_separates_less_than_its_two_voice_dialogue(diarizer: EmbeddedDiarizer) -> None:
    """spk-0006's own speech in the committed dlg004 (the other speaker's turns cut out),
    diarized as two: its silhouette is lower than the dialogue's, but above the flag (no
    threshold separates every single voice from every real call: diarization/separation.py)."""
    dlg004 = next(c for c in synthetic_conversations(DIALOGUES_DIR) if c.name == "dlg004")
    alone = _separation(diarizer, one_voice(dlg004, "spk-0006"))
    together = _separation(diarizer, dlg004.audio)
    assert alone is not None and together is not None and alone < together
    assert separation_flag(together) is None
