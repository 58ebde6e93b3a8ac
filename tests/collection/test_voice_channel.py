"""Voice profiles hear every recording through one telephone line (`collection.voices.condition`).

Voices of one person recorded on a headset and on a phone must reach the encoder alike:
the profiles' front end sends every recording down the 300-3400 Hz, 8 kHz μ-law line a
phone call is (see collection/voices.py). Real audio from the committed set, no encoder.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
from scipy.signal import welch

from collection.synthetic import DIALOGUES_DIR
from collection.voices import condition


def _power_db(audio: np.ndarray, low: float, high: float) -> float:
    """Power between `low` and `high` Hz, in dB relative to the whole signal's power."""
    freqs, density = welch(audio, fs=16000, nperseg=1024)
    inside = (freqs >= low) & (freqs < high)
    return float(10 * np.log10(density[inside].sum() / density.sum()))


def test_every_recording_is_heard_through_the_telephone_line() -> None:
    audio, rate = sf.read(DIALOGUES_DIR / "dlg001.flac", dtype="float32")  # a laptop: 150-6000 Hz
    assert rate == 16000
    assert _power_db(audio, 4000, 8000) > -40, "the input must carry speech above 4 kHz for the test to mean anything"

    heard = condition(audio)
    assert heard.shape == audio.shape and heard.dtype == np.float32
    # At 8 kHz nothing above the 4 kHz Nyquist frequency can survive; resampling back adds
    # none. A 16 kHz band filter (the earlier front end) leaves about -43 dB there.
    assert _power_db(heard, 4000, 8000) < -80
    # The band a phone carries is kept: almost all that is heard lies in 300-3400 Hz.
    assert _power_db(heard, 300, 3400) > -0.5
