"""Silhouettes behind the "voices barely separate" flag, and its false alarms and detections.

`python benchmarks/separation_bench.py [--sets DIR ...] [--threshold T]`

Cases, each diarized by the embedded diarizer with num_speakers=2 (as a dialogue protocol
declares):

- *two voices*: every real two-speaker recording available offline
  (`collection.synthetic.reference_audio.real_conversations`: pyannote.audio's sample,
  as it is and on a telephone line, in a room, in traffic and in an office) and every
  dialogue of each ``--sets`` folder (made by ``python -m collection.synthetic.generator
  --realistic --seed S --out DIR``). A flag here is a false alarm.
- *one voice registered as two*: each speaker's own speech (other speakers' turns cut
  out) from the same recordings. A flag here is a detection.

Prints one line per case and, per group, the false alarms and detections at the threshold
(default: `diarization.separation.VOICE_SEPARATION_FLAG`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from collection.synthetic.reference_audio import Conversation, one_voice, real_conversations, synthetic_conversations
from diarization.embedded import EmbeddedDiarizer
from diarization.separation import VOICE_SEPARATION_FLAG


def silhouettes(diarizer: EmbeddedDiarizer, conversations: list[Conversation],
                one_voices: bool = True) -> list[tuple[str, str, float | None]]:
    """(case, "two" or "one", cluster_separation) for each conversation and each of its speakers."""
    out = []
    for conversation in conversations:
        result = diarizer(conversation.audio, num_speakers=2)
        out.append((conversation.name, "two", result.params.get("cluster_separation")))
        for speaker in conversation.speakers if one_voices else []:
            solo = diarizer(one_voice(conversation, speaker), num_speakers=2)
            out.append((f"{conversation.name}:{speaker}", "one", solo.params.get("cluster_separation")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="*", default=[], help="generated dialogue folders")
    parser.add_argument("--threshold", type=float, default=VOICE_SEPARATION_FLAG)
    parser.add_argument("--two-only", action="store_true", help="skip the one-voice cases")
    parser.add_argument("--skip-real", action="store_true", help="skip the real recordings")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    diarizer = EmbeddedDiarizer()
    groups = {} if args.skip_real else {"real": real_conversations()}
    groups |= {str(folder): synthetic_conversations(folder) for folder in args.sets}
    for group, conversations in groups.items():
        rows = silhouettes(diarizer, conversations, not args.two_only)
        for case, kind, value in rows:
            print(f"{group}\t{kind}\t{case}\t{value}")
        two = [v for _, k, v in rows if k == "two"]
        one = [v for _, k, v in rows if k == "one"]
        flagged = [v is not None and v < args.threshold for v in two]
        caught = [v is not None and v < args.threshold for v in one]
        print(f"# {group}: two voices min {min(v for v in two if v is not None):.4f}, false alarms {sum(flagged)}/{len(two)}"
              + (f"; one voice max {max(v for v in one if v is not None):.4f}, flagged {sum(caught)}/{len(one)}" if one else ""))


if __name__ == "__main__":
    main()
