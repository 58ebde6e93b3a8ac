"""The "voices barely separate" figure: no false alarm on real two-speaker speech or on
realistic dialogues of a seed the thresholds were not chosen on, and raised on one real
voice registered as two (by the held-out agreement; the silhouette alone misses every
such case, see diarization/separation.py). Real diarizer, real audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from collection.synthetic import DIALOGUES_DIR
from collection.synthetic.generator import generate_dialogues
from collection.synthetic.reference_audio import one_voice, real_conversations, synthetic_conversations
from diarization.embedded import EmbeddedDiarizer
from diarization.separation import HELDOUT_AGREEMENT_FLAG, VOICE_SEPARATION_FLAG, heldout_agreement, separation_flag

HELD_OUT_SEED = 12  # the thresholds were chosen on realistic seeds 0, 10 and 11 (diarization/separation.py)


@pytest.fixture(scope="module")
def diarizer() -> EmbeddedDiarizer:
    return EmbeddedDiarizer()


def _separation(diarizer: EmbeddedDiarizer, audio) -> float | None:
    return diarizer(audio, num_speakers=2).params["cluster_separation"]


def _flag(diarizer: EmbeddedDiarizer, audio) -> tuple[str | None, float | None, float | None]:
    """The flag as a pre-annotation raises it, with the two statistics behind it."""
    params = diarizer(audio, num_speakers=2).params
    separation, agreement = params["cluster_separation"], params["cluster_agreement"]
    return separation_flag(separation, agreement), separation, agreement


def test_the_flag_text_names_the_statistic_and_its_threshold() -> None:
    assert separation_flag(None) is None and separation_flag(VOICE_SEPARATION_FLAG) is None
    assert separation_flag(None, HELDOUT_AGREEMENT_FLAG) is None and separation_flag(0.3, 0.9) is None
    text = separation_flag(0.1)
    assert text is not None and "voices barely separate" in text and "0.10" in text and str(VOICE_SEPARATION_FLAG) in text
    text = separation_flag(0.3, 0.2)
    assert text is not None and "voices barely separate" in text and "agreement 0.20" in text
    assert str(HELDOUT_AGREEMENT_FLAG) in text and "silhouette" not in text


def _standardised_mfcc(audio) -> np.ndarray:
    import librosa

    features = librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=20, n_fft=400, hop_length=160, n_mels=40).T
    return (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)


def _turn_labels(conversation, frames: int, label_of) -> np.ndarray:
    labels = np.full(frames, -1)
    for i, (speaker, start, end) in enumerate(conversation.turns):
        labels[int(start * 100): min(frames, int(end * 100))] = label_of(i, speaker)
    return labels


def test_agreement_is_high_for_two_voices_and_chance_for_one_voice_split_by_turns() -> None:
    """With the reference turns as clusters, held-out turns go back to their own voice; one voice's
    turns labelled alternately (a split that follows nothing in the voice) come back at chance."""
    dlg004 = next(c for c in synthetic_conversations(DIALOGUES_DIR) if c.name == "dlg004")
    features = _standardised_mfcc(dlg004.audio)
    speakers = dlg004.speakers
    two = _turn_labels(dlg004, len(features), lambda i, s: speakers.index(s))
    assert heldout_agreement(features, two) >= 0.9  # the two women the silhouette barely separates (0.168)
    alone = one_voice(dlg004, speakers[0])
    own = [t for t in dlg004.turns if t[0] == speakers[0]]
    offsets = np.cumsum([0.0] + [end - start for _, start, end in own])  # one_voice concatenates the turns
    from collection.synthetic.reference_audio import Conversation
    cut = Conversation("alone", alone, tuple((s, offsets[i], offsets[i + 1]) for i, (s, _, _) in enumerate(own)))
    features = _standardised_mfcc(alone)
    split = _turn_labels(cut, len(features), lambda i, s: i % 2)
    agreement = heldout_agreement(features, split)
    assert agreement is not None and agreement < 0.8
    assert heldout_agreement(features, np.zeros(len(features), int)) is None, "one cluster: nothing to judge"


def test_no_false_alarm_on_the_real_two_speaker_recordings(diarizer: EmbeddedDiarizer) -> None:
    conversations = real_conversations()
    assert len(conversations) == 5 and all(len(c.speakers) == 2 for c in conversations)
    values = {c.name: _flag(diarizer, c.audio) for c in conversations}
    assert all(flag is None and agreement is not None for flag, _, agreement in values.values()), values
    # the plain real call sat at 0.22 and was flagged by the threshold chosen on synthetic voices (0.26)
    assert values["pyannote-sample"][1] < 0.26


def test_no_false_alarm_on_realistic_dialogues_of_a_held_out_seed(diarizer: EmbeddedDiarizer, tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    generate_dialogues(tmp_path, count=6, seed=HELD_OUT_SEED, realistic=True)
    conditions = json.loads((tmp_path / "truth.json").read_text())["conditions"]
    assert {c["telephone_line"] for c in conditions.values()} == {True, False}
    assert any(c["rt60_s"] for c in conditions.values())
    values = {c.name: _flag(diarizer, c.audio) for c in synthetic_conversations(tmp_path)}
    assert len(values) == 6
    assert all(flag is None and agreement is not None for flag, _, agreement in values.values()), values


def test_raised_on_one_real_voice_registered_as_two(diarizer: EmbeddedDiarizer) -> None:
    """speaker90 of pyannote's real sample, in a reverberant room, alone (the other speaker's
    turns cut out) and declared as two: the silhouette (0.21) says nothing, the held-out
    agreement (0.00 when the threshold was chosen) flags it; the same call with both voices is
    not flagged (the test above)."""
    room = next(c for c in real_conversations() if c.name == "pyannote-sample+room-rt60-0.5")
    flag, separation, agreement = _flag(diarizer, one_voice(room, "speaker90"))
    assert separation is not None and separation > VOICE_SEPARATION_FLAG
    assert flag is not None and "held-out agreement" in flag, (separation, agreement)


def test_one_voice_registered_as_two_separates_less_than_its_two_voice_dialogue(diarizer: EmbeddedDiarizer) -> None:
    """spk-0006's own speech in the committed dlg004 (the other speaker's turns cut out),
    diarized as two: its silhouette is lower than the dialogue's, but above the flag (no
    threshold separates every single voice from every real call: diarization/separation.py)."""
    dlg004 = next(c for c in synthetic_conversations(DIALOGUES_DIR) if c.name == "dlg004")
    alone = _separation(diarizer, one_voice(dlg004, "spk-0006"))
    together = _separation(diarizer, dlg004.audio)
    assert alone is not None and together is not None and alone < together
    assert separation_flag(together) is None
