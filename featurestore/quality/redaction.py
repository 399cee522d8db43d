"""Feature values out of quality records, for readers who may not see them and after erasures.

Validation results, statistics and drift reports describe data, and some of their parts *are*
data: a check's sample values and observed aggregate (``max 7.5``), a column's min, max, mean,
standard deviation, quantiles, top values, percentile grid and categories, a drift report's bins
(their edges and category labels). Redacting a feature removes exactly those parts and keeps
what carries no value: counts (rows, nulls, distinct, unexpected), rates, the check's arguments
and outcome, the drift metrics (PSI, KS, chi-square) and reasons. A redacted part says so
(``redacted: true``), so a reader can tell "withheld" from "empty".

Two callers decide which features to redact, with a :data:`ValueRights` predicate:

* the facade's quality operations, per reader: a feature whose ``read_offline`` the reader is
  denied (:mod:`featurestore.quality.operations`);
* erasure, per entity: every feature of a view keyed by the erased entity
  (:mod:`featurestore.governance.quality_scrub`), since an aggregate cannot be recomputed
  without one entity's rows.

Redaction is idempotent, and a record with nothing left to redact comes back equal to itself:
that is how erasure verifies a scrub.

    readable = lambda view, feature: feature != "ssn"
    redact_validation(result, readable).checks[0].samples   # [] for a check on ssn
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from featurestore.quality.drift import DriftReport, FeatureDrift
from featurestore.quality.expectations import describe_expectation
from featurestore.quality.history import StoredStatistics
from featurestore.quality.profile import ColumnStats
from featurestore.quality.result import CheckOutcome, ValidationResult
from featurestore.quality.validation import expectation_columns

__all__ = [
    "ValueRights",
    "redact_column",
    "redact_drift",
    "redact_drift_record",
    "redact_statistics",
    "redact_validation",
]

#: Whether the values of feature ``(view, feature)`` may be shown.
ValueRights = Callable[[str, str], bool]

#: What a check observes that is a count, not a value: kept when its values are withheld.
_COUNTS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "batches",
    "failed_batches",
)


# -- validation ----------------------------------------------------------------------------------


def redact_validation(result: ValidationResult, readable: ValueRights) -> ValidationResult:
    """``result`` without the values of the features ``readable`` refuses."""
    checks = tuple(_redact_check(check, result.view, readable) for check in result.checks)
    if all(new is old for new, old in zip(checks, result.checks, strict=True)):
        return result
    return replace(result, checks=checks)


def _redact_check(check: CheckOutcome, view: str, readable: ValueRights) -> CheckOutcome:
    # The quick checks (schema, null rate) observe types and counts only.
    if check.source != "expectation" or check.redacted:
        return check
    columns = expectation_columns(check.kwargs)
    if not columns and check.column is not None:
        columns = [check.column]
    if all(readable(view, column) for column in columns):
        return check
    observed = {key: value for key, value in check.observed.items() if key in _COUNTS}
    outcome = "passed" if check.success else "failed"
    if "unexpected_count" in observed:
        # A row-level message is counts and the check's own arguments: still worth reading.
        text = describe_expectation(check.check, check.kwargs, observed, [], check.success)
    else:
        text = f"{', '.join(columns)}: {check.check} {outcome}"
    return replace(
        check,
        observed=observed,
        samples=[],
        message=f"{text} (values withheld)",
        redacted=True,
    )


# -- statistics ----------------------------------------------------------------------------------


def redact_statistics(stats: StoredStatistics, readable: ValueRights) -> StoredStatistics:
    """``stats`` without the values of the columns whose feature ``readable`` refuses (a
    column that maps to no feature is refused too)."""
    columns: dict[str, ColumnStats] = {}
    for name, column in stats.profile.columns.items():
        held = stats.features.get(name)
        allowed = held is not None and readable(held["view"], held["feature"])
        columns[name] = column if allowed else redact_column(column)
    if all(columns[n] is c for n, c in stats.profile.columns.items()):
        return stats
    return replace(stats, profile=replace(stats.profile, columns=columns))


def redact_column(column: ColumnStats) -> ColumnStats:
    """The column's counts only (see :mod:`featurestore.quality.profile`)."""
    if column.redacted:
        return column
    return replace(
        column,
        min=None,
        max=None,
        mean=None,
        stddev=None,
        quantiles={},
        top_values=[],
        grid=[],
        cumulative=[],
        categories=[],
        probe_cumulative=None,
        probe_categories=None,
        redacted=True,
    )


# -- drift ---------------------------------------------------------------------------------------


def redact_drift(report: DriftReport, readable: ValueRights) -> DriftReport:
    """``report`` without the bins of the features ``readable`` refuses."""
    features = [
        f if f.redacted or readable(report.view, f.feature) else _redact_feature(f)
        for f in report.features
    ]
    if all(new is old for new, old in zip(features, report.features, strict=True)):
        return report
    return replace(report, features=features)


def _redact_feature(feature: FeatureDrift) -> FeatureDrift:
    return replace(feature, bins=[], redacted=True)


def redact_drift_record(record: Mapping[str, Any], readable: ValueRights) -> dict[str, Any]:
    """A stored drift report (:meth:`DriftReport.to_dict` plus ``id`` and ``at``) without the
    bins of the features ``readable`` refuses."""
    view = str(record["view"])
    features = []
    for feature in record.get("features", []):
        if feature.get("redacted") or readable(view, str(feature["feature"])):
            features.append(feature)
        else:
            features.append({**feature, "bins": [], "redacted": True})
    return {**record, "features": features}
