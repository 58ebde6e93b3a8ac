"""Shared fixtures: stores on SQLite and on a real PostgreSQL server, the synthetic dialogues."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from collection.synthetic import DIALOGUES_DIR
from store.db import Store, open_store
from store.settings import Settings, enforce_offline
from tests.pg_server import PostgresServer, start_postgres

enforce_offline()
PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols"
EN_PROTOCOL = PROTOCOLS / "en_dialogue_accents.yaml"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


def _postgres_database(server: PostgresServer) -> str:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    engine = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.url(name)


def open_test_store(request: pytest.FixtureRequest, home: Path, backend: str) -> Store:
    """A migrated, empty store at `home`: SQLite there, or a fresh database on the test server."""
    if backend == "postgresql":
        url = _postgres_database(request.getfixturevalue("postgres"))
    else:
        url = f"sqlite:///{home / 'turnscribe.db'}"
    return open_store(Settings(home=home, database_url=url))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store: SQLite under tmp_path, or a fresh database on the test server."""
    opened = open_test_store(request, tmp_path / "home", request.param)
    yield opened
    opened.close()


@pytest.fixture
def dialogues(tmp_path: Path) -> Path:
    """A writable copy of the committed synthetic dialogues (tests may add bad files beside them)."""
    target = tmp_path / "dialogues"
    shutil.copytree(DIALOGUES_DIR, target)
    return target
