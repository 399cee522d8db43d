"""Everything that differs between the registry's databases: URLs, connection set-up, locking.

``registry/sql.py`` is written once against SQLAlchemy Core and asks a :class:`DatabaseDialect`
for the rest:

- SQLite: WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for writers, which takes the database's
  single write lock before anything is read, so a writer's plan sees the latest state;
- PostgreSQL (psycopg 3): writers lock their project's row with ``SELECT ... FOR UPDATE``;
  migrations take a transaction-scoped advisory lock.
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from featurestore.errors import RegistryError
from featurestore.registry.probe import ChangeProbe, HeldConnectionProbe, SQLiteDataVersionProbe

WRITE = "featurestore_write"
"""Execution option marking a connection whose transactions write (see :meth:`write_options`)."""

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
# An arbitrary constant: the advisory-lock key that serializes migrations on one database.
_MIGRATION_LOCK_KEY = 0x66735F7265670001


class DatabaseDialect(ABC):
    """The database-specific part of the registry."""

    name: str

    def __init__(self, url: URL) -> None:
        self.url = url

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def database_file(self) -> Path | None:
        """The file holding the database, for a file database (None: a server or memory)."""
        return None

    @abstractmethod
    def create_engine(self) -> Engine:
        """An engine configured for this database."""

    def write_options(self) -> dict[str, Any]:
        """Execution options for a connection that opens write transactions."""
        return {WRITE: True}

    @abstractmethod
    def insert_ignore(self, table: Table, row: dict[str, Any]) -> Any:
        """``INSERT`` that does nothing when the primary key exists (an upsert keeping the old row)."""

    def lock_project(self, conn: Connection, projects: Table, row: dict[str, Any]) -> None:
        """Make sure the project's row exists, and hold its write lock until the transaction ends."""
        conn.execute(self.insert_ignore(projects, row))
        conn.execute(
            select(projects.c.name).where(projects.c.name == row["name"]).with_for_update()
        )

    @abstractmethod
    def lock_migrations(self, conn: Connection) -> None:
        """Serialize schema migrations until the transaction ends."""

    def change_probe(self, engine: Engine, project: str) -> ChangeProbe | None:
        """A probe cheaper than the registry's ``state_token`` (None: there is none)."""
        return None

    def describe(self, exc: BaseException) -> str:
        """A readable, password-free message for a database error."""
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = message[0] if message else type(exc).__name__
        password = self.url.password
        if password:
            first = first.replace(str(password), "***")
        return first


class SQLiteDialect(DatabaseDialect):
    """A registry in one SQLite file (or in memory, for a single connection)."""

    name = "sqlite"

    @property
    def in_memory(self) -> bool:
        return self.url.database in (None, "", ":memory:")

    @property
    def database_file(self) -> Path | None:
        database = self.url.database
        # ``file:`` URIs carry their own options (mode=memory, ...): left to SQLite.
        if self.in_memory or database is None or database.startswith("file:"):
            return None
        return Path(database).expanduser()

    def create_engine(self) -> Engine:
        if self.in_memory:
            engine = create_engine(
                self.url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            if self.database_file is not None:
                self.database_file.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine

    def insert_ignore(self, table: Table, row: dict[str, Any]) -> Any:
        return sqlite.insert(table).values(row).on_conflict_do_nothing()

    def lock_project(self, conn: Connection, projects: Table, row: dict[str, Any]) -> None:
        # BEGIN IMMEDIATE already holds the database's one write lock; only the row is needed.
        conn.execute(self.insert_ignore(projects, row))

    def lock_migrations(self, conn: Connection) -> None:
        """Nothing to add: the migration transaction began with BEGIN IMMEDIATE."""

    def change_probe(self, engine: Engine, project: str) -> ChangeProbe | None:
        """``PRAGMA data_version`` of the file (an in-memory database has no other connection
        to change it: the registry's state token does)."""
        database = self.url.database
        if self.in_memory or database is None or database.startswith("file:"):
            return None
        return SQLiteDataVersionProbe(Path(database).expanduser())


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from issuing its own (deferred) BEGIN: _sqlite_begin decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        # WAL lets readers go on while one process applies; NORMAL is durable enough with WAL.
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switch to WAL, retrying while another process holds the lock.

    Changing the journal mode needs an exclusive lock and SQLite does not always call the busy
    handler for it, so processes opening a new registry together can get "database is locked"
    at once; WAL is persistent, so the first one to succeed settles it for all.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_begin(conn: Connection) -> None:
    # A writer must hold the write lock *before* it reads the state it plans against; a deferred
    # transaction that upgrades later can also fail at once with "database is locked".
    mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class PostgresDialect(DatabaseDialect):
    """A registry in a PostgreSQL database (driver: psycopg 3)."""

    name = "postgresql"

    def create_engine(self) -> Engine:
        args: dict[str, Any] = {}
        if "connect_timeout" not in self.url.query:
            args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
        try:
            return create_engine(self.url, connect_args=args)
        except (NoSuchModuleError, ImportError) as exc:
            raise RegistryError(
                f"cannot use the registry {self.display_url}: the PostgreSQL driver is missing "
                f"({exc}); install it with `pip install 'featurestore[postgres]'`"
            ) from None

    def insert_ignore(self, table: Table, row: dict[str, Any]) -> Any:
        return postgresql.insert(table).values(row).on_conflict_do_nothing()

    def lock_migrations(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})

    def change_probe(self, engine: Engine, project: str) -> ChangeProbe | None:
        """The project's state token, one autocommit query on a connection of the probe's own."""
        return HeldConnectionProbe(
            engine,
            "SELECT state_token FROM projects WHERE name = %s",
            (project,),
            display_url=self.display_url,
            describe=self.describe,
        )


def dialect_for(url: str) -> DatabaseDialect:
    """The dialect for a registry URL; bare ``postgresql://`` URLs get the psycopg driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise RegistryError(
            f"invalid registry URL {_redact(url)!r}: {exc}; use sqlite:////abs/path/registry.db "
            "or postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SQLiteDialect(parsed)
    if backend in ("postgresql", "postgres"):
        if parsed.get_driver_name() in ("psycopg2", "") or "+" not in parsed.drivername:
            parsed = parsed.set(drivername="postgresql+psycopg")
        return PostgresDialect(parsed)
    raise RegistryError(
        f"registry database {backend!r} ({parsed.render_as_string(hide_password=True)}) is not "
        "supported: use sqlite:///... or postgresql+psycopg://..."
    )


def _redact(url: str) -> str:
    """Best-effort removal of a password from a URL SQLAlchemy could not parse."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
