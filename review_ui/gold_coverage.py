"""How much gold exists per skill (language, accent), and how many people it covers.

A skill without gold leaves its people unchecked and makes calibration impossible; a
skill whose people have seen all its gold leaves nothing for the next calibration set.
This table (`review status`, the Quality page) shows both before anyone runs out; the
assignment turns each shortage into a manager notice (review_ui/calibration.py).

Skills listed: every (language, accent) a gold recording exercises (and its language as
a whole, accent ``*``) and every skill an annotator holds or is calibrating for. A person
*has* a skill when they hold a calibration record for it (any state); they are *covered*
when at least one gold recording of the skill is left that they never had a task on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from store.accounts import users_with_role
from review_ui import calibration as cal


@dataclass
class SkillCoverage:
    language: str
    accent: str  # "" = every accent of the language
    gold_recordings: int
    gold_minutes: float
    people: int  # annotators holding or calibrating for the skill
    covered: int  # ... with unseen gold of the skill left
    uncovered: list[str]  # ... without: who needs gold added

    @property
    def skill(self) -> str:
        return cal.skill_name((self.language, self.accent))

    def as_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, **asdict(self)}


def gold_coverage(session: Session, protocol_pk: int) -> list[SkillCoverage]:
    """One row per skill, the skills without gold first, then by skill."""
    golds = [(g, cal.recording_language(session, g), cal.recording_accents(session, g))
             for g in cal.gold_recordings(session, protocol_pk)]
    keys: set[tuple[str, str]] = set()
    for _, language, accents in golds:
        keys.add((language, ""))
        keys |= {(language, accent) for accent in accents if accent}
    people = {u.username: cal.skills(session, u.username) for u in users_with_role(session, "annotator")}
    for person_skills in people.values():
        keys |= set(person_skills)
    seen = {name: cal.seen_recordings(session, name) for name in people}
    rows = []
    for key in keys:
        covering = [g for g, language, accents in golds if cal.covers(key, language, accents)]
        holders = sorted(name for name, person_skills in people.items() if key in person_skills)
        uncovered = [name for name in holders if not any(g.pk not in seen[name] for g in covering)]
        rows.append(SkillCoverage(key[0], key[1], len(covering), round(sum(float(g.duration_s or 0) for g in covering) / 60, 2),
                                  len(holders), len(holders) - len(uncovered), uncovered))
    return sorted(rows, key=lambda r: (r.gold_recordings > 0, r.language, r.accent))
