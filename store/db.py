"""One relational store through SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

The schema is owned by Alembic migrations (``store/migrations``); `open_store` brings a
database up to the newest revision before handing out sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from store.blobs import BlobStore
from store.settings import Settings, load_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout for concurrent users."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA temp_store=MEMORY")  # coverage's temporary table and sorts
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
            cursor.close()

        return engine
    # the workbench serves many people at once: room for 20 concurrent savers plus the page reads
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


def take_sqlite_write_lock(session: Session) -> None:
    """On SQLite, take the database write lock now (BEGIN IMMEDIATE) unless this transaction already holds it.

    The driver begins a transaction only at the first write, so a read-then-write would
    otherwise read a snapshot another process is about to change. A no-op on PostgreSQL
    (which locks rows or takes advisory locks instead).
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision` (the newest by default)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@dataclass
class Store:
    """The database and the blob storage of one Turnscribe home."""

    settings: Settings
    engine: Engine
    blobs: BlobStore

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings | None = None, *, upgrade: bool = True) -> Store:
    """Open (and by default migrate) the store the settings point at."""
    settings = settings or load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if upgrade:
        migrate(engine)
    return Store(settings=settings, engine=engine, blobs=BlobStore(settings.blob_root))
