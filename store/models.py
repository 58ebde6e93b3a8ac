"""The store's records (ARCHITECTURE.md, "The store").

Audio facts (Recording), who took part (Session, SessionParticipant, Speaker) and what
was said (TranscriptRevision) are separate records, as in lhotse. Consent records,
transcript revisions and audit events are append-only: a change is a new row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.clock import utcnow
from store.turns import Turn, TurnJson, load_stored, turns_to_json


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Protocol(Base):
    """One version of a collection plan; recordings are counted against exactly one version."""

    __tablename__ = "protocols"
    __table_args__ = (UniqueConstraint("protocol_id", "version", name="uq_protocol_version"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(512), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Speaker(Base):
    """A pseudonymous contributor; demographics live in SpeakerDemographic rows."""

    __tablename__ = "speakers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    demographics: Mapped[list[SpeakerDemographic]] = relationship(back_populates="speaker")


class SpeakerDemographic(Base):
    """One (dimension, value) of a speaker: open-ended dimensions, countable in SQL."""

    __tablename__ = "speaker_demographics"

    speaker_id: Mapped[str] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    speaker: Mapped[Speaker] = relationship(back_populates="demographics")


class Consent(Base):
    """One consent event, dated: a grant, or a withdrawal (= a new row); collection.consent says which is in force."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consent_ref", "consent_id", "pk"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[str] = mapped_column(String(128))
    speaker_id: Mapped[str] = mapped_column(String(128), index=True)
    form_version: Mapped[str] = mapped_column(String(64))
    permitted_uses: Mapped[list[Any]] = mapped_column(JSON)
    granted_on: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    withdrawn_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(1024), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Session(Base):
    """A dialogue: its participants, declared environment and device, scenario."""

    __tablename__ = "sessions"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(128), unique=True)
    protocol_pk: Mapped[int] = mapped_column(ForeignKey("protocols.pk"), index=True)
    device: Mapped[str] = mapped_column(String(64))
    noise_condition: Mapped[str] = mapped_column(String(64))
    scenario: Mapped[str] = mapped_column(String(128), default="")
    language: Mapped[str] = mapped_column(String(32), default="")
    recorded_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    participants: Mapped[list[SessionParticipant]] = relationship(back_populates="session")


class SessionParticipant(Base):
    """A speaker in a session, with the consent record the manifest cited."""

    __tablename__ = "session_participants"

    session_pk: Mapped[int] = mapped_column(ForeignKey("sessions.pk", ondelete="CASCADE"), primary_key=True)
    speaker_id: Mapped[str] = mapped_column(ForeignKey("speakers.id"), primary_key=True, index=True)
    consent_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    session: Mapped[Session] = relationship(back_populates="participants")


class Recording(Base):
    """What audio exists and how it measured: nothing about its content.

    Rejected files are rows too (status ``rejected`` with every reason), so nothing a
    contributor sent is silently dropped; only ``accepted`` rows count against the plan.
    """

    __tablename__ = "recordings"
    __table_args__ = (
        Index(
            "uq_accepted_sha256",
            "sha256",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
        Index("ix_recordings_protocol_status", "protocol_pk", "status"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol_pk: Mapped[int] = mapped_column(ForeignKey("protocols.pk"))
    session_pk: Mapped[int | None] = mapped_column(ForeignKey("sessions.pk"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    working_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_name: Mapped[str] = mapped_column(String(1024))
    container_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sample_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channels: Mapped[int | None] = mapped_column(Integer, nullable=True)
    num_samples: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_speakers: Mapped[int] = mapped_column(Integer, default=0)
    peak_dbfs: Mapped[float | None] = mapped_column(Float, nullable=True)
    clipping_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    speech_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    snr_db: Mapped[float | None] = mapped_column(Float, nullable=True)
    noise_mismatch: Mapped[str | None] = mapped_column(String(256), nullable=True)
    declared: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordingLease(Base):
    """A pre-annotation run's claim on one recording, until `expires_at` (asr.batch).

    Concurrent runs (processes, machines, Ray workers) skip leased recordings, so each is
    pre-annotated once; a crashed run's leases simply expire. The primary key makes two
    live leases on one recording impossible on any database.
    """

    __tablename__ = "recording_leases"

    recording_pk: Mapped[int] = mapped_column(ForeignKey("recordings.pk", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class TranscriptRevision(Base):
    """The whole list of turns at one moment, its author and its parent (append-only)."""

    __tablename__ = "transcript_revisions"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_pk: Mapped[int] = mapped_column(ForeignKey("recordings.pk"), index=True)
    parent_pk: Mapped[int | None] = mapped_column(ForeignKey("transcript_revisions.pk"), nullable=True)
    author_kind: Mapped[str] = mapped_column(String(16))  # "model" or "person"
    author: Mapped[str] = mapped_column(String(256))
    author_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    turns: Mapped[list[Any]] = mapped_column(JSON)
    # "model" (pre-annotation), "draft" (autosave), "submitted", "approved" (accepted by a
    # reviewer: what releases take) or "reference" (an approved gold reference).
    stage: Mapped[str] = mapped_column(String(16), default="model", server_default="model", index=True)
    task_pk: Mapped[int | None] = mapped_column(ForeignKey("tasks.pk", name="fk_revisions_task"), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a pre-annotation's model bundles by checksum (asr/model_bundles.py; names and kinds in author_params["bundles"]);
    # None for people's revisions and for pre-annotations stored before migration 0009
    asr_bundle_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    diarizer_bundle_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def as_turns(self) -> list[Turn]:
        """Its turns as the one turn type, exactly as they were stored (older revisions included)."""
        return load_stored(self.turns)

    def as_turn_json(self) -> list[TurnJson]:
        """`as_turns` in the JSON form, for code that works on the JSON (the editor, comparisons)."""
        return turns_to_json(self.as_turns())


class ProtocolModelChoice(Base):
    """A protocol's default model for one role ("asr" or "diarization"), set by `turnscribe models use`.

    A history: the newest row per (protocol id, role) is in force, for every version of the protocol.
    The bundle's checksum at the time is kept, so a later change of the bundle is visible.
    """

    __tablename__ = "protocol_model_choices"
    __table_args__ = (Index("ix_protocol_model_choice", "protocol_id", "role", "pk"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    bundle: Mapped[str] = mapped_column(String(64))
    checksum: Mapped[str] = mapped_column(String(64))
    chosen_by: Mapped[str] = mapped_column(String(128))
    chosen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A local account. Roles: admin, manager, annotator, reviewer, consumer (ML teams)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # conflict-of-interest groups and sites the person belongs to ("site:lyon", "group:acme")
    groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the sign-in throttle (store/settings.py SignInPolicy): wrong passwords in a row, the last one, the lock
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_sign_in_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the store only its SHA-256.

    It survives reloads until `expires_at`; signing out sets `revoked_at` (the row is kept
    so a stolen cookie that is replayed later is still refused and can be audited).
    """

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Calibration(Base):
    """Whether a person may take production work in one language/accent (a history, newest wins)."""

    __tablename__ = "calibrations"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    language: Mapped[str] = mapped_column(String(32))
    accent: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16))  # "calibrating", "passed", "returned"
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Task(Base):
    """A unit of human work on a recording: annotate, review, gold or calibration."""

    __tablename__ = "tasks"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    recording_pk: Mapped[int] = mapped_column(ForeignKey("recordings.pk"), index=True)
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the part of the recording this task covers (None: the whole recording)
    start_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # tasks done independently on the same audio share a pair key (double annotation)
    pair_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    blind: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # shown without pre-annotation
    # the revision the last save was based on; bumping `version` detects concurrent saves
    head_revision_pk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewComment(Base):
    """A reviewer's note pinned to one turn of one revision (send-back reasons)."""

    __tablename__ = "review_comments"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_pk: Mapped[int] = mapped_column(ForeignKey("tasks.pk"), index=True)
    revision_pk: Mapped[int] = mapped_column(ForeignKey("transcript_revisions.pk"))
    turn_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkInterval(Base):
    """Time a person actively worked on a task (throughput, break reminders)."""

    __tablename__ = "work_intervals"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    task_pk: Mapped[int] = mapped_column(ForeignKey("tasks.pk"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PiiSpan(Base):
    """Personal information in one turn of one revision, as a word range (annotator or detector)."""

    __tablename__ = "pii_spans"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision_pk: Mapped[int] = mapped_column(ForeignKey("transcript_revisions.pk", ondelete="CASCADE"), index=True)
    turn_index: Mapped[int] = mapped_column(Integer)
    word_start: Mapped[int] = mapped_column(Integer)  # first word index in the turn
    word_end: Mapped[int] = mapped_column(Integer)  # one past the last word index
    kind: Mapped[str] = mapped_column(String(32))  # "phone", "email", "number", "name", ...
    source: Mapped[str] = mapped_column(String(128))  # "detector:<name>" or a username
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tombstone(Base):
    """What an erasure left behind: no personal data, only that something was erased and when."""

    __tablename__ = "tombstones"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    tombstone_id: Mapped[str] = mapped_column(String(64), unique=True)
    erased_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    erased_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(64))  # "erasure request", "retention", "consent expired"
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    releases_affected: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Release(Base):
    """An immutable corpus release; its id is the hash of its manifest.

    `manifest` is the header (format, protocol, seed, selection, speaker index and one
    digest per entry); the recording entries themselves are ReleaseEntry rows.
    """

    __tablename__ = "releases"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    release_id: Mapped[str] = mapped_column(String(64), index=True)
    protocol_pk: Mapped[int] = mapped_column(ForeignKey("protocols.pk"))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    parent_pk: Mapped[int | None] = mapped_column(ForeignKey("releases.pk", name="fk_releases_parent"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReleaseEntry(Base):
    """One recording entry of a release, at its position in the manifest.

    Entries are rows, not a list inside `releases.manifest`, so a pull or a verify reads
    them a batch at a time by primary key on any database (a JSON list must be parsed
    whole), and an erasure replaces one entry by `{"erased": <tombstone id>}` in place.
    """

    __tablename__ = "release_entries"

    release_pk: Mapped[int] = mapped_column(ForeignKey("releases.pk", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReleaseSpeaker(Base):
    """Which speakers a release contains, so an erasure can name the releases to retrain."""

    __tablename__ = "release_speakers"

    release_pk: Mapped[int] = mapped_column(ForeignKey("releases.pk", ondelete="CASCADE"), primary_key=True)
    speaker_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class AuditEvent(Base):
    """Append-only: who did what to which subject, when, with what details."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(256))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # hash chain: entry_hash = H(prev_hash, content_digest); content_digest = H(at, actor, action,
    # subject, details). An erasure may blank subject/details (personal data) yet keep the digest,
    # so the chain still verifies and any other change is detected. NOT NULL (migration 0008): the
    # columns are filled before the row is inserted (store/audit.py), and a row cannot lose them.
    content_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class VoiceProfile(Base):
    """Cached speaker embeddings of one recording (an npz blob), so duplicate checks never re-run the encoder.

    One row per (recording, model and recipe, source): a new encoder, a changed front
    end or a newer transcript revision to split the voices by gives a new row.
    """

    __tablename__ = "voice_profiles"
    __table_args__ = (UniqueConstraint("recording_pk", "model", "source", name="uq_voice_profile"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_pk: Mapped[int] = mapped_column(ForeignKey("recordings.pk", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))  # "clusters", "channels" or "transcript:<revision pk>"
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Pull(Base):
    """One pull of a release into a folder: an erasure rewrites the pulls under the home and lists the others."""

    __tablename__ = "pulls"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_pk: Mapped[int] = mapped_column(ForeignKey("releases.pk", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(32))
    audio: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(4096))  # absolute, as resolved on `host`
    host: Mapped[str] = mapped_column(String(255))
    pulled_by: Mapped[str] = mapped_column(String(128))
    pulled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # set when the folder was deleted or rewritten by Turnscribe (an erasure); why, without personal data
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_reason: Mapped[str] = mapped_column(String(128), default="", server_default="")


class DoNotCollectEntry(Base):
    """A keyed hash (HMAC, store.do_not_collect) of an erased speaker id, consent id or audio hash: never the value."""

    __tablename__ = "do_not_collect"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "speaker", "consent" or "audio"
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    tombstone_id: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoreKey(Base):
    """The fingerprint of a secret kept outside the database, so a missing or swapped key file is detected."""

    __tablename__ = "store_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
