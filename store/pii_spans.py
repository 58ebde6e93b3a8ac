"""Stored personal-data spans: marking, unmarking and listing them per transcript revision.

A span is a range of the words of one turn's text (`models.PiiSpan`). People mark them in
the editor (`mark_span` / `unmark_span`), detectors store theirs with `add_spans`, and
`spans_for_revision` lists what holds for a revision, carrying marks made on its ancestors
forward while their words are still there. This is the one implementation: the editor
(review_ui) and governance (corpus: detection, redacted releases) both use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import PermissionDenied, Principal
from store.audit import record_event

KINDS = ("phone", "email", "number", "name", "address", "id", "other")
MAX_ANCESTORS = 500  # revision lineage walked to carry spans forward


class PiiError(ValueError):
    """A span that does not fit its revision (unknown revision, turn or word range, or kind)."""


@dataclass(frozen=True, order=True)
class Span:
    """Personal information: words [word_start, word_end) of turn `turn_index`."""

    turn_index: int
    word_start: int
    word_end: int
    kind: str
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"turn": self.turn_index, "word_start": self.word_start, "word_end": self.word_end, "kind": self.kind,
                "source": self.source}


def turn_tokens(turn: dict[str, Any]) -> list[str]:
    """The words spans index into: the turn's text split on spaces.

    The text is what a person approved (an edit may change the text and keep the model's
    timed words), so spans follow the text.
    """
    return str(turn.get("text", "")).split()


def _span_of(row: models.PiiSpan) -> Span:
    return Span(row.turn_index, row.word_start, row.word_end, row.kind, row.source)


def _revision(session: Session, revision_pk: int) -> models.TranscriptRevision:
    revision = session.get(models.TranscriptRevision, revision_pk)
    if revision is None:
        raise PiiError(f"no transcript revision {revision_pk}")
    return revision


def _may_mark(principal: Principal) -> None:
    if not (principal.can("annotate") or principal.can("review")):
        raise PermissionDenied(f"{principal.username} may not mark or unmark personal information")


def _word_range(session: Session, revision_pk: int, turn_index: int, word_start: int, word_end: int) -> None:
    turns = _revision(session, revision_pk).turns or []
    if not 0 <= turn_index < len(turns):
        raise PiiError(f"revision {revision_pk} has {len(turns)} turns; there is no turn {turn_index}")
    count = len(turn_tokens(turns[turn_index]))
    if not 0 <= word_start < word_end <= count:
        raise PiiError(f"turn {turn_index} has {count} words; [{word_start}, {word_end}) is not a word range in it")


def add_spans(session: Session, revision_pk: int, spans: Iterable[Span], *, actor: str, event: str) -> int:
    """Store the spans not stored on the revision yet (idempotent; each keeps its own source); how many were added."""
    _revision(session, revision_pk)
    existing = {_span_of(r) for r in session.scalars(select(models.PiiSpan).where(models.PiiSpan.revision_pk == revision_pk))}
    new = sorted(set(spans) - existing)
    session.add_all(models.PiiSpan(revision_pk=revision_pk, turn_index=s.turn_index, word_start=s.word_start,
                                   word_end=s.word_end, kind=s.kind, source=s.source) for s in new)
    if new:
        record_event(session, actor, event, f"revision:{revision_pk}", {"added": len(new), "kinds": sorted({s.kind for s in new})})
    return len(new)


def mark_span(session: Session, principal: Principal, revision_pk: int, turn_index: int, word_start: int,
              word_end: int, kind: str) -> models.PiiSpan:
    """An annotator or reviewer marks words as personal information (the same mark twice is one row, also when
    the first was made on an ancestor revision that holds these words, e.g. before a background alignment)."""
    _may_mark(principal)
    if kind not in KINDS:
        raise PiiError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    _word_range(session, revision_pk, turn_index, word_start, word_end)
    wanted = Span(turn_index, word_start, word_end, kind, principal.username)
    revision = _revision(session, revision_pk)
    for row, span in _rows_with_spans(session, revision, revision.turns or []):
        if span == wanted:  # already marked here or on an ancestor whose words these are (a repeated mark)
            return row
    row = models.PiiSpan(revision_pk=revision_pk, turn_index=turn_index, word_start=word_start, word_end=word_end,
                         kind=kind, source=principal.username)
    session.add(row)
    record_event(session, principal.username, "pii_mark", f"revision:{revision_pk}",
                 {"turn": turn_index, "word_start": word_start, "word_end": word_end, "kind": kind})
    return row


def unmark_span(session: Session, principal: Principal, revision_pk: int, turn_index: int, word_start: int,
                word_end: int) -> int:
    """Remove every span that holds for the revision and overlaps words [word_start, word_end) of the turn.

    A span carried forward from an ancestor revision is removed where it was stored (else it
    would come back on the next revision). Detectors that run again (a `--redact-pii`
    release runs them) may find a removed detector span again. Returns how many rows went.
    """
    _may_mark(principal)
    _word_range(session, revision_pk, turn_index, word_start, word_end)
    revision = _revision(session, revision_pk)
    gone = []
    for row, span in _rows_with_spans(session, revision, revision.turns or []):
        if span is not None and span.turn_index == turn_index and span.word_start < word_end and word_start < span.word_end:
            gone.append({"revision": row.revision_pk, "turn": row.turn_index, "word_start": row.word_start,
                         "word_end": row.word_end, "kind": row.kind, "source": row.source})
            session.delete(row)
    if gone:
        session.flush()
        record_event(session, principal.username, "pii_unmark", f"revision:{revision_pk}",
                     {"turn": turn_index, "word_start": word_start, "word_end": word_end, "removed": gone})
    return len(gone)


def _carry(span: Span, old_turns: list[Any], new_turns: list[Any]) -> Span | None:
    """The same words in a later revision: same place if unchanged, else the same words in the same turn or anywhere."""
    if span.turn_index >= len(old_turns):
        return None
    words = turn_tokens(old_turns[span.turn_index])[span.word_start : span.word_end]
    if not words:
        return None
    order = [span.turn_index] if span.turn_index < len(new_turns) else []
    order += [i for i in range(len(new_turns)) if i != span.turn_index]
    for index in order:
        tokens = turn_tokens(new_turns[index])
        starts = [span.word_start] if index == span.turn_index else []
        starts += [s for s in range(len(tokens) - len(words) + 1) if s not in starts]
        for start in starts:
            if tokens[start : start + len(words)] == words:
                return Span(index, start, start + len(words), span.kind, span.source)
    return None


def _lineage(session: Session, revision_pk: int) -> list[int]:
    """The revision and its ancestors (parent, grandparent, ...), in one recursive query."""
    rev = models.TranscriptRevision
    walk = select(rev.pk, rev.parent_pk, literal(0).label("depth")).where(rev.pk == revision_pk).cte("lineage", recursive=True)
    walk = walk.union_all(select(rev.pk, rev.parent_pk, (walk.c.depth + 1).label("depth"))
                          .join(walk, rev.pk == walk.c.parent_pk).where(walk.c.depth < MAX_ANCESTORS))
    return list(session.scalars(select(walk.c.pk)))


def _recording_has_spans(session: Session, recording_pk: int) -> bool:
    """Whether any revision of the recording holds a stored span: one indexed probe, where the lineage walk is three
    queries. A lineage never leaves its recording (every revision's parent is a revision of the same recording),
    so a recording without spans has none to carry (an editor save asks this on every save)."""
    rev = models.TranscriptRevision
    return session.scalar(select(literal(1)).select_from(models.PiiSpan).join(rev, rev.pk == models.PiiSpan.revision_pk)
                          .where(rev.recording_pk == recording_pk).limit(1)) is not None


def _rows_with_spans(session: Session, revision: models.TranscriptRevision,
                     turns: list[Any]) -> list[tuple[models.PiiSpan, Span | None]]:
    """Every stored row of the revision's lineage with the span it makes on this revision (None: its words are gone)."""
    if not _recording_has_spans(session, revision.recording_pk):
        return []
    revision_pk = revision.pk
    rows = session.scalars(select(models.PiiSpan).where(models.PiiSpan.revision_pk.in_(_lineage(session, revision_pk)))).all()
    ancestor_turns = dict(session.execute(
        select(models.TranscriptRevision.pk, models.TranscriptRevision.turns)
        .where(models.TranscriptRevision.pk.in_({r.revision_pk for r in rows} - {revision_pk}))).all())
    return [(r, _span_of(r) if r.revision_pk == revision_pk else _carry(_span_of(r), ancestor_turns[r.revision_pk] or [], turns))
            for r in rows]


def spans_for_revision(session: Session, revision_pk: int) -> list[Span]:
    """The spans of a revision, with those marked on its ancestors carried forward when their words are still there.

    Annotators mark spans on their drafts; the approved revision a release takes is a
    descendant, so marks follow the words (a span whose words were edited away is dropped).
    """
    revision = _revision(session, revision_pk)
    spans = {span for _, span in _rows_with_spans(session, revision, revision.turns or [])}
    unique: dict[tuple[int, int, int, str], Span] = {}
    for span in sorted(s for s in spans if s is not None):
        unique.setdefault((span.turn_index, span.word_start, span.word_end, span.kind), span)
    return sorted(unique.values())
