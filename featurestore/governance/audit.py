"""The audit log: an append-only table in the registry of who did what, to which resource, when,
and how it ended.

    audit = AuditLog(registry, "demo")
    audit.record("ana", "apply", "feature_view:driver_stats", "ok", {"version": 3})
    audit.query(since=yesterday, principal="ana", action="apply")

Applies, materializations, pushes, retention runs, erasures, policy and key changes and every
denied access are recorded one row each. Online reads are too many for that: they are
aggregated per (principal, resource, outcome) and written as one row with a ``count`` at most
every ``flush_seconds`` (and on close), so the hot path only bumps a counter in memory.
Rows are never updated or deleted by the store.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select

from featurestore.registry.base import Registry
from featurestore.registry.schema import audit_log


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit log."""

    id: int
    at: datetime
    principal: str | None
    action: str
    resource: str
    outcome: str
    count: int
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Writes and reads one project's audit log."""

    def __init__(self, registry: Registry, project: str, *, flush_seconds: float = 10.0) -> None:
        self.registry = registry
        self.project = project
        self.flush_seconds = flush_seconds
        self._reads: Counter[tuple[str | None, str, str]] = Counter()
        self._reads_since = time.monotonic()
        self._lock = threading.Lock()

    def record(
        self,
        principal: str | None,
        action: str,
        resource: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        *,
        count: int = 1,
    ) -> None:
        """Append one row, in a transaction of its own."""
        row = _row(self.project, principal, action, resource, outcome, detail, count)
        with self.registry.writing() as conn:
            conn.execute(insert(audit_log).values(**row))

    def count_online_read(
        self, principal: str | None, resources: Iterable[str], outcome: str
    ) -> None:
        """Tally an online read of ``resources``; the tallies are written as aggregated rows
        every ``flush_seconds`` (checked here, so a busy service flushes as it goes)."""
        with self._lock:
            for resource in resources:
                self._reads[(principal, resource, outcome)] += 1
            due = time.monotonic() - self._reads_since >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the tallied online reads (one row per principal, resource and outcome)."""
        with self._lock:
            tallies, self._reads = self._reads, Counter()
            window = time.monotonic() - self._reads_since
            self._reads_since = time.monotonic()
        if not tallies:
            return
        rows = [
            _row(
                self.project,
                principal,
                "read_online",
                resource,
                outcome,
                {"aggregated_seconds": round(window, 3)},
                count,
            )
            for (principal, resource, outcome), count in sorted(
                tallies.items(), key=lambda item: (str(item[0][0]), item[0][1], item[0][2])
            )
        ]
        with self.registry.writing() as conn:
            conn.execute(insert(audit_log), rows)

    def query(
        self,
        *,
        since: datetime | None = None,
        principal: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        resource: str | None = None,
        before_id: int | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Rows matching every given filter, oldest first (the newest ``limit`` when given).

        ``resource`` keeps rows whose resource contains it (``driver_stats`` matches
        ``feature_view:driver_stats`` and ``feature:driver_stats:conv_rate``); ``before_id``
        keeps rows older than that id, so a reader pages back with the oldest id it was given."""
        a = audit_log
        query = select(a).where(a.c.project == self.project)
        if since is not None:
            query = query.where(a.c.at >= since)
        if principal is not None:
            query = query.where(a.c.principal == principal)
        if action is not None:
            query = query.where(a.c.action == action)
        if outcome is not None:
            query = query.where(a.c.outcome == outcome)
        if resource:
            query = query.where(a.c.resource.contains(resource, autoescape=True))
        if before_id is not None:
            query = query.where(a.c.id < before_id)
        query = query.order_by(a.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.registry.reading() as conn:
            rows = conn.execute(query).all()
        return [
            AuditRecord(
                id=int(r.id),
                at=r.at,
                principal=r.principal,
                action=r.action,
                resource=r.resource,
                outcome=r.outcome,
                count=int(r._mapping["count"]),
                detail=json.loads(r.detail_json),
            )
            for r in reversed(rows)
        ]


def _row(
    project: str,
    principal: str | None,
    action: str,
    resource: str,
    outcome: str,
    detail: Mapping[str, Any] | None,
    count: int,
) -> dict[str, Any]:
    return {
        "project": project,
        "at": datetime.now(timezone.utc),
        "principal": principal,
        "action": action,
        "resource": resource,
        "outcome": outcome,
        "count": count,
        "detail_json": json.dumps(dict(detail or {}), sort_keys=True, default=str),
    }
