"""The store itself: migrations match the models on both databases; blobs are written once."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from store.blobs import BlobStore
from store.db import Store
from store.models import Base


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert "alembic_version" in inspect(store.engine).get_table_names()


def test_sqlite_default_is_wal_under_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store.db import open_store

    monkeypatch.setenv("TURNSCRIBE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TURNSCRIBE_DATABASE_URL", raising=False)
    store = open_store()
    assert Path(store.engine.url.database) == tmp_path / "home" / "turnscribe.db"
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_only_one_accepted_recording_per_content_hash(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    from store import models

    with store.session() as session:
        protocol = models.Protocol(protocol_id="p", version=1, spec={}, spec_sha256="0" * 64)
        session.add(protocol)
        session.flush()
        row = dict(protocol_pk=protocol.pk, sha256="a" * 64, source_name="x.wav", declared={}, reasons=[])
        session.add_all([models.Recording(status="rejected", **row), models.Recording(status="rejected", **row)])
        session.add(models.Recording(status="accepted", **row))
        session.commit()
        session.add(models.Recording(status="accepted", **row))
        with pytest.raises(IntegrityError):
            session.commit()


def test_blobs_are_content_addressed_and_read_only(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put_bytes(b"hello")
    path = blobs.path_for(digest)
    assert path.parent.name == digest[:2] and path.parent.parent.name == "sha256"
    assert not path.stat().st_mode & 0o222
    source = tmp_path / "f.bin"
    source.write_bytes(b"hello")
    assert blobs.put_file(source) == digest and path.read_bytes() == b"hello"
    with pytest.raises(ValueError, match="content changed"):
        blobs.put_file(source, "b" * 64)
    assert not blobs.exists("b" * 64) and not list(path.parent.glob(".incoming-*"))
    with pytest.raises(ValueError):
        blobs.path_for("../../etc/passwd")
