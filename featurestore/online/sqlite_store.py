"""The embedded online store: one SQLite file, no server (the quickstart and notebook default).

One table holds every row, keyed by namespace and entity key (see :mod:`featurestore.online.codec`
for the key and row encodings)::

    CREATE TABLE online_rows (
        project TEXT, view TEXT, version INTEGER, entity_key BLOB,   -- the primary key
        event_ts INTEGER, created_ts INTEGER,    -- epoch us; a null created is stored as INT64_MIN
        expires_at INTEGER,                      -- epoch us; NULL = never (no TTL)
        value BLOB,                              -- the packed row
        PRIMARY KEY (project, view, version, entity_key)
    ) WITHOUT ROWID

A batch is one transaction of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` (new row at least as
new as the stored one, or the stored one expired), so the never-overwrite-newer rule holds inside
SQLite, and re-runs are idempotent. Rows past ``expires_at`` are invisible to reads and purged by
writes. The database runs in WAL mode with ``synchronous=FULL``: a committed batch survives a
crash, and readers in other processes are not blocked by a writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from featurestore.errors import OnlineStoreError
from featurestore.online.base import (
    Namespace,
    OnlineStore,
    StateUpdate,
    StoredState,
    SupportsRowDeletion,
    SupportsStateUpdates,
    WriteResult,
)
from featurestore.online.codec import CodecCache, encode_keys
from featurestore.online.identity import sqlite_identity

if TYPE_CHECKING:
    from featurestore.config import RepoConfig
    from featurestore.online.backends import OnlineStoreSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    project TEXT NOT NULL,
    view TEXT NOT NULL,
    version INTEGER NOT NULL,
    entity_key BLOB NOT NULL,
    event_ts INTEGER NOT NULL,
    created_ts INTEGER NOT NULL,
    expires_at INTEGER,
    value BLOB NOT NULL,
    PRIMARY KEY (project, view, version, entity_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS online_rows_expiry ON online_rows (expires_at)
    WHERE expires_at IS NOT NULL;
"""

_UPSERT = """
INSERT INTO online_rows
    (project, view, version, entity_key, event_ts, created_ts, expires_at, value)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (project, view, version, entity_key) DO UPDATE SET
    event_ts = excluded.event_ts, created_ts = excluded.created_ts,
    expires_at = excluded.expires_at, value = excluded.value
WHERE excluded.event_ts > online_rows.event_ts
    OR (excluded.event_ts = online_rows.event_ts AND excluded.created_ts >= online_rows.created_ts)
    OR online_rows.expires_at <= ?
"""

_READ = """
SELECT entity_key, value FROM online_rows
WHERE project = ? AND view = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)
    AND entity_key IN ({})
"""

# Keys per SELECT; IN lists are padded to a power of two so SQLite's statement cache stays small.
_READ_CHUNK = 512

_NAMESPACE = "project = ? AND view = ? AND version = ?"

# A state replaces whatever is stored (the update saw it, under the write lock).
_REPLACE = """
INSERT OR REPLACE INTO online_rows
    (project, view, version, entity_key, event_ts, created_ts, expires_at, value)
VALUES (?, ?, ?, ?, ?, 0, ?, ?)
"""


class SQLiteOnlineStore(OnlineStore, SupportsRowDeletion, SupportsStateUpdates):
    """Online rows in one SQLite file (``":memory:"`` for a private in-memory database).

    Safe to share between threads: one connection, used under a lock.
    """

    def __init__(self, path: str | Path, *, expiry_grace: timedelta = timedelta(days=1)) -> None:
        self.path = str(path)
        self.expiry_grace = expiry_grace
        self._codecs = CodecCache()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteOnlineStore({self.path!r})"

    @property
    def identity(self) -> str:
        # The resolved path: the same file reached through another relative path or a symlink
        # is the same store. An in-memory database is private to this object.
        if self.path == ":memory:":
            return f"sqlite::memory:{id(self):x}"
        return sqlite_identity(self.path)

    # -- connection ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite failures become :class:`OnlineStoreError`."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                yield self._conn
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"online store {self.path}: {action} failed: {exc}") from exc

    # -- OnlineStore ---------------------------------------------------------------------------

    def write_batch(self, namespace: Namespace, batch: pa.RecordBatch) -> WriteResult:
        """Upsert ``batch`` in one transaction, keeping stored rows that are newer."""
        prepared = self._codecs.prepare(namespace, batch, self.expiry_grace)
        if not len(prepared):
            return WriteResult(expired=prepared.expired)
        now = _now_us()
        expires = (
            repeat(None) if prepared.expires_at_us is None else prepared.expires_at_us.tolist()
        )
        rows = zip(
            repeat(namespace.project),
            repeat(namespace.view.name),
            repeat(namespace.version),
            prepared.keys.to_pylist(),
            prepared.event_ts.tolist(),
            prepared.created_ts.tolist(),
            expires,
            prepared.values.to_pylist(),
            repeat(now),
        )
        with self._connection(f"writing {namespace.view.label}") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                written = conn.executemany(_UPSERT, rows).rowcount
                # Opportunistic purge, through the partial index on expires_at: cheap.
                conn.execute("DELETE FROM online_rows WHERE expires_at <= ?", (now,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return WriteResult(
            written=written, skipped_older=len(prepared) - written, expired=prepared.expired
        )

    def read(self, namespace: Namespace, keys: pa.Table, features: Sequence[str]) -> pa.Table:
        """Rows for ``keys``, in order; expired rows read as not found."""
        codec = self._codecs.get(namespace.view)
        encoded = encode_keys(keys, namespace.view.join_keys).to_pylist()
        with self._connection(f"reading {namespace.view.label}") as conn:
            stored = self._fetch(conn, namespace, [k for k in encoded if k is not None])
        return codec.decode([None if k is None else stored.get(k) for k in encoded], features)

    def read_packed(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """Packed rows per read, from one connection checkout."""
        out: list[list[bytes | None]] = []
        with self._connection("reading online rows") as conn:
            for namespace, entity_keys in reads:
                stored = self._fetch(conn, namespace, entity_keys)
                out.append([stored.get(key) for key in entity_keys])
        return out

    @staticmethod
    def _fetch(
        conn: sqlite3.Connection, namespace: Namespace, entity_keys: Sequence[bytes]
    ) -> dict[bytes, bytes]:
        """Unexpired stored rows of ``entity_keys`` (duplicates allowed), by entity key."""
        wanted = list(dict.fromkeys(entity_keys))
        stored: dict[bytes, bytes] = {}
        head = (namespace.project, namespace.view.name, namespace.version, _now_us())
        for start in range(0, len(wanted), _READ_CHUNK):
            chunk = wanted[start : start + _READ_CHUNK]
            # Padding to a power of two keeps the number of distinct statements (and so the
            # statement cache) small.
            size = 1 << (len(chunk) - 1).bit_length()
            padded = chunk + [chunk[0]] * (size - len(chunk))
            sql = _READ.format(", ".join("?" * size))
            stored.update(conn.execute(sql, (*head, *padded)).fetchall())
        return stored

    def delete_project(self, project: str) -> int:
        """Delete every row of ``project``."""
        with self._connection(f"deleting project {project!r}") as conn:
            return conn.execute("DELETE FROM online_rows WHERE project = ?", (project,)).rowcount

    # -- SupportsRowDeletion -------------------------------------------------------------------

    def scan_entity_keys(
        self, namespace: Namespace, *, batch_size: int = 1000
    ) -> Iterator[list[bytes]]:
        """Pages of the namespace's keys in key order, each read under the lock on its own."""
        after: bytes | None = None  # None: from the start (a global view's key is empty)
        while True:
            above = "" if after is None else "AND entity_key > ? "
            with self._connection(f"scanning {namespace.view.label}") as conn:
                page = [
                    key
                    for (key,) in conn.execute(
                        f"SELECT entity_key FROM online_rows WHERE {_NAMESPACE} {above}"
                        "ORDER BY entity_key LIMIT ?",
                        (*_namespace(namespace), *([] if after is None else [after]), batch_size),
                    )
                ]
            if not page:
                return
            yield page
            after = page[-1]

    def delete_entity_keys(
        self, namespace: Namespace, entity_keys: Sequence[bytes], *, dry_run: bool = False
    ) -> int:
        """Delete (or count) the keys' rows, expired or not, in one transaction."""
        verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
        wanted = list(dict.fromkeys(entity_keys))
        count = 0
        with self._connection(f"deleting rows of {namespace.view.label}") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(wanted), _READ_CHUNK):
                    chunk = wanted[start : start + _READ_CHUNK]
                    sql = (
                        f"{verb} online_rows WHERE {_NAMESPACE} "
                        f"AND entity_key IN ({', '.join('?' * len(chunk))})"
                    )
                    count += _affected(conn.execute(sql, (*_namespace(namespace), *chunk)), dry_run)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return count

    def delete_older_than(
        self, cutoffs: Mapping[Namespace, int], *, dry_run: bool = False
    ) -> dict[Namespace, int]:
        """Per namespace one ``DELETE ... WHERE event_ts < cutoff`` (``count(*)`` on a dry
        run), all in one transaction."""
        verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
        sql = f"{verb} online_rows WHERE {_NAMESPACE} AND event_ts < ?"
        counts: dict[Namespace, int] = {}
        with self._connection("removing rows older than their retention") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for namespace, cutoff_us in cutoffs.items():
                    cursor = conn.execute(sql, (*_namespace(namespace), cutoff_us))
                    counts[namespace] = _affected(cursor, dry_run)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return counts

    # -- SupportsStateUpdates ------------------------------------------------------------------

    def update_states(
        self, namespace: Namespace, entity_keys: Sequence[bytes], update: StateUpdate
    ) -> int:
        """Read, update and replace the keys' states in one transaction (expired states read
        as absent)."""
        wanted = list(dict.fromkeys(entity_keys))
        head = _namespace(namespace)

        def expires(new: StoredState) -> int | None:
            return new.expires_at_us(self.expiry_grace)

        with self._connection(f"updating {namespace.view.label}") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                stored = self._fetch(conn, namespace, wanted)
                rows = []
                for key in wanted:
                    new = update(key, stored.get(key))
                    if new is not None:
                        rows.append((*head, key, new.newest_us, expires(new), new.value))
                conn.executemany(_REPLACE, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(rows)

    def ping(self) -> None:
        """Open the database (creating it if needed) and run a trivial query."""
        with self._connection("ping") as conn:
            conn.execute("SELECT 1 FROM online_rows LIMIT 1").fetchall()

    def close(self) -> None:
        """Close the connection; the next call reopens it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _now_us() -> int:
    return time.time_ns() // 1000


def _namespace(namespace: Namespace) -> tuple[str, str, int]:
    return namespace.project, namespace.view.name, namespace.version


def _affected(cursor: sqlite3.Cursor, counted: bool) -> int:
    """Rows a ``count(*)`` counted, or a ``DELETE`` removed."""
    return int(cursor.fetchone()[0]) if counted else cursor.rowcount


def open_store(settings: OnlineStoreSettings, config: RepoConfig) -> SQLiteOnlineStore:
    """The factory of the ``sqlite`` row of :data:`featurestore.online.backends.ONLINE_BACKENDS`."""
    from featurestore.online.sqlite_settings import SQLiteOnlineStoreConfig

    assert isinstance(settings, SQLiteOnlineStoreConfig)
    return SQLiteOnlineStore(settings.file(config), expiry_grace=settings.expiry_grace)
