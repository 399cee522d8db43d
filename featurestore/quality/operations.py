"""The facade's quality operations: :class:`FeatureStore` mixes this class in, so the SDK, the
CLI and the REST service reach validation, statistics and drift through the one facade, with
its access checks and audit.

    store.validate("driver_stats", start, end)            # on demand; recorded with history
    store.validation_history("driver_stats")
    store.statistics("driver_stats", start, end)          # stored per window
    store.drift("driver_stats", current_window=(c, d), reference_dataset="churn_2026_03")

Who sees what: running a validation, statistics or a drift check reads the view's rows, so it
needs ``read_offline`` on every feature of the view. Reading the recorded history
(:meth:`~QualityOperations.validation_history`, :meth:`~QualityOperations.statistics_history`,
:meth:`~QualityOperations.drift_history`) needs ``describe`` on the project; the values in it
(samples, min / max / quantiles / top values, drift bins) are shown per feature only to a
reader with ``read_offline`` on that feature, and withheld from everyone else
(:mod:`featurestore.quality.redaction`). Every record returned here goes through that filter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import ObjectNotFoundError, QualityError
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import feature_targets, project_target
from featurestore.governance.guard import PrincipalLike
from featurestore.governance.retention import epoch_us
from featurestore.materialize.materializer import to_utc
from featurestore.offline.base import (
    DatasetSaver,
    FeatureRequest,
    LatestWindow,
    RetrievalJob,
    SavedDataset,
)
from featurestore.push.frame import PushFrame
from featurestore.push.online_write import WriteValidation
from featurestore.push.pusher import PushTarget, PushValidation, view_features
from featurestore.quality.drift import DriftThresholds
from featurestore.quality.history import (
    DATASET_SUBJECT,
    VIEW_SUBJECT,
    QualityHistory,
    StoredStatistics,
)
from featurestore.quality.redaction import (
    ValueRights,
    redact_drift,
    redact_drift_record,
    redact_statistics,
    redact_validation,
)
from featurestore.quality.reporting import AuditSink, QualityReporting
from featurestore.quality.result import ValidationResult
from featurestore.quality.service import (
    DriftOutcome,
    MaterializationValidation,
    QualityService,
)
from featurestore.quality.windows import Window
from featurestore.types import ValueType


class QualityOperations(FacadeBase):
    """Validation, statistics and drift on the facade (see the module docstring)."""

    _quality: QualityService | None = None

    @property
    def quality(self) -> QualityService:
        """The quality layer (validation, statistics, drift), opened on first use."""
        if self._quality is None:
            history = QualityHistory(self.registry, self.project)
            reporting = QualityReporting(
                self.project, history, self.lineage.graph, self.lineage.emitter
            )
            self._quality = QualityService(self.config, history, reporting, lambda: self.offline)
        return self._quality

    # -- validation ----------------------------------------------------------------------------

    def validate(
        self,
        view: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        principal: PrincipalLike = None,
    ) -> ValidationResult:
        """Validate the source rows of ``view`` with event time in ``[start, end]`` (either may
        be open) against its suite and the quick checks; the result is recorded in the
        validation history. Needs ``read_offline`` on the view's features."""
        found, version = self._readable_view(view, principal)
        window = _window(start, end)
        return self.quality.validate_window(
            found,
            version,
            window,
            self._audit_sink(principal),
            not_before_us=self._cutoff(found),
        )

    def validation_history(
        self,
        view: str | None = None,
        *,
        trigger: str | None = None,
        failed_only: bool = False,
        limit: int | None = None,
        principal: PrincipalLike = None,
    ) -> list[ValidationResult]:
        """Recorded validations (of ``view``, else all), oldest first; the newest ``limit``.
        Needs ``describe``; sample values are shown only for features the principal may
        ``read_offline``."""
        self._may_describe(principal)
        self.quality.flush_pushes()
        found = self.quality.history.validations(
            view, trigger=trigger, failed_only=failed_only, limit=limit
        )
        if view is not None and not found:
            # An unknown name is an error (a typo should not read as "never validated").
            self.registry.get(self.project, "feature_view", view)
        readable = self._value_rights(principal)
        return [redact_validation(result, readable) for result in found]

    def _flush_held_records(self) -> None:
        if self._quality is not None:
            self._quality.flush_pushes()

    def _materialization_validation(
        self, principal: PrincipalLike
    ) -> Callable[[FeatureView, int, LatestWindow], MaterializationValidation]:
        """The materializer's validation hook; a strict failure it raises shows the principal
        only the values it may read (``materialize`` does not imply ``read_offline``)."""
        readable = self._value_rights(principal)
        return self.quality.materialization(
            self._audit_sink(principal), lambda result: redact_validation(result, readable)
        )

    def _push_validation(self, principal: PrincipalLike) -> PushValidation:
        audit = self._audit_sink(principal)

        def validate(target: PushTarget, frame: PushFrame) -> None:
            self.quality.validate_push(target.views, lambda view: view_features(view, frame), audit)

        return validate

    def _write_validation(self, principal: PrincipalLike) -> WriteValidation:
        """Validation of rows written straight online: the same checks as a push's."""
        audit = self._audit_sink(principal)

        def validate(view: FeatureView, version: int, features: pa.Table) -> None:
            self.quality.validate_push([(view, version)], lambda _: features, audit)

        return validate

    # -- statistics ----------------------------------------------------------------------------

    def statistics(
        self,
        view: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        principal: PrincipalLike = None,
    ) -> StoredStatistics:
        """Per-feature statistics of the view's source rows in ``[start, end]`` (count, null
        rate, min, max, mean, standard deviation, quantiles, top values), computed in the
        offline engine and recorded for this window. Needs ``read_offline``."""
        found, version = self._readable_view(view, principal)
        return self.quality.view_statistics(
            found,
            version,
            _window(start, end),
            self._audit_sink(principal),
            not_before_us=self._cutoff(found),
        )

    def statistics_history(
        self,
        name: str,
        *,
        dataset: bool = False,
        limit: int | None = None,
        principal: PrincipalLike = None,
    ) -> list[StoredStatistics]:
        """Recorded statistics of a view (per window) or of a saved dataset, oldest first.
        Needs ``describe``; a feature the principal may not ``read_offline`` keeps only its
        counts (rows, nulls, distinct)."""
        self._may_describe(principal)
        kind = DATASET_SUBJECT if dataset else VIEW_SUBJECT
        readable = self._value_rights(principal)
        found = self.quality.history.statistics(kind, name, limit=limit)
        return [redact_statistics(stats, readable) for stats in found]

    def _profiling_saver(
        self, saver: DatasetSaver, requests: Sequence[FeatureRequest], principal: PrincipalLike
    ) -> DatasetSaver:
        """``saver``, then the saved frame's statistics recorded as a drift reference."""
        columns = _dataset_columns(requests)
        audit = self._audit_sink(principal)

        def save(job: RetrievalJob, name: str, *, overwrite: bool) -> SavedDataset:
            saved = saver(job, name, overwrite=overwrite)
            self.quality.dataset_statistics(saved, columns, audit)
            return saved

        return save

    # -- drift ---------------------------------------------------------------------------------

    def drift(
        self,
        view: str,
        *,
        current_window: tuple[datetime | None, datetime | None],
        reference_dataset: str | None = None,
        reference_window: tuple[datetime | None, datetime | None] | None = None,
        thresholds: DriftThresholds | None = None,
        principal: PrincipalLike = None,
    ) -> DriftOutcome:
        """Compare the distribution of each feature of ``view`` in ``current_window`` with a
        saved training dataset (its statistics at save time) or with the view's rows in
        ``reference_window``: PSI and the KS statistic for numeric features, PSI and a
        chi-square test for categorical ones, against ``thresholds`` (default: the ``quality``
        section of ``featurestore.yaml``). The outcome is recorded; ``.report.drifted`` says
        whether any feature drifted. Needs ``read_offline`` on the view's features."""
        found, version = self._readable_view(view, principal)
        if (reference_dataset is None) == (reference_window is None):
            raise QualityError(
                f"drift of {found.label}: pass reference_dataset=NAME or "
                "reference_window=(start, end), not both"
            )
        saved = None
        columns = None
        if reference_dataset is not None:
            saved = self.lineage.datasets.get(reference_dataset)
            columns = self._saved_columns(saved)
        outcome = self.quality.drift(
            found,
            version,
            _window(*current_window),
            self._audit_sink(principal),
            reference_dataset=saved,
            dataset_columns=columns,
            reference_window=None if reference_window is None else _window(*reference_window),
            not_before_us=self._cutoff(found),
            thresholds=thresholds,
        )
        # The caller may read every feature of the view, but a saved dataset's statistics (the
        # reference) also profile the other views' columns it holds.
        readable = self._value_rights(principal)
        return replace(
            outcome,
            report=redact_drift(outcome.report, readable),
            reference=redact_statistics(outcome.reference, readable),
            current=redact_statistics(outcome.current, readable),
        )

    def drift_history(
        self, view: str, *, limit: int | None = None, principal: PrincipalLike = None
    ) -> list[dict[str, Any]]:
        """Recorded drift reports of ``view`` (dictionaries), oldest first. Needs
        ``describe``; the bins of a feature the principal may not ``read_offline`` are
        withheld."""
        self._may_describe(principal)
        readable = self._value_rights(principal)
        found = self.quality.history.drift_reports(view, limit=limit)
        return [redact_drift_record(record, readable) for record in found]

    def _saved_columns(self, saved: SavedDataset) -> dict[str, tuple[str, str, ValueType]]:
        """A saved dataset's feature columns: column -> (view, feature, declared type), from
        the view versions it was built with."""
        columns: dict[str, tuple[str, str, ValueType]] = {}
        for name, version in saved.views.items():
            view = self.registry.get(self.project, "feature_view", name, version)
            assert isinstance(view, FeatureView)
            for feature in view.features:
                for column in (f"{name}__{feature.name}", feature.name):
                    if column in saved.columns and column not in columns:
                        columns[column] = (name, feature.name, feature.dtype)
                        break
        return columns

    # -- helpers -------------------------------------------------------------------------------

    def _readable_view(self, name: str, principal: PrincipalLike) -> tuple[FeatureView, int]:
        view = self.registry.get(self.project, "feature_view", name)
        assert isinstance(view, FeatureView)
        guard = self.guard
        guard.require(
            guard.principal(principal), "read_offline", feature_targets(self.project, view)
        )
        return view, self.registry.current_version(self.project, "feature_view", name)

    def _value_rights(self, principal: PrincipalLike) -> ValueRights:
        """Whether ``principal`` may see the values of a feature: ``read_offline`` on it, as
        the view tags it (its current definition, else the newest older or deleted version
        declaring the feature). A feature no version declares is refused."""
        guard = self.guard
        who = guard.principal(principal)
        if not guard.access.enforced:
            return _everything
        definitions: dict[tuple[str, bool], list[FeatureView]] = {}
        decided: dict[tuple[str, str], bool] = {}

        def declaring(view: str, feature: str) -> FeatureView | None:
            # The current definition first; the stored versions only when it lacks the feature.
            for older in (False, True):
                if (view, older) not in definitions:
                    definitions[view, older] = self._definitions(view, older=older)
                for definition in definitions[view, older]:
                    if feature in definition.feature_names:
                        return definition
            return None

        def readable(view: str, feature: str) -> bool:
            key = (view, feature)
            if key not in decided:
                found = declaring(view, feature)
                decided[key] = found is not None and guard.allowed(
                    who, "read_offline", feature_targets(self.project, found, [feature])
                )
            return decided[key]

        return readable

    def _definitions(self, view: str, *, older: bool) -> list[FeatureView]:
        """The current definition of ``view`` (none when deleted), or (``older``) every stored
        version, newest first."""
        try:
            if older:  # every version in one read, not one query per version
                stored = self.registry.get_versions(self.project, "feature_view", view)
                definitions = [stored[v] for v in sorted(stored, reverse=True)]
            else:
                definitions = [self.registry.get(self.project, "feature_view", view)]
        except ObjectNotFoundError:
            return []
        return [d for d in definitions if isinstance(d, FeatureView)]

    def _may_describe(self, principal: PrincipalLike) -> None:
        guard = self.guard
        guard.require(guard.principal(principal), "describe", [project_target(self.project)])

    def _audit_sink(self, principal: PrincipalLike) -> AuditSink:
        guard = self.guard
        who = guard.principal(principal)

        def record(action: str, resource: str, outcome: str, detail: Mapping[str, Any]) -> None:
            guard.record(who, action, resource, outcome, detail)

        return record

    def _cutoff(self, view: FeatureView) -> int | None:
        return self.retention.cutoff_us(view, epoch_us(datetime.now(timezone.utc)))


def _everything(view: str, feature: str) -> bool:
    return True


def _window(start: datetime | None, end: datetime | None) -> Window:
    low = None if start is None else to_utc(start, "start")
    high = None if end is None else to_utc(end, "end")
    if low is not None and high is not None and low > high:
        raise QualityError(f"window start {low.isoformat()} is after its end {high.isoformat()}")
    return (low, high)


def _dataset_columns(
    requests: Sequence[FeatureRequest],
) -> dict[str, tuple[str, str, ValueType]]:
    return {
        output: (r.view.name, feature, r.view.feature(feature).dtype)
        for r in requests
        for feature, output in zip(r.features, r.output_names, strict=True)
    }
