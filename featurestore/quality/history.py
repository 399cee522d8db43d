"""The quality layer's records in the registry: validation results, statistics, drift reports.

    history = QualityHistory(registry, "demo")
    history.record_validation(result)                # -> the result with its id
    history.validations("driver_stats", limit=10)    # newest last
    history.record_statistics(stats)                  # a view's window, or a saved dataset
    history.statistics("feature_view", "driver_stats")

Each record is one row with its JSON (canonical, sorted keys) plus the columns queries filter on;
rows are never updated, so the history of a view's quality is kept whole, with one exception: an
erasure rewrites a record without its feature values (the ``replace_*`` methods, see
:mod:`featurestore.governance.quality_scrub`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update

from featurestore.errors import ObjectNotFoundError
from featurestore.quality.drift import DriftReport
from featurestore.quality.profile import TableProfile
from featurestore.quality.result import ValidationResult
from featurestore.registry.base import Registry
from featurestore.registry.schema import drift_reports, feature_statistics, validation_results

#: ``subject_kind`` of statistics over a view's source rows in a window.
VIEW_SUBJECT = "feature_view"
#: ``subject_kind`` of statistics over a saved training dataset (drift references).
DATASET_SUBJECT = "saved_dataset"


@dataclass(frozen=True)
class StoredStatistics:
    """Statistics of a view's rows in a window, or of a saved dataset, as recorded.

    ``columns`` maps each profiled column to the view feature it holds (a saved dataset's
    columns may be ``view__feature``); ``views`` the view versions the subject covers.
    """

    subject_kind: str
    subject: str
    version: int | None
    window_start: datetime | None
    window_end: datetime | None
    computed_at: datetime
    profile: TableProfile
    features: dict[str, dict[str, str]]
    id: int | None = None

    @property
    def label(self) -> str:
        """How reports name it: ``dataset churn`` or ``driver_stats 2026-09-01..2026-09-08``."""
        if self.subject_kind == DATASET_SUBJECT:
            return f"dataset {self.subject}"
        return f"{self.subject} {window_label(self.window_start, self.window_end)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject_kind": self.subject_kind,
            "subject": self.subject,
            "version": self.version,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "computed_at": self.computed_at.isoformat(),
            "features": self.features,
            "profile": self.profile.to_dict(),
        }


def window_label(start: datetime | None, end: datetime | None) -> str:
    """``2026-09-01T00:00:00+00:00..2026-09-08T00:00:00+00:00``; an open end is empty."""
    return f"{_iso(start) or ''}..{_iso(end) or ''}"


class QualityHistory:
    """Reads and writes one project's quality records."""

    def __init__(self, registry: Registry, project: str) -> None:
        self.registry = registry
        self.project = project

    # -- validation ----------------------------------------------------------------------------

    def record_validation(self, result: ValidationResult) -> ValidationResult:
        """Store ``result``; returns it with its ``id``."""
        row = {
            "project": self.project,
            "view": result.view,
            "version": result.version,
            "trigger": result.trigger,
            "mode": result.mode,
            "success": result.success,
            "rows": result.rows,
            "started_at": result.started_at,
            "window_start": result.window_start,
            "window_end": result.window_end,
            "result_json": _json(result.to_dict()),
        }
        return replace(result, id=self._insert(validation_results, row))

    def validations(
        self,
        view: str | None = None,
        *,
        trigger: str | None = None,
        failed_only: bool = False,
        limit: int | None = None,
    ) -> list[ValidationResult]:
        """Stored results (of ``view``, else every view), oldest first; the newest ``limit``."""
        v = validation_results
        query = select(v.c.id, v.c.result_json).where(v.c.project == self.project)
        if view is not None:
            query = query.where(v.c.view == view)
        if trigger is not None:
            query = query.where(v.c.trigger == trigger)
        if failed_only:
            query = query.where(v.c.success.is_(False))
        query = query.order_by(v.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.registry.reading() as conn:
            rows = conn.execute(query).all()
        return [
            replace(ValidationResult.from_dict(json.loads(r.result_json)), id=int(r.id))
            for r in reversed(rows)
        ]

    # -- statistics ----------------------------------------------------------------------------

    def record_statistics(self, stats: StoredStatistics) -> StoredStatistics:
        """Store ``stats``; returns it with its ``id``."""
        row = {
            "project": self.project,
            "subject_kind": stats.subject_kind,
            "subject": stats.subject,
            "version": stats.version,
            "window_start": stats.window_start,
            "window_end": stats.window_end,
            "computed_at": stats.computed_at,
            "rows": stats.profile.rows,
            "profile_json": _json({"profile": stats.profile.to_dict(), "features": stats.features}),
        }
        return replace(stats, id=self._insert(feature_statistics, row))

    def statistics(
        self, subject_kind: str, subject: str | None, *, limit: int | None = None
    ) -> list[StoredStatistics]:
        """Recorded statistics of one view or dataset (``None``: of every one of that kind),
        oldest first; the newest ``limit``."""
        s = feature_statistics
        query = select(s).where(s.c.project == self.project, s.c.subject_kind == subject_kind)
        if subject is not None:
            query = query.where(s.c.subject == subject)
        query = query.order_by(s.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.registry.reading() as conn:
            rows = conn.execute(query).all()
        return [_statistics(r) for r in reversed(rows)]

    def latest_statistics(self, subject_kind: str, subject: str) -> StoredStatistics:
        """The newest statistics of one view or dataset (ObjectNotFoundError when none)."""
        found = self.statistics(subject_kind, subject, limit=1)
        if not found:
            what = "saved dataset" if subject_kind == DATASET_SUBJECT else "feature view"
            raise ObjectNotFoundError(
                f"no statistics recorded for {what} {subject!r} in project {self.project!r}"
            )
        return found[0]

    # -- drift ---------------------------------------------------------------------------------

    def record_drift(self, report: DriftReport, at: datetime) -> int:
        """Store a drift report; returns its id."""
        row = {
            "project": self.project,
            "view": report.view,
            "at": at,
            "reference": report.reference,
            "current": report.current,
            "drifted": report.drifted,
            "report_json": _json(report.to_dict()),
        }
        return self._insert(drift_reports, row)

    def drift_reports(self, view: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored drift reports of ``view`` as dictionaries (with ``id`` and ``at``), oldest
        first; the newest ``limit``."""
        d = drift_reports
        query = (
            select(d.c.id, d.c.at, d.c.report_json)
            .where(d.c.project == self.project, d.c.view == view)
            .order_by(d.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.registry.reading() as conn:
            rows = conn.execute(query).all()
        return [
            {"id": int(r.id), "at": r.at.isoformat(), **json.loads(r.report_json)}
            for r in reversed(rows)
        ]

    # -- rewriting (erasure only) -------------------------------------------------------------

    def replace_validation(self, result: ValidationResult) -> None:
        """Store ``result`` over the record with its ``id``."""
        self._replace(validation_results, result.id, result_json=_json(result.to_dict()))

    def replace_statistics(self, stats: StoredStatistics) -> None:
        """Store ``stats`` over the record with its ``id``."""
        stored = {"profile": stats.profile.to_dict(), "features": stats.features}
        self._replace(feature_statistics, stats.id, profile_json=_json(stored))

    def replace_drift(self, record: dict[str, Any]) -> None:
        """Store a drift report (as :meth:`drift_reports` returns it) over the record with its
        ``id``."""
        report = {k: v for k, v in record.items() if k not in ("id", "at")}
        self._replace(drift_reports, record["id"], report_json=_json(report))

    def _replace(self, table: Table, record_id: int | None, **values: str) -> None:
        if record_id is None:
            raise ValueError(f"{table.name}: only a stored record (with an id) can be replaced")
        with self.registry.writing() as conn:
            conn.execute(
                update(table)
                .where(table.c.project == self.project, table.c.id == record_id)
                .values(**values)
            )

    def _insert(self, table: Table, row: dict[str, Any]) -> int:
        """Append ``row`` to ``table`` in a transaction of its own; returns its id."""
        with self.registry.writing() as conn:
            key = conn.execute(insert(table).values(**row)).inserted_primary_key
        assert key is not None
        return int(key[0])


def _statistics(row: Any) -> StoredStatistics:
    stored = json.loads(row.profile_json)
    return StoredStatistics(
        subject_kind=row.subject_kind,
        subject=row.subject,
        version=row.version,
        window_start=row.window_start,
        window_end=row.window_end,
        computed_at=row.computed_at,
        profile=TableProfile.from_dict(stored["profile"]),
        features=stored["features"],
        id=int(row.id),
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, allow_nan=False)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
