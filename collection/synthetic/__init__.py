"""Synthetic two-speaker dialogues (espeak-ng speech, known noise, ground-truth turns).

`generator.py` builds them; `dialogues/` holds the small committed set (seed 0) that
tests and the demo read, so nothing needs espeak-ng at run time.
"""

from pathlib import Path

DIALOGUES_DIR = Path(__file__).parent / "dialogues"
