"""Where each word of an espeak-ng utterance lies in its audio: the ground truth for word alignment.

The `espeak-ng` command writes no word times, but the library it runs on reports a
word event (character position, audio sample) while it synthesizes. The library keeps
state from one utterance to the next, so each utterance is said once more by a fresh
process (`python -m collection.synthetic.word_times`), as the command does, and its
audio is checked to be the start of the command's, sample for sample (the library's
callback may miss the last buffer): the events then time the generator's utterance
exactly. A word
starts at its event and ends where the next starts, less the silence espeak puts at
punctuation (cut with the gate the generator trims utterances with); words espeak says
as one ("on the") share that span by characters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8 = 2, 1, 1
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1


@dataclass(frozen=True)
class TimedToken:
    """A whitespace-separated token of the text and its span in samples of the utterance's audio."""

    text: str
    start: int
    end: int


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


def _say_once(voice: str, speed: int, pitch: int, text: str) -> dict[str, object]:
    """In a fresh process: the library's audio (int16), its rate and the word events (1-based character, sample)."""
    lib = ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
    samples: list[int] = []
    events: list[tuple[int, int]] = []

    def collect(wav, n, event):  # type: ignore[no-untyped-def]
        if n > 0:
            samples.extend(wav[:n])
        i = 0
        while event[i].type != _EVENT_LIST_TERMINATED:
            if event[i].type == _EVENT_WORD and event[i].length > 0:
                events.append((event[i].text_position, event[i].sample))
            i += 1
        return 0

    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))(collect)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_RATE, speed, 0)
    lib.espeak_SetParameter(_PITCH, pitch, 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    return {"rate": rate, "samples": samples, "events": events}


def word_starts(voice: str, speed: int, pitch: int, text: str, native: np.ndarray, native_rate: int) -> list[float]:
    """Each whitespace-separated token's start in seconds in `native`, the `espeak-ng` command's audio of `text`."""
    said = json.loads(subprocess.run([sys.executable, "-m", __name__, voice, str(speed), str(pitch), text],
                                     check=True, capture_output=True, text=True).stdout)
    library = np.asarray(said["samples"], dtype=np.float64) / 32768.0
    if said["rate"] != native_rate or len(library) > len(native) or not np.array_equal(library, native[: len(library)]):
        raise RuntimeError(f"espeak-ng's library did not say {text!r} as the command did: no word times")
    tokens, char_starts, position = text.split(), [], 0
    for token in tokens:
        position = text.index(token, position)
        char_starts.append(position)
        position += len(token)
    starts: list[float | None] = [None] * len(tokens)
    for char, sample in said["events"]:
        k = int(np.searchsorted(char_starts, char - 1, side="right")) - 1
        if 0 <= k < len(tokens) and starts[k] is None:
            starts[k] = sample / native_rate
    if not tokens or starts[0] is None:
        raise RuntimeError(f"espeak-ng reported no word event for the start of {text!r}")
    known = [k for k, s in enumerate(starts) if s is not None]
    chars = [char_starts[k] for k in known] + [len(text)]
    times = [starts[k] for k in known] + [len(native) / native_rate]
    return [float(np.interp(c, chars, times)) if s is None else s for c, s in zip(char_starts, starts)]


def token_spans(text: str, starts_s: list[float], audio: np.ndarray, sample_rate: int, threshold_db: float = -40.0,
                frame: int = 80) -> list[TimedToken]:
    """Spans in samples of `audio` (the untrimmed utterance): start to next start, silence cut off both ends."""
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = rms > rms.max() * 10 ** (threshold_db / 20)
    bounds = [int(round(s * sample_rate)) for s in starts_s] + [len(audio)]
    out = []
    for token, lo, hi in zip(text.split(), bounds, bounds[1:]):
        frames = np.flatnonzero(loud[lo // frame : max(hi // frame, lo // frame + 1)])
        start = lo if not len(frames) else max(lo, (lo // frame + int(frames[0])) * frame)
        end = hi if not len(frames) else min(hi, (lo // frame + int(frames[-1]) + 1) * frame)
        out.append(TimedToken(token, start, max(start, end)))
    return out


if __name__ == "__main__":
    print(json.dumps(_say_once(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
