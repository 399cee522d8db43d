"""The quality layer behind the facade: validation on materialize, push and demand, statistics,
and drift checks, each recorded through :mod:`featurestore.quality.reporting`.

The facade holds one :class:`QualityService` and passes each call the audit sink of the
principal it acts for; access checks stay in the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import ObjectNotFoundError, QualityError
from featurestore.materialize.materializer import epoch_us, from_epoch_us
from featurestore.offline.base import (
    LatestWindow,
    OfflineEngine,
    SavedDataset,
    SupportsStatistics,
    SupportsWindowReads,
    missing_capability,
)
from featurestore.quality.drift import DriftReport, DriftThresholds, compare
from featurestore.quality.history import (
    DATASET_SUBJECT,
    VIEW_SUBJECT,
    QualityHistory,
    StoredStatistics,
    window_label,
)
from featurestore.quality.profile import ColumnStats, TableProfile
from featurestore.quality.push_tally import PushTally
from featurestore.quality.reporting import AuditSink, QualityReporting, no_audit
from featurestore.quality.result import ValidationResult
from featurestore.quality.validator import QualityDefaults, ViewValidator
from featurestore.quality.windows import Window
from featurestore.types import ValueType

#: Rows per batch when validating a window on demand.
VALIDATE_BATCH_ROWS = 100_000
#: What the caller of a run may see of a validation result (the facade withholds the values of
#: features the caller may not read; see :mod:`featurestore.quality.redaction`).
Shown = Callable[[ValidationResult], ValidationResult]


@dataclass(frozen=True)
class DriftOutcome:
    """A drift check: the report, the two statistics it compared, and its registry id."""

    report: DriftReport
    reference: StoredStatistics
    current: StoredStatistics
    id: int

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, **self.report.to_dict()}


class MaterializationValidation:
    """One view's validation during a materialization run (the materializer's hook).

    ``strict`` tells the materializer to hold every row back until :meth:`finish` passed.
    """

    def __init__(
        self,
        service: QualityService,
        view: FeatureView,
        validator: ViewValidator,
        audit: AuditSink,
        shown: Shown | None = None,
    ) -> None:
        self._service = service
        self._view = view
        self._validator = validator
        self._audit = audit
        self._shown = shown
        self.strict = validator.mode == "strict"

    def add(self, batch: pa.RecordBatch) -> None:
        self._validator.add(batch)

    def finish(self) -> str:
        """Record the result; raises ValidationFailedError when strict and failed."""
        result = self._service.conclude(self._view, self._validator, self._audit, self._shown)
        return result.summary()


class QualityService:
    """Validation, statistics and drift for one project."""

    def __init__(
        self,
        config: RepoConfig,
        history: QualityHistory,
        reporting: QualityReporting,
        offline: Callable[[], OfflineEngine],
    ) -> None:
        self.config = config
        self.history = history
        self.reporting = reporting
        self._offline = offline
        settings = config.quality
        self.defaults = QualityDefaults(mode=settings.mode, max_null_rate=settings.max_null_rate)
        self.push_tally = PushTally(settings.push_flush_seconds)
        self.thresholds = DriftThresholds(
            psi=settings.drift.psi,
            ks=settings.drift.ks,
            chi2_p_value=settings.drift.chi2_p_value,
            null_rate=settings.drift.null_rate,
        )

    def _statistics(self) -> SupportsStatistics:
        engine = self._offline()
        if not isinstance(engine, SupportsStatistics):
            raise missing_capability(engine, SupportsStatistics, "compute statistics")
        return engine

    def _window_reader(self) -> SupportsWindowReads:
        engine = self._offline()
        if not isinstance(engine, SupportsWindowReads):
            raise missing_capability(engine, SupportsWindowReads, "read the rows of a window")
        return engine

    def thresholds_with(
        self,
        *,
        psi: float | None = None,
        ks: float | None = None,
        chi2_p_value: float | None = None,
        null_rate: float | None = None,
    ) -> DriftThresholds:
        """The configured drift thresholds with the given ones overriding them."""
        return DriftThresholds(
            psi=self.thresholds.psi if psi is None else psi,
            ks=self.thresholds.ks if ks is None else ks,
            chi2_p_value=self.thresholds.chi2_p_value if chi2_p_value is None else chi2_p_value,
            null_rate=self.thresholds.null_rate if null_rate is None else null_rate,
        )

    # -- validation ----------------------------------------------------------------------------

    def validator(
        self,
        view: FeatureView,
        version: int | None,
        trigger: str,
        window: Window = (None, None),
        *,
        events: bool = False,
    ) -> ViewValidator:
        return ViewValidator(
            view,
            version=version,
            trigger=trigger,
            defaults=self.defaults,
            window_start=window[0],
            window_end=window[1],
            events=events,
        )

    def conclude(
        self,
        view: FeatureView,
        validator: ViewValidator,
        audit: AuditSink,
        shown: Shown | None = None,
    ) -> ValidationResult:
        """Finish ``validator``, record its result, then raise if a strict validation failed
        (with the result as ``shown`` makes it for the caller: without the values they may not
        read)."""
        result = self.reporting.validation(view, validator.finish(), audit)
        validator.check(result if shown is None else shown(result))
        return result

    def materialization(
        self, audit: AuditSink, shown: Shown | None = None
    ) -> Callable[[FeatureView, int, LatestWindow], MaterializationValidation]:
        """The materializer's hook: a validation per view run (``shown``: see :meth:`conclude`)."""

        def start(
            view: FeatureView, version: int, window: LatestWindow
        ) -> MaterializationValidation:
            bounds = (
                None if window.start_us is None else from_epoch_us(window.start_us),
                from_epoch_us(window.end_us),
            )
            validator = self.validator(view, version, "materialize", bounds)
            return MaterializationValidation(self, view, validator, audit, shown)

        return start

    def validate_push(
        self,
        views: Sequence[tuple[FeatureView, int]],
        features_of: Callable[[FeatureView], pa.Table],
        audit: AuditSink,
    ) -> list[ValidationResult]:
        """Validate pushed rows for every view that reads them, then raise
        ValidationFailedError when a strict one failed. A failed result is recorded at once;
        passing ones are recorded together (see :mod:`featurestore.quality.push_tally`). An
        aggregated view's pushed rows are events: only their declared columns' types are
        checked (its values are validated on demand, see :meth:`validate_window`)."""
        checked = []
        for view, version in views:
            validator = self.validator(view, version, "push", events=view.is_aggregated)
            validator.add(features_of(view))
            result = validator.finish()
            if result.success:
                self.push_tally.add(view, result)
            else:
                result = self.reporting.validation(view, result, audit)
            checked.append((validator, result))
        self.flush_pushes(force=False)
        for validator, result in checked:
            validator.check(result)
        return [result for _, result in checked]

    def flush_pushes(self, *, force: bool = True) -> None:
        """Record the passing push validations the tally holds (when due, or ``force``)."""
        for view, merged in self.push_tally.drain(force=force):
            self.reporting.validation(view, merged, no_audit)

    def validate_window(
        self,
        view: FeatureView,
        version: int,
        window: Window,
        audit: AuditSink,
        *,
        not_before_us: int | None = None,
    ) -> ValidationResult:
        """Validate every source row of ``view`` in ``window`` (on demand: never raises for a
        failed validation; the result says). An aggregated view's rows are its values at each
        instant of the window (one per key and event time, see
        :mod:`featurestore.offline.duckdb.agg_instants`)."""
        validator = self.validator(view, version, "on_demand", window)
        start_us, end_us = _window_us(window)
        with closing(
            self._window_reader().read_window(
                view,
                start_us=start_us,
                end_us=end_us,
                not_before_us=not_before_us,
                batch_rows=VALIDATE_BATCH_ROWS,
            )
        ) as rows:
            for batch in rows.batches():
                validator.add(batch)
        return self.reporting.validation(view, validator.finish(), audit)

    # -- statistics ----------------------------------------------------------------------------

    def view_statistics(
        self,
        view: FeatureView,
        version: int,
        window: Window,
        audit: AuditSink,
        *,
        not_before_us: int | None = None,
        reference: StoredStatistics | None = None,
        features: Sequence[str] | None = None,
    ) -> StoredStatistics:
        """Profile the view's source rows in ``window`` (an aggregated view: its values at each
        key's event instants in the window) and record the statistics. With
        ``reference`` (statistics keyed per feature), the profile also counts the current rows
        on the reference's bins, which a drift check needs."""
        start_us, end_us = _window_us(window)
        probe = None if reference is None else _by_feature(reference, view)
        chosen = list(features) if features is not None else None
        if probe is not None and chosen is None:
            chosen = [f for f in view.feature_names if f in probe]
        profile = self._statistics().view_statistics(
            view,
            start_us=start_us,
            end_us=end_us,
            not_before_us=not_before_us,
            features=chosen,
            reference=probe,
        )
        stats = StoredStatistics(
            subject_kind=VIEW_SUBJECT,
            subject=view.name,
            version=version,
            window_start=window[0],
            window_end=window[1],
            computed_at=datetime.now(timezone.utc),
            profile=profile,
            features={c: {"view": view.name, "feature": c} for c in profile.columns},
        )
        return self.reporting.statistics(view, stats, audit)

    def dataset_statistics(
        self,
        saved: SavedDataset,
        columns: Mapping[str, tuple[str, str, ValueType]],
        audit: AuditSink,
    ) -> StoredStatistics:
        """Profile a saved training set's feature columns and record them as the reference
        for drift checks; ``columns`` maps each column to (view, feature, declared type)."""
        profile = self._statistics().file_statistics(
            saved.location, {c: dtype for c, (_, _, dtype) in columns.items()}
        )
        stats = StoredStatistics(
            subject_kind=DATASET_SUBJECT,
            subject=saved.name,
            version=None,
            window_start=None,
            window_end=None,
            computed_at=datetime.now(timezone.utc),
            profile=profile,
            features={c: {"view": v, "feature": f} for c, (v, f, _) in columns.items()},
        )
        return self.reporting.statistics(None, stats, audit)

    # -- drift ---------------------------------------------------------------------------------

    def drift(
        self,
        view: FeatureView,
        version: int,
        current_window: Window,
        audit: AuditSink,
        *,
        reference_dataset: SavedDataset | None = None,
        dataset_columns: Mapping[str, tuple[str, str, ValueType]] | None = None,
        reference_window: Window | None = None,
        not_before_us: int | None = None,
        thresholds: DriftThresholds | None = None,
    ) -> DriftOutcome:
        """Compare the view's rows in ``current_window`` with a saved dataset's statistics or
        with the view's rows in ``reference_window``; record and report the outcome."""
        if (reference_dataset is None) == (reference_window is None):
            raise QualityError(
                f"drift of {view.label}: give exactly one reference, a saved dataset or a window"
            )
        if reference_dataset is not None:
            reference = self._dataset_reference(reference_dataset, dataset_columns or {}, audit)
        else:
            assert reference_window is not None
            reference = self.view_statistics(
                view, version, reference_window, audit, not_before_us=not_before_us
            )
        columns = _reference_columns(reference, view)
        if not columns:
            raise QualityError(
                f"drift of {view.label}: the reference {reference.label} holds none of its "
                f"features {view.feature_names}"
            )
        if reference.profile.rows == 0:
            raise QualityError(
                f"drift of {view.label}: the reference {reference.label} has no rows to compare with"
            )
        current = self.view_statistics(
            view, version, current_window, audit, not_before_us=not_before_us, reference=reference
        )
        if current.profile.rows == 0:
            raise QualityError(
                f"drift of {view.label}: no rows in the current window "
                f"{window_label(*current_window)}"
            )
        report = compare(
            reference.profile,
            current.profile,
            columns,
            view=view.name,
            reference_label=reference.label,
            current_label=current.label,
            thresholds=thresholds or self.thresholds,
        )
        report_id = self.reporting.drift(view, version, report, reference, current, audit)
        return DriftOutcome(report=report, reference=reference, current=current, id=report_id)

    def _dataset_reference(
        self,
        saved: SavedDataset,
        columns: Mapping[str, tuple[str, str, ValueType]],
        audit: AuditSink,
    ) -> StoredStatistics:
        try:
            stored = self.history.latest_statistics(DATASET_SUBJECT, saved.name)
        except ObjectNotFoundError:
            # Saved before statistics were kept: profile the file once, now.
            return self.dataset_statistics(saved, columns, audit)
        if any(column.redacted for column in stored.profile.columns.values()):
            # An erasure scrubbed them (and the dataset file): profile the file as it is now.
            return self.dataset_statistics(saved, columns, audit)
        return stored


def _reference_columns(reference: StoredStatistics, view: FeatureView) -> dict[str, str]:
    """Feature name -> the reference's column holding it, for the features of ``view``."""
    return {
        held["feature"]: column
        for column, held in reference.features.items()
        if held["view"] == view.name and held["feature"] in view.feature_names
    }


def _by_feature(reference: StoredStatistics, view: FeatureView) -> dict[str, ColumnStats]:
    columns = _reference_columns(reference, view)
    return {feature: reference.profile.columns[column] for feature, column in columns.items()}


def _window_us(window: Window) -> tuple[int | None, int | None]:
    start, end = window
    return (
        None if start is None else epoch_us(start),
        None if end is None else epoch_us(end),
    )


__all__ = ["DriftOutcome", "MaterializationValidation", "QualityService", "TableProfile"]
