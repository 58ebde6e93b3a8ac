"""Handing tasks to people: skills, workload balance, conflicts of interest, gold and calibration.

Conventions (what the store must say for the rules to bite):

- **Skill**: a person takes production work on a recording only when calibrated for it
  (`review_ui.calibration`: a ``passed`` Calibration for the recording's language and
  each of its speakers' accents, or for the language with accent ``""``).
- **Calibration**: someone whose newest Calibration for a skill is ``calibrating`` or
  ``returned`` gets ``calibration`` tasks on gold recordings that exercise the skill,
  up to the set size, never the same recording twice.
- **Gold**: once a person holds production work, gold tasks are mixed into their queue
  so that gold items make up ``gold_share`` of what they were given (rounded up), on
  gold recordings they are skilled for and never saw; they are cut like the protocol's
  last cut (same chunk length and context), so nothing sets them apart. They are taken
  from the pool of gold tasks the cut created in among the production tasks (a pool task
  is re-pointed at the recording needed), so their ids and creation times interleave
  with production work; only when the pool runs dry is a new row made (counted in the
  report). One gold recording sits in at most ``review.gold.queues_per_recording``
  queues at a time (default 1), gold and calibration tasks alike.
- **Conflict of interest**, from the recording's ``declared`` record (the intake
  manifest's row, which may carry extra keys) and the person's groups:
  ``declared["recorded_by"]`` names the username who recorded the session: they never
  get it; a person who *is* a speaker carries the group ``speaker:<speaker id>`` and never
  gets a session that speaker takes part in; and for each key in
  ``AssignmentRules.conflict_keys`` (default ``site`` and ``group``) and each session
  attribute the protocol declares (``session.attributes``), a person in group
  ``<key>:<value>`` never gets a session whose ``declared[<key>]`` is that value (so
  ``site:lyon`` keeps people away from sessions recorded at ``site: lyon``). Manifests
  carry ``recorded_by``, ``site`` and the declared attributes (collection/manifest.py);
  `users add/update --group` gives people their groups.
  The same rules apply to reviewers, who also never review their own work.
- **Report**: given an `AssignmentReport`, assignment says which conflict rule kept which
  task from whom, and for each task nobody got, what kept it from each annotator.
- **Workload**: each task goes to the eligible person with the least open audio, then the
  fewest open tasks; nobody holds more than ``max_open_per_person`` open tasks, and the
  two tasks of a double-annotated pair never go to the same person.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import users_with_role
from store.audit import record_event
from store.clock import utcnow
from review_ui import calibration as cal
from review_ui.tasks import (
    CALIBRATION, GOLD, OPEN, PRODUCTION, QUEUE_STATES, REVIEW, aware, gold_task, last_cut_settings, span_of, unit_hash,
)


@dataclass
class AssignmentRules:
    """What assignment honours; the defaults suit a small team."""

    max_open_per_person: int = 20
    conflict_keys: tuple[str, ...] = ("site", "group")
    gold_share: float = 0.10
    due_days: float | None = 7.0
    seed: int = 0
    exclude_users: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class KeptFrom:
    """A conflict of interest kept a task from a person."""

    task_pk: int
    recording_pk: int
    username: str
    reasons: tuple[str, ...]


@dataclass
class AssignmentReport:
    """What an assignment run did not do, and why (the command prints it)."""

    kept: list[KeptFrom] = field(default_factory=list)
    unassigned: dict[int, list[str]] = field(default_factory=dict)  # task pk -> "<user>: <rule>" per annotator
    gold_created_after_cut: int = 0  # gold tasks made because the cut's pool ran dry (their ids give them away)


def conflict_keys_of(protocol_row: models.Protocol | None, rules: AssignmentRules) -> tuple[str, ...]:
    """The rules' conflict keys plus every session attribute the protocol declares."""
    session_spec = ((protocol_row.spec or {}).get("session") or {}) if protocol_row is not None else {}
    declared = tuple(a for a in session_spec.get("attributes") or [] if a not in rules.conflict_keys)
    return tuple(rules.conflict_keys) + declared


def participants(session: Session, recording: models.Recording) -> set[str]:
    if recording.session_pk is None:
        return set()
    sp = models.SessionParticipant
    return set(session.scalars(select(sp.speaker_id).where(sp.session_pk == recording.session_pk)))


def conflicts(user: models.User, recording: models.Recording, speakers: set[str],
              conflict_keys: tuple[str, ...] = ("site", "group")) -> list[str]:
    """Why `user` may not work on `recording` (empty: no conflict of interest)."""
    declared = recording.declared or {}
    groups = set(user.groups or [])
    reasons = []
    if declared.get("recorded_by") and declared["recorded_by"] == user.username:
        reasons.append("recorded the session")
    for speaker in sorted(speakers):
        if f"speaker:{speaker}" in groups:
            reasons.append(f"is speaker {speaker}")
    for key in conflict_keys:
        value = declared.get(key)
        if value and f"{key}:{value}" in groups:
            reasons.append(f"same {key} ({value})")
    return reasons


@dataclass
class _Person:
    user: models.User
    skills: dict[tuple[str, str], models.Calibration]
    open_tasks: int = 0
    open_audio: float = 0.0
    seen: set[int] = field(default_factory=set)  # recordings they ever had a task on
    production: int = 0
    gold: int = 0


class _Recordings:
    """Per-recording facts, read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[int, tuple[models.Recording, str, set[str], set[str]]] = {}

    def get(self, pk: int) -> tuple[models.Recording, str, set[str], set[str]]:
        if pk not in self._cache:
            recording = self.session.get(models.Recording, pk)
            self._cache[pk] = (recording, cal.recording_language(self.session, recording),
                               cal.recording_accents(self.session, recording), participants(self.session, recording))
        return self._cache[pk]


def _people(session: Session, role: str, rules: AssignmentRules, *, history: bool = True) -> dict[str, _Person]:
    """The active holders of `role` with their skills and open load (one aggregate query), and with
    `history` the recordings they ever had a task on and how many production and gold tasks they got."""
    people = {u.username: _Person(u, cal.skills(session, u.username)) for u in users_with_role(session, role)
              if u.username not in rules.exclude_users}
    if not people:
        return people
    task, rec = models.Task, models.Recording
    names = list(people)
    is_open = or_(and_(task.kind != REVIEW, task.state.in_(QUEUE_STATES)), and_(task.kind == REVIEW, task.state == OPEN))
    audio = func.coalesce(task.end_s, rec.duration_s, 0.0) - func.coalesce(task.start_s, 0.0)
    for assignee, count, seconds in session.execute(
        select(task.assignee, func.count(task.pk), func.sum(audio)).join(rec, rec.pk == task.recording_pk)
        .where(task.assignee.in_(names), is_open).group_by(task.assignee)
    ):
        people[assignee].open_tasks, people[assignee].open_audio = int(count), float(seconds or 0.0)
    if history:
        for assignee, kind, count in session.execute(
            select(task.assignee, task.kind, func.count(task.pk)).where(task.assignee.in_(names)).group_by(task.assignee, task.kind)
        ):
            if kind == PRODUCTION:
                people[assignee].production = int(count)
            elif kind == GOLD:
                people[assignee].gold = int(count)
        for assignee, recording_pk in session.execute(
            select(task.assignee, task.recording_pk).where(task.assignee.in_(names)).distinct()
        ):
            people[assignee].seen.add(recording_pk)
    return people


def _give(task: models.Task, person: _Person, recording: models.Recording, rules: AssignmentRules, now: dt.datetime) -> None:
    task.assignee = person.user.username
    task.due_at = now + dt.timedelta(days=rules.due_days) if rules.due_days else None
    task.updated_at = now
    start, end = span_of(task, recording)
    person.open_tasks += 1
    person.open_audio += end - start
    person.seen.add(recording.pk)


def _least_loaded(candidates: list[_Person]) -> _Person | None:
    return min(candidates, key=lambda p: (p.open_audio, p.open_tasks, p.user.username)) if candidates else None


def _gold_task(session: Session, kind: str, recording: models.Recording, protocol_pk: int, seed: int, username: str) -> models.Task:
    """A gold or calibration task cut like the protocol's production tasks."""
    settings = last_cut_settings(session, protocol_pk)
    reference = cal.reference_revision(session, recording.pk)
    blind = kind == GOLD and unit_hash(seed, f"gold-blind:{username}", recording.pk, 0) < float(settings.get("blind_share", 0.0))
    return gold_task(session, kind, recording, reference.as_turn_json() if reference else [], settings.get("max_chunk_s"),
                     float(settings.get("context_s", 5.0)), unit_hash(seed, f"gold:{username}", recording.pk, 0), blind)


def _gold_in_queues(session: Session, golds: list[int]) -> Counter[int]:
    """Gold recording pk -> how many queues hold an open gold or calibration task on it now."""
    task = models.Task
    rows = session.execute(select(task.recording_pk, func.count(func.distinct(task.assignee)))
                           .where(task.recording_pk.in_(golds), task.kind.in_((GOLD, CALIBRATION)), task.assignee.is_not(None),
                                  task.state.in_(QUEUE_STATES)).group_by(task.recording_pk)) if golds else []
    return Counter({int(pk): int(n) for pk, n in rows})


def _repoint(pool_task: models.Task, cut: models.Task) -> None:
    """Give an unassigned pool task the recording and span of a freshly cut gold task (its id and creation time stay)."""
    pool_task.recording_pk, pool_task.start_s, pool_task.end_s = cut.recording_pk, cut.start_s, cut.end_s
    pool_task.details, pool_task.blind = cut.details, cut.blind


def _shortage(session: Session, actor: str, person: _Person, key: tuple[str, str], covering: int, set_size: int,
              usable: int, purpose: str) -> None:
    """Tell the managers what gold to add when a calibration set cannot be drawn (or could not be, should it be needed)."""
    name, skill = person.user.username, cal.skill_name(key)
    if covering == 0:
        cal.notify_gold_shortage(session, actor, name, key, "no gold",
                                 f"no gold recording covers {skill}: {name} cannot be calibrated or checked for it; "
                                 f"add gold recordings of {skill}", {"gold": 0, "set_size": set_size})
    elif purpose == "calibration":
        cal.notify_gold_shortage(session, actor, name, key, "set incomplete",
                                 f"{name} needs a calibration set for {skill} but only {usable} of the {covering} gold "
                                 f"recording(s) of {skill} are unseen and free of conflicts (a set needs {set_size}): "
                                 f"add gold recordings of {skill}", {"gold": covering, "unseen": usable, "set_size": set_size})
    elif usable < set_size:
        cal.notify_gold_shortage(session, actor, name, key, "reserve low",
                                 f"{name} has {usable} unseen gold recording(s) of {skill} left, fewer than a calibration "
                                 f"set ({set_size}) should they be sent back: add gold recordings of {skill}",
                                 {"gold": covering, "unseen": usable, "set_size": set_size})


def assign_tasks(session: Session, protocol_pk: int, rules: AssignmentRules | None = None, *, actor: str,
                 report: AssignmentReport | None = None) -> list[models.Task]:
    """Give out calibration sets, open production tasks and gold items; returns the tasks given out now.

    `report`, when given, collects which conflict rule kept which production task from whom
    and why each task nobody got stayed open.
    """
    rules = rules or AssignmentRules()
    report = report if report is not None else AssignmentReport()
    now = utcnow()
    people = _people(session, "annotator", rules)
    recordings = _Recordings(session)
    protocol_row = session.get(models.Protocol, protocol_pk)
    keys = conflict_keys_of(protocol_row, rules)
    limits = cal.thresholds_for(protocol_row)
    set_size = limits.calibration_items
    golds = [g.pk for g in cal.gold_recordings(session, protocol_pk)]
    busy = _gold_in_queues(session, golds)
    given: list[models.Task] = []

    def covering(key: tuple[str, str]) -> int:
        return sum(1 for pk in golds if cal.covers(key, *recordings.get(pk)[1:3]))

    def usable_gold(person: _Person, need_skill: tuple[str, str] | None, *, free_only: bool = True) -> list[int]:
        """Gold recordings the person may get; `free_only`: leaving out those in as many queues as the protocol allows."""
        out = []
        for pk in golds:
            recording, language, accents, speakers = recordings.get(pk)
            if pk in person.seen or conflicts(person.user, recording, speakers, keys):
                continue
            if free_only and busy[pk] >= limits.queues_per_recording:
                continue
            if need_skill is not None and not cal.covers(need_skill, language, accents):
                continue
            if need_skill is None and not cal.is_skilled(person.skills, language, accents):
                continue
            out.append(pk)
        return sorted(out, key=lambda pk: unit_hash(rules.seed, f"pick:{person.user.username}", pk, 0))

    # 1. calibration sets for people still calibrating
    for person in people.values():
        for key, row in sorted(person.skills.items()):
            if row.state not in (cal.CALIBRATING, cal.RETURNED):
                continue
            created = aware(row.created_at)
            have = [t for t in session.scalars(select(models.Task).where(
                models.Task.assignee == person.user.username, models.Task.kind == CALIBRATION))
                if created is None or (t.created_at is not None and aware(t.created_at) >= created)]
            have = [t for t in have if cal.covers(key, *recordings.get(t.recording_pk)[1:3])]
            unseen = usable_gold(person, key, free_only=False)  # in another queue now: free later, no shortage
            for pk in usable_gold(person, key)[: max(0, set_size - len(have))]:
                if person.open_tasks >= rules.max_open_per_person:
                    break
                recording = recordings.get(pk)[0]
                task = _gold_task(session, CALIBRATION, recording, protocol_pk, rules.seed, person.user.username)
                session.add(task)
                _give(task, person, recording, rules, now)
                busy[pk] += 1
                given.append(task)
            if set_size - len(have) - len(unseen) > 0:
                _shortage(session, actor, person, key, covering(key), set_size, len(unseen), "calibration")

    # 2. production work, least loaded eligible person first
    task, rec = models.Task, models.Recording
    open_tasks = session.scalars(
        select(task).join(rec, rec.pk == task.recording_pk)
        .where(rec.protocol_pk == protocol_pk, task.kind == PRODUCTION, task.assignee.is_(None), task.state == OPEN)
        .order_by(task.recording_pk, task.start_s, task.pk)
    ).all()
    partners: dict[str, set[str]] = {}
    for t in session.scalars(select(task).where(task.pair_key.is_not(None), task.assignee.is_not(None))):
        partners.setdefault(t.pair_key, set()).add(t.assignee)
    for t in open_tasks:
        recording, language, accents, speakers = recordings.get(t.recording_pk)
        candidates, blocked = [], []
        for p in people.values():
            name = p.user.username
            why = conflicts(p.user, recording, speakers, keys)
            if why:
                report.kept.append(KeptFrom(t.pk, recording.pk, name, tuple(why)))
                blocked.append(f"{name}: conflict of interest ({'; '.join(why)})")
            elif not cal.is_skilled(p.skills, language, accents):
                blocked.append(f"{name}: not calibrated for {language}/{'+'.join(sorted(a or '*' for a in accents))}")
            elif name in partners.get(t.pair_key or "", set()):
                blocked.append(f"{name}: holds the other task of the pair")
            elif p.open_tasks >= rules.max_open_per_person:
                blocked.append(f"{name}: already holds {rules.max_open_per_person} open tasks")
            else:
                candidates.append(p)
        person = _least_loaded(candidates)
        if person is None:
            report.unassigned[t.pk] = blocked or ["no active annotator"]
            continue
        _give(t, person, recording, rules, now)
        person.production += 1
        if t.pair_key:
            partners.setdefault(t.pair_key, set()).add(person.user.username)
        given.append(t)

    # 3. gold items mixed into production queues, taken from the cut's pool (its ids and creation times interleave
    #    with production work), a pool task re-pointed at the gold recording the person needs
    pool = list(session.scalars(
        select(task).join(rec, rec.pk == task.recording_pk)
        .where(rec.protocol_pk == protocol_pk, task.kind == GOLD, task.assignee.is_(None), task.state == OPEN).order_by(task.pk)
    ))
    for person in people.values():
        want = math.ceil(rules.gold_share * person.production) if person.production else 0
        for pk in usable_gold(person, None):
            if person.gold >= want or person.open_tasks >= rules.max_open_per_person:
                break
            recording = recordings.get(pk)[0]
            gold = next((g for g in pool if g.recording_pk == pk), None) or (pool[0] if pool else None)
            if gold is not None:
                pool.remove(gold)
                if gold.recording_pk != pk:
                    _repoint(gold, _gold_task(session, GOLD, recording, protocol_pk, rules.seed, person.user.username))
            else:  # the pool ran dry (cut without gold): a new row, whose id follows the production tasks
                gold = _gold_task(session, GOLD, recording, protocol_pk, rules.seed, person.user.username)
                session.add(gold)
                report.gold_created_after_cut += 1
            _give(gold, person, recording, rules, now)
            busy[pk] += 1
            person.gold += 1
            given.append(gold)
        passed = sorted(key for key, row in person.skills.items() if row.state == cal.PASSED)
        waiting = person.gold < want and any(busy[pk] >= limits.queues_per_recording for pk in usable_gold(person, None, free_only=False))
        some_gold = any(covering(key) for key in passed)  # none at all: the "no gold" notice below says so
        if person.gold < want and person.open_tasks < rules.max_open_per_person and not waiting and some_gold:
            names = ", ".join(cal.skill_name(k) for k in passed)
            cal.notify_gold_shortage(session, actor, person.user.username, passed[0] if passed else ("", ""), "no ongoing gold",
                                     f"{person.user.username} holds production work but gets no gold item: no unseen gold "
                                     f"recording matches their skills ({names}); add gold recordings of {names}",
                                     {"wanted": want, "given": person.gold})
        for key in passed:  # enough unseen gold left for a new calibration set, should they be sent back?
            _shortage(session, actor, person, key, covering(key), set_size, len(usable_gold(person, key, free_only=False)), "reserve")

    session.flush()
    for t in given:
        record_event(session, actor, "task_assigned", f"task:{t.pk}", {"assignee": t.assignee, "recording": t.recording_pk})
    return given


def choose_reviewer(session: Session, recording: models.Recording, *, exclude: set[str],
                    rules: AssignmentRules | None = None) -> str | None:
    """The least-loaded reviewer without a conflict of interest, preferring those calibrated for the recording."""
    rules = rules or AssignmentRules()
    people = _people(session, "reviewer", rules, history=False)
    language, accents = cal.recording_language(session, recording), cal.recording_accents(session, recording)
    speakers = participants(session, recording)
    keys = conflict_keys_of(session.get(models.Protocol, recording.protocol_pk), rules)
    candidates = [p for p in people.values() if p.user.username not in exclude
                  and not conflicts(p.user, recording, speakers, keys)]
    skilled = [p for p in candidates if cal.is_skilled(p.skills, language, accents)]
    chosen = _least_loaded(skilled or candidates)
    return chosen.user.username if chosen is not None else None
