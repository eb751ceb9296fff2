"""The database boundary: engine, sessions, Alembic migrations, and the errors stored data raises.

    StoreError(TidegateError)       the database cannot be used as asked
    +-- DatabaseUnavailableError    it cannot be reached or is not migrated
    +-- NotFoundError               a record named by the caller does not exist
    +-- ConflictError               a change would break a uniqueness or consistency rule

One `Database` per process (or per test). Nothing connects at import time: the engine is made by
the constructor, lazily connecting on first use. SQLite gets WAL, foreign keys and a busy timeout
so an embedded console serves concurrent requests; PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tidegate.core.errors import ConflictError as ConflictError
from tidegate.core.errors import DatabaseUnavailableError as DatabaseUnavailableError
from tidegate.core.errors import NotFoundError as NotFoundError
from tidegate.core.errors import StoreError as StoreError
from tidegate.core.errors import UsageError
from tidegate.store.base import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

TABLE_MODULES: tuple[str, ...] = (
    "tidegate.store.auth_tables",
    "tidegate.store.event_tables",
    "tidegate.store.inventory",
    "tidegate.store.jobs",
    "tidegate.store.deliveries",
    "tidegate.store.registries",
    "tidegate.store.runtime",
    "tidegate.store.profiles",
)
"""Every module that defines tables: imported by `metadata()` so the ORM metadata is complete."""

SQLITE_BUSY_TIMEOUT_MS = 15_000


def metadata() -> MetaData:
    """The complete ORM metadata: every table module imported."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs; refuse what is not a URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(f"database URL {url!r}: not a database URL") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(f"database URL: {parsed.get_backend_name()!r} is not supported")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """An engine and its session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine: Engine = self._make_engine(echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _make_engine(self, echo: bool) -> Engine:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, echo=echo, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(self.url, echo=echo, pool_pre_ping=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back on any error.

        The driver's errors become ours here: a uniqueness race lost to a concurrent writer is
        a ConflictError, a lost or locked database a DatabaseUnavailableError.
        """
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except IntegrityError as exc:
                session.rollback()
                raise ConflictError(f"conflicting change: {exc.orig}") from exc
            except OperationalError as exc:
                session.rollback()
                raise DatabaseUnavailableError(f"database {self.safe_url}: {exc.orig}") from exc
            except BaseException:
                session.rollback()
                raise

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema in place to `revision` (Alembic, in one transaction per step)."""
        config = self._alembic_config()
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(
                f"database {self.safe_url}: migration failed: {exc}"
            ) from exc

    def head_revisions(self) -> set[str]:
        return set(ScriptDirectory.from_config(self._alembic_config()).get_heads())

    def current_revisions(self) -> set[str]:
        """The revisions the database is at (empty when it was never migrated)."""
        try:
            with self.engine.connect() as connection:
                return set(MigrationContext.configure(connection).get_current_heads())
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(f"database {self.safe_url}: {exc}") from exc

    def check_ready(self) -> None:
        """Raise DatabaseUnavailableError unless the database answers and is at head."""
        current, head = self.current_revisions(), self.head_revisions()
        if current != head:
            raise DatabaseUnavailableError(
                f"database {self.safe_url} is at revision {sorted(current) or 'none'},"
                f" this code expects {sorted(head)}: run `tidegate console` to migrate it"
            )

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
