"""Where each word of an espeak-ng utterance lies in its audio: the ground truth for word alignment.

The `espeak-ng` command writes no word times, but the library it runs on reports a
word event (character position, audio sample) while it synthesizes. The library's
audio is the command's audio without the command's trailing silence (checked with
espeak-ng 1.51), so the events time the generator's utterances exactly. A word starts
at its event and ends where the next word starts; the silence espeak puts around
punctuation is then cut off each word with the energy gate the generator trims with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8 = 2, 1, 1
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_lock = threading.Lock()  # the library holds one global synthesizer


@dataclass(frozen=True)
class TimedToken:
    """A whitespace-separated token of the text and its span in samples of the utterance's audio."""

    text: str
    start: int
    end: int


class _Espeak:
    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.rate <= 0:
            raise RuntimeError("libespeak-ng did not initialise")
        self.samples = 0
        self.events: list[tuple[int, int]] = []  # (character position, 1-based; sample)
        self._callback = _Callback(self._collect)  # kept referenced: the library calls it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.Array, n: int, events: ctypes.Array) -> int:  # type: ignore[type-arg]
        self.samples += max(n, 0)
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD and events[i].length > 0:
                self.events.append((events[i].text_position, events[i].sample))
            i += 1
        return 0

    def word_events(self, voice: str, speed: int, pitch: int, text: str) -> tuple[list[tuple[int, int]], int]:
        """(character position, sample at the library's rate) per word event, and the audio's length."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, speed, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self.samples, self.events = 0, []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        return self.events, self.samples


_engine: _Espeak | None = None


def token_times(voice: str, speed: int, pitch: int, text: str, audio: np.ndarray, sample_rate: int,
                threshold_db: float = -40.0, frame: int = 80) -> list[TimedToken]:
    """Each token of `text` with its span in `audio` (the untrimmed utterance at `sample_rate`).

    Tokens are whitespace-separated, as the turn type counts words; a token espeak
    splits (``I'd``) takes its first event's start, tokens espeak joins share the span.
    """
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Espeak()
        events, _ = _engine.word_events(voice, speed, pitch, text)
        rate = _engine.rate
    char_starts, tokens, position = [], text.split(), 0
    for token in tokens:
        position = text.index(token, position)
        char_starts.append(position)
        position += len(token)
    starts: list[int | None] = [None] * len(tokens)
    for char, sample in events:  # char is 1-based
        k = int(np.searchsorted(char_starts, char - 1, side="right")) - 1
        if 0 <= k < len(tokens) and starts[k] is None:
            starts[k] = int(round(sample * sample_rate / rate))
    if not tokens or starts[0] is None:
        raise RuntimeError(f"espeak-ng reported no word event for the start of {text!r}")
    known = [k for k, s in enumerate(starts) if s is not None]
    known_chars = [char_starts[k] for k in known] + [len(text)]
    known_samples = [starts[k] for k in known] + [len(audio)]
    # espeak joins some short words into its neighbour's event ("on the"): those share its span by characters
    bounds = [int(round(np.interp(c, known_chars, known_samples))) if s is None else s
              for c, s in zip(char_starts, starts)] + [len(audio)]
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = rms > rms.max() * 10 ** (threshold_db / 20)
    out = []
    for token, lo, hi in zip(tokens, bounds, bounds[1:]):
        frames = np.flatnonzero(loud[lo // frame : max(hi // frame, lo // frame + 1)])
        start = lo if not len(frames) else max(lo, (lo // frame + int(frames[0])) * frame)
        end = hi if not len(frames) else min(hi, (lo // frame + int(frames[-1]) + 1) * frame)
        out.append(TimedToken(token, start, max(start, end)))
    return out
