"""How fresh each view's online values are: the newest event time written online, and when.

Every online write (materialization, push, direct write, stream batch) tells the facade's
:class:`FreshnessLog` the newest event time of the rows it wrote for a view version. The log keeps
the largest per view version in memory and records it in the registry's ``online_freshness`` table
at most once per :data:`FLUSH_SECONDS` (and when the store closes), so a busy push path costs one
small registry write per second, not one per push. The age of a view's online values is then
``now - newest event``; ``featurestore status``, ``/metrics``, ``/v1/feature-views/{name}`` and
``/health`` (against a view's ``freshness`` objective) read it back with :func:`read_freshness`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from featurestore.errors import RegistryError
from featurestore.online.base import EVENT_TS, Namespace
from featurestore.registry import Registry
from featurestore.registry import schema as tables

#: Longest time an online write's freshness waits in memory before reaching the registry.
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class OnlineFreshness:
    """The newest event time written online for a view version, and when it was written."""

    newest_event: datetime
    written_at: datetime


class FreshnessLog:
    """Collects the newest event time written per view version; see the module."""

    def __init__(
        self,
        registry: Registry,
        project: str,
        online_store: str,
        *,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.registry = registry
        self.project = project
        self.online_store = online_store
        self.flush_seconds = flush_seconds
        self._pending: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._flushed = time.monotonic()

    def note(self, namespace: Namespace, batch: pa.RecordBatch) -> None:
        """Remember the newest event time of ``batch`` (an online write batch) for its view."""
        if not batch.num_rows or EVENT_TS not in batch.schema.names:
            return
        newest = pc.max(batch.column(EVENT_TS)).as_py()
        if newest is None:
            return
        key = (namespace.view.name, namespace.version)
        with self._lock:
            if newest > self._pending.get(key, newest - 1):
                self._pending[key] = int(newest)
            due = time.monotonic() - self._flushed >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Record what was noted since the last flush (keeping the largest event time)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed = time.monotonic()
        if pending:
            record_freshness(self.registry, self.project, self.online_store, pending)


def record_freshness(
    registry: Registry, project: str, online_store: str, newest: dict[tuple[str, int], int]
) -> None:
    """Raise each view version's recorded newest event time (epoch µs) to ``newest``'s."""
    table = tables.online_freshness
    now = datetime.now(timezone.utc)
    for (view, version), micros in sorted(newest.items()):
        moment = datetime.fromtimestamp(micros / 1_000_000, timezone.utc)
        where = (
            (table.c.project == project)
            & (table.c.online_store == online_store)
            & (table.c.view == view)
            & (table.c.version == version)
        )
        raise_to = (
            update(table)
            .where(where)
            .values(
                newest_event=case(
                    (table.c.newest_event < moment, moment), else_=table.c.newest_event
                ),
                written_at=now,
            )
        )
        row = {
            "project": project,
            "online_store": online_store,
            "view": view,
            "version": version,
            "newest_event": moment,
            "written_at": now,
        }
        try:
            with registry.writing() as conn:
                if conn.execute(raise_to).rowcount == 0:
                    conn.execute(table.insert().values(**row))
        except RegistryError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with registry.writing() as conn:  # another writer inserted it first
                conn.execute(raise_to)


def read_freshness(
    registry: Registry, project: str, online_store: str
) -> dict[tuple[str, int], OnlineFreshness]:
    """Every recorded freshness of ``project`` in one online store, by (view, version)."""
    table = tables.online_freshness
    with registry.reading() as conn:
        rows = conn.execute(
            select(table).where(table.c.project == project, table.c.online_store == online_store)
        ).all()
    return {(r.view, int(r.version)): OnlineFreshness(r.newest_event, r.written_at) for r in rows}


def forget_freshness(registry: Registry, project: str, online_store: str) -> None:
    """Forget a project's freshness in one online store (its online data is gone)."""
    table = tables.online_freshness
    with registry.writing() as conn:
        conn.execute(
            table.delete().where(table.c.project == project, table.c.online_store == online_store)
        )
