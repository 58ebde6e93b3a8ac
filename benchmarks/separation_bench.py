"""The statistics behind the "voices barely separate" flag, and its false alarms and detections.

`python benchmarks/separation_bench.py [--sets DIR ...]`

Cases, each diarized by the embedded diarizer with num_speakers=2 (as a dialogue protocol
declares):

- *two voices*: every real two-speaker recording available offline
  (`collection.synthetic.reference_audio.real_conversations`: pyannote.audio's sample,
  as it is and on a telephone line, in a room, in traffic and in an office) and every
  dialogue of each ``--sets`` folder (made by ``python -m collection.synthetic.generator
  --realistic --seed S --out DIR``). A flag here is a false alarm.
- *one voice registered as two*: each speaker's own speech (other speakers' turns cut
  out) from the same recordings. A flag here is a detection.

Prints one line per case (silhouette, held-out agreement, voice distance, flagged) and, per
group, the false alarms and detections of `diarization.separation.separation_flag` at its
thresholds.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from collection.synthetic.reference_audio import Conversation, one_voice, real_conversations, synthetic_conversations
from diarization.embedded import EmbeddedDiarizer
from diarization.separation import separation_flag


Row = tuple[str, str, float | None, float | None, float | None]


def measurements(diarizer: EmbeddedDiarizer, conversations: list[Conversation], one_voices: bool = True) -> list[Row]:
    """(case, "two" or "one", cluster_separation, cluster_agreement, cluster_voice_distance) for each
    conversation and each of its speakers."""
    out = []
    for conversation in conversations:
        cases = [(conversation.name, "two", conversation.audio)]
        cases += [(f"{conversation.name}:{s}", "one", one_voice(conversation, s))
                  for s in (conversation.speakers if one_voices else [])]
        for name, kind, audio in cases:
            params = diarizer(audio, num_speakers=2).params
            out.append((name, kind, params.get("cluster_separation"), params.get("cluster_agreement"),
                        params.get("cluster_voice_distance")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="*", default=[], help="generated dialogue folders")
    parser.add_argument("--two-only", action="store_true", help="skip the one-voice cases")
    parser.add_argument("--skip-real", action="store_true", help="skip the real recordings")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    diarizer = EmbeddedDiarizer()
    groups = {} if args.skip_real else {"real": real_conversations()}
    groups |= {str(folder): synthetic_conversations(folder) for folder in args.sets}
    for group, conversations in groups.items():
        rows = measurements(diarizer, conversations, not args.two_only)
        for case, kind, separation, agreement, distance in rows:
            flagged = separation_flag(separation, agreement, distance) is not None
            print(f"{group}\t{kind}\t{case}\t{separation}\t{agreement}\t{distance}\t{'FLAG' if flagged else '-'}")
        for kind, what in (("two", "false alarms"), ("one", "flagged")):
            cases = [(s, a, d) for _, k, s, a, d in rows if k == kind]
            if cases:
                silhouettes = [s for s, _, _ in cases if s is not None]
                agreements = [a for _, a, _ in cases if a is not None]
                distances = [d for _, _, d in cases if d is not None]
                print(f"# {group}, {kind} voice(s): silhouette {min(silhouettes, default=float('nan')):.4f}-"
                      f"{max(silhouettes, default=float('nan')):.4f}, agreement {min(agreements, default=float('nan')):.4f}-"
                      f"{max(agreements, default=float('nan')):.4f}, distance {min(distances, default=float('nan')):.4f}-"
                      f"{max(distances, default=float('nan')):.4f}; {what} "
                      f"{sum(separation_flag(*case) is not None for case in cases)}/{len(cases)}")


if __name__ == "__main__":
    main()
