"""The "voices barely separate" figure: no false alarm on real two-speaker speech or on
realistic dialogues of a seed the thresholds were not chosen on, and raised on one real
voice registered as two (by the held-out agreement; the silhouette alone misses every
such case, see diarization/separation.py), and on one synthetic voice registered as two that
only the trained voice distance catches. Real diarizer, real audio."""

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
from diarization.separation import (
    AGREEMENT_VETO,
    HELDOUT_AGREEMENT_FLAG,
    VOICE_DISTANCE_FLAG,
    VOICE_SEPARATION_FLAG,
    heldout_agreement,
    separation_flag,
)

HELD_OUT_SEED = 12  # the thresholds were chosen on realistic seeds 0, 10 and 11 (diarization/separation.py)


@pytest.fixture(scope="module")
def diarizer() -> EmbeddedDiarizer:
    return EmbeddedDiarizer()


def _separation(diarizer: EmbeddedDiarizer, audio) -> float | None:
    return diarizer(audio, num_speakers=2).params["cluster_separation"]


def _flag(diarizer: EmbeddedDiarizer, audio) -> tuple[str | None, float | None, float | None]:
    """The flag as a pre-annotation raises it, with the silhouette and the agreement behind it."""
    flag, separation, agreement, _ = _flag_and_distance(diarizer, audio)
    return flag, separation, agreement


def _flag_and_distance(diarizer: EmbeddedDiarizer, audio) -> tuple[str | None, float | None, float | None,
                                                                    float | None]:
    """The flag as a pre-annotation raises it, with the three statistics behind it."""
    params = diarizer(audio, num_speakers=2).params
    separation, agreement = params["cluster_separation"], params["cluster_agreement"]
    distance = params["cluster_voice_distance"]
    return separation_flag(separation, agreement, distance), separation, agreement, distance


def test_the_flag_text_names_the_statistic_and_its_threshold() -> None:
    assert separation_flag(None) is None and separation_flag(VOICE_SEPARATION_FLAG) is None
    assert separation_flag(None, HELDOUT_AGREEMENT_FLAG) is None and separation_flag(0.3, 0.9) is None
    text = separation_flag(0.1)
    assert text is not None and "voices barely separate" in text and "0.10" in text and str(VOICE_SEPARATION_FLAG) in text
    text = separation_flag(0.3, 0.2)
    assert text is not None and "voices barely separate" in text and "agreement 0.20" in text
    assert str(HELDOUT_AGREEMENT_FLAG) in text and "silhouette" not in text


def test_a_low_voice_distance_flags_only_where_the_agreement_does_not_vouch_for_the_clusters() -> None:
    """The combined rule: voice distance < 0.41 AND agreement < 0.85 (fixed on calibration data,
    measured once on fresh seeds: diarization/separation.py). Values either side of each constant."""
    assert (VOICE_DISTANCE_FLAG, AGREEMENT_VETO) == (0.41, 0.85)
    text = separation_flag(0.3, 0.70, 0.30)
    assert text is not None and "voice distance 0.30 < 0.41 with held-out agreement 0.70 < 0.85" in text
    assert "silhouette" not in text
    assert separation_flag(0.3, 0.84, 0.40) is not None
    assert separation_flag(0.3, 0.85, 0.10) is None, "the agreement vouches for the clusters: no flag"
    assert separation_flag(0.3, 0.99, 0.19) is None, "an earlier backend's distance for two voices in a noisy room"
    assert separation_flag(0.3, 0.70, 0.41) is None, "the voices lie apart in the backend's space"
    assert separation_flag(0.3, None, 0.10) is None, "no agreement measured: the distance alone never flags"
    assert separation_flag(0.3, 0.70, None) is None
    text = separation_flag(0.3, 0.20, 0.10)
    assert text is not None and "held-out agreement 0.20 < 0.5" in text and "voice distance" not in text


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


def test_the_silhouette_alone_does_not_tell_one_voice_from_its_two_voice_dialogue(diarizer: EmbeddedDiarizer) -> None:
    """spk-0006's own speech in the committed dlg004 (the other speaker's turns cut out), diarized
    as two, separates about as well as the dialogue of two women it comes from (0.176 against 0.171
    with the voices embedded on the widened speech; 0.144 against 0.168 on the VAD's speech): both
    lie above the silhouette flag, which is set under the lowest two-voice value and so cannot catch
    such a single voice (diarization/separation.py). The dialogue raises no flag."""
    dlg004 = next(c for c in synthetic_conversations(DIALOGUES_DIR) if c.name == "dlg004")
    alone = _separation(diarizer, one_voice(dlg004, "spk-0006"))
    flag, together, _, _ = _flag_and_distance(diarizer, dlg004.audio)
    assert alone is not None and together is not None
    assert alone >= VOICE_SEPARATION_FLAG and together >= VOICE_SEPARATION_FLAG
    assert abs(alone - together) < 0.05
    assert flag is None


def test_raised_on_one_voice_registered_as_two_that_only_the_voice_distance_catches(diarizer: EmbeddedDiarizer) -> None:
    """spk-0010's own speech in the committed dlg006, declared as two: the silhouette (0.22) and the
    agreement (0.74, above 0.50) say nothing; the clusters lie 0.397 apart in the trained backend's
    space (two voices on the synthetic calibration sets: from 0.457) and the agreement is under the
    0.85 veto. The dialogue itself (two voices) is not flagged."""
    dlg006 = next(c for c in synthetic_conversations(DIALOGUES_DIR) if c.name == "dlg006")
    flag, separation, agreement, distance = _flag_and_distance(diarizer, one_voice(dlg006, "spk-0010"))
    assert separation is not None and separation >= VOICE_SEPARATION_FLAG
    assert agreement is not None and HELDOUT_AGREEMENT_FLAG <= agreement < AGREEMENT_VETO
    assert distance is not None and distance < VOICE_DISTANCE_FLAG
    assert flag is not None and "voice distance" in flag, (separation, agreement, distance)
    flag, _, _, distance = _flag_and_distance(diarizer, dlg006.audio)
    assert flag is None and distance is not None and distance > 1.0
