"""Which speakers and conditions the pre-annotation serves worst, against the approved transcripts.

The quality page's view of the models: every accepted recording of the protocol with a
model revision and an approved revision is scored (asr.evaluation: WER, cpWER, DER, JER)
and counted under its conditions and its speakers' demographic values and crossed cell
(asr.group_scores, the grouping the dataset card uses for a release). The model revision
is the first one, the pre-annotation people started from, as on the card.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from asr.evaluation import score_recording
from asr.group_scores import GroupedScores, group_keys
from protocols.schema import Protocol
from review_ui.quality import approved_of, first_model_revisions
from store import models
from store.release_keys import recording_key


def preannotation_by_group(session: Session, protocol_row: models.Protocol, protocol: Protocol) -> GroupedScores:
    """The pre-annotation's scores per condition, demographic value and crossed cell, worst first by `ranked()`."""
    rec, se, sp, sd = models.Recording, models.Session, models.SessionParticipant, models.SpeakerDemographic
    recordings = dict(session.execute(
        select(rec.pk, rec.session_pk).where(rec.protocol_pk == protocol_row.pk, rec.status == "accepted")).all())
    approved = approved_of(session, recordings)
    firsts = first_model_revisions(session, approved)
    scored = [pk for pk in approved if pk in firsts]
    session_pks = {recordings[pk] for pk in scored}
    conditions = {pk: {"noise_condition": noise, "device": device} for pk, noise, device in session.execute(
        select(se.pk, se.noise_condition, se.device).where(se.pk.in_(session_pks)))}
    speakers: dict[int, list[str]] = defaultdict(list)
    for session_pk, speaker_id in session.execute(select(sp.session_pk, sp.speaker_id).where(sp.session_pk.in_(session_pks))):
        speakers[session_pk].append(speaker_id)
    demographics: dict[str, dict[str, str]] = defaultdict(dict)
    wanted = {s for ids in speakers.values() for s in ids}
    for speaker_id, dimension, value in session.execute(
            select(sd.speaker_id, sd.dimension, sd.value).where(sd.speaker_id.in_(wanted))):
        demographics[speaker_id][dimension] = value
    cell_dims = list(protocol.targets.cells.dimensions) if protocol.targets.cells else []
    scores = GroupedScores()
    for pk in scored:
        score = score_recording(firsts[pk].as_turns(), approved[pk].as_turns(), recording_key(pk))
        session_pk = recordings[pk]
        scores.add(score, group_keys(conditions.get(session_pk, {}),
                                     [demographics[s] for s in speakers[session_pk]], cell_dims))
    return scores
