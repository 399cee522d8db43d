"""Noticing a registry change on every call, cheaply: what makes a key revocation immediate.

A :class:`~featurestore.registry.freshness.FreshnessGate` asks the state token at most once per
interval, which is fine for definitions but not for credentials: a revoked key must be refused
by the very next request. A :class:`ChangeProbe` is cheap enough to ask on every call:

- SQLite file: ``PRAGMA data_version`` on a read-only connection of its own (bumped by every
  commit of any other connection; a few microseconds, no file read);
- PostgreSQL: the project's state token, read with one autocommit ``SELECT`` on a connection the
  probe holds (no pool checkout, no ``BEGIN``/``COMMIT``: one round trip);
- anything else (an in-memory SQLite registry): the registry's own :meth:`state_token`.

    probe = registry.change_probe("demo")
    if probe.changed():   # True the first time, then whenever the registry changed
        cache.clear()
    probe.close()
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from featurestore.errors import RegistryError

_UNSEEN = object()


class ChangeProbe(ABC):
    """Whether the registry changed since the last call (thread-safe)."""

    def __init__(self) -> None:
        self._seen: object = _UNSEEN
        self._lock = threading.Lock()

    def changed(self) -> bool:
        """True the first time, then whenever the registry changed since the previous call."""
        with self._lock:
            try:
                state = self._state()
            except Exception:
                # A new connection's answers are not comparable with the old one's (SQLite's
                # data_version is per connection): the next answer must count as a change.
                self._seen = _UNSEEN
                raise
            changed = state != self._seen
            self._seen = state
            return changed

    @abstractmethod
    def _state(self) -> object:
        """Something that differs after any change (called under the lock)."""

    def close(self) -> None:
        """Release what the probe holds; asked again, it reconnects, and its first answer is
        True (what happened meanwhile is unknown, so caches keyed on it must go)."""
        with self._lock:
            self._seen = _UNSEEN
            self._release()

    @abstractmethod
    def _release(self) -> None:
        """Close the probe's own connection, if any (called under the lock)."""


class TokenProbe(ChangeProbe):
    """Asks a state-token function (the registry's own, for databases without a cheaper way)."""

    def __init__(self, state_token: Callable[[], str]) -> None:
        super().__init__()
        self._state_token = state_token

    def _state(self) -> object:
        return self._state_token()

    def _release(self) -> None:
        """Nothing to release: the registry's own connections answer."""


class SQLiteDataVersionProbe(ChangeProbe):
    """``PRAGMA data_version`` of a SQLite file, on a read-only connection of its own."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _state(self) -> object:
        if self._connection is None:
            self._connection = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, check_same_thread=False
            )
        try:
            return self._connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            self._release()
            raise RegistryError(f"registry {self._path}: {exc}") from exc

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class HeldConnectionProbe(ChangeProbe):
    """One query per call on an autocommit connection the probe keeps (PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        sql: str,
        params: tuple[Any, ...],
        *,
        display_url: str,
        describe: Callable[[BaseException], str],
    ) -> None:
        super().__init__()
        self._engine = engine
        self._sql = sql
        self._params = params
        self._display_url = display_url
        self._describe = describe
        self._connection: Connection | None = None

    def _state(self) -> object:
        try:
            if self._connection is None:
                self._connection = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            # The driver's own cursor: SQLAlchemy's statement layer would cost more than the
            # round trip itself on this path, asked on every request.
            cursor = self._connection.connection.cursor()
            try:
                cursor.execute(self._sql, self._params)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except (SQLAlchemyError, self._engine.dialect.loaded_dbapi.Error) as exc:
            if self._connection is not None:
                self._connection.invalidate()
                self._connection = None
            raise RegistryError(f"registry {self._display_url}: {self._describe(exc)}") from exc
        return None if row is None else row[0]

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
