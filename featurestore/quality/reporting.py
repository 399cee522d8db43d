"""Where quality outcomes go besides the caller: the registry's history, the lineage graph, the
audit log and, when configured, OpenLineage.

==================  ====================================  ======================================
outcome             lineage graph                         OpenLineage job (facets)
==================  ====================================  ======================================
validation          view vN -> ``validation:<view>#<id>``  ``<project>.validate.<view>``
                                                          (dataQualityAssertions,
                                                          dataQualityMetrics: row count)
statistics          (none: statistics describe data)      ``<project>.statistics.<view>``
                                                          (dataQualityMetrics per column)
drift check         view vN -> ``drift_check:<view>#<id>``;  ``<project>.drift.<view>``
                    saved dataset -> drift check when it  (reference and current with
                    is the reference                      dataQualityMetrics; one assertion
                                                          ``no_drift`` per feature)
==================  ====================================  ======================================

The audit log gets a row per validation someone asked for (``featurestore validate``) and per
validation that failed during a materialization or a push (action ``validate``, outcome
``passed``, ``failed``, or ``rejected`` for a strict failure; the materialization or push itself
has its own row), per statistics run (``statistics``) and per drift check (``drift``, outcome
``drift`` or ``no_drift``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from featurestore.definitions.feature_view import FeatureView
from featurestore.governance.lineage import LineageEdge, LineageGraph, LineageNode
from featurestore.governance.openlineage import (
    ColumnMetrics,
    DatasetRef,
    LineageEmitter,
    QualityAssertion,
    store_namespace,
    view_dataset,
)
from featurestore.quality.drift import DriftReport
from featurestore.quality.history import DATASET_SUBJECT, QualityHistory, StoredStatistics
from featurestore.quality.profile import TableProfile
from featurestore.quality.result import ValidationResult

#: Records one audit row: (action, resource, outcome, detail).
AuditSink = Callable[[str, str, str, Mapping[str, Any]], None]


def no_audit(action: str, resource: str, outcome: str, detail: Mapping[str, Any]) -> None:
    """An audit sink that records nothing (for callers without a principal)."""


class QualityReporting:
    """Records quality outcomes of one project (see the module docstring)."""

    def __init__(
        self, project: str, history: QualityHistory, graph: LineageGraph, emitter: LineageEmitter
    ) -> None:
        self.project = project
        self.history = history
        self.graph = graph
        self.emitter = emitter

    def validation(
        self, view: FeatureView, result: ValidationResult, audit: AuditSink
    ) -> ValidationResult:
        """Store ``result`` and report it; returns it with its registry id."""
        stored = self.history.record_validation(result)
        failed = [_check_label(c.check, c.column) for c in stored.failures]
        detail = {
            "validation_id": stored.id,
            "count": stored.count,
            "trigger": stored.trigger,
            "mode": stored.mode,
            "success": stored.success,
            "rows": stored.rows,
            "failed": failed,
        }
        node = LineageNode("validation", f"{view.name}#{stored.id}")
        edges = [_from_view(view, stored.version, node, "validated_by", detail)]
        self.graph.record(edges)
        if self.emitter.enabled:
            checked = _view_ref(self.project, view, stored.version)
            checked = replace(
                checked,
                assertions=tuple(
                    QualityAssertion(_check_label(c.check, None), c.success, c.column)
                    for c in stored.checks
                ),
                metrics_rows=stored.rows,
            )
            self.emitter.emit_run(
                f"{self.project}.validate.{view.name}",
                [checked],
                [],
                job_type="VALIDATE",
                nominal=_nominal(stored.window_start, stored.window_end),
            )
        outcome = (
            "passed" if stored.success else "rejected" if stored.mode == "strict" else "failed"
        )
        audit("validate", f"feature_view:{view.name}", outcome, detail)
        return stored

    def statistics(
        self, view: FeatureView | None, stats: StoredStatistics, audit: AuditSink
    ) -> StoredStatistics:
        """Store ``stats`` (of a view's window, or of a saved dataset) and report them."""
        stored = self.history.record_statistics(stats)
        if self.emitter.enabled:
            dataset = _profiled(self.project, view, stored)
            self.emitter.emit_run(
                f"{self.project}.statistics.{stored.subject}",
                [dataset],
                [],
                job_type="STATISTICS",
                nominal=_nominal(stored.window_start, stored.window_end),
            )
        audit(
            "statistics",
            f"{stored.subject_kind}:{stored.subject}",
            "ok",
            {"statistics_id": stored.id, "rows": stored.profile.rows, "window": stored.label},
        )
        return stored

    def drift(
        self,
        view: FeatureView,
        version: int | None,
        report: DriftReport,
        reference: StoredStatistics,
        current: StoredStatistics,
        audit: AuditSink,
    ) -> int:
        """Store ``report`` and report it; returns its registry id."""
        report_id = self.history.record_drift(report, datetime.now(timezone.utc))
        detail = {
            "drift_id": report_id,
            "reference": report.reference,
            "current": report.current,
            "drifted": report.drifted,
            "drifted_features": report.drifted_features,
        }
        node = LineageNode("drift_check", f"{view.name}#{report_id}")
        edges = [_from_view(view, version, node, "drift_checked_by", detail)]
        if reference.subject_kind == DATASET_SUBJECT:
            source = LineageNode("saved_dataset", reference.subject)
            edges.append(LineageEdge(source, node, "reference_of", detail=detail))
        self.graph.record(edges)
        if self.emitter.enabled:
            current_ref = replace(
                _profiled(self.project, view, current),
                assertions=tuple(
                    QualityAssertion("no_drift", not f.drifted, f.feature) for f in report.features
                ),
            )
            self.emitter.emit_run(
                f"{self.project}.drift.{view.name}",
                [_profiled(self.project, view, reference), current_ref],
                [],
                job_type="DRIFT",
                nominal=_nominal(current.window_start, current.window_end),
            )
        audit(
            "drift", f"feature_view:{view.name}", "drift" if report.drifted else "no_drift", detail
        )
        return report_id


def _from_view(
    view: FeatureView,
    version: int | None,
    node: LineageNode,
    relation: str,
    detail: Mapping[str, Any],
) -> LineageEdge:
    return LineageEdge(
        LineageNode("feature_view", view.name, version), node, relation, detail=detail
    )


def _view_ref(project: str, view: FeatureView, version: int | None) -> DatasetRef:
    return view_dataset(project, view, version or 0)


def _profiled(project: str, view: FeatureView | None, stats: StoredStatistics) -> DatasetRef:
    """The dataset ``stats`` describe, with its row count and column metrics."""
    if stats.subject_kind == DATASET_SUBJECT or view is None:
        base = DatasetRef(namespace=store_namespace(project), name=f"saved_dataset.{stats.subject}")
    else:
        base = _view_ref(project, view, stats.version)
    return replace(
        base, metrics_rows=stats.profile.rows, column_metrics=column_metrics(stats.profile)
    )


def column_metrics(profile: TableProfile) -> dict[str, ColumnMetrics]:
    """OpenLineage column metrics of a profile (min and max only for numeric columns)."""
    metrics = {}
    for name, column in profile.columns.items():
        numeric = isinstance(column.min, int | float) and isinstance(column.max, int | float)
        metrics[name] = ColumnMetrics(
            null_count=column.nulls,
            distinct_count=column.distinct,
            count=column.rows - column.nulls,
            min=float(column.min) if numeric and column.min is not None else None,
            max=float(column.max) if numeric and column.max is not None else None,
            quantiles={_quantile_key(k): float(v) for k, v in column.quantiles.items()},
        )
    return metrics


def _quantile_key(name: str) -> str:
    # "p05" -> "0.05": OpenLineage keys quantiles by the fraction.
    return str(int(name[1:]) / 100) if name.startswith("p") and name[1:].isdigit() else name


def _check_label(check: str, column: str | None) -> str:
    return check if column is None else f"{check}({column})"


def _nominal(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None] | None:
    return None if start is None and end is None else (start, end)
