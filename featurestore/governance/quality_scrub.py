"""Erasure in the quality history: the registry's validation results, statistics and drift
reports hold feature values (samples, observed aggregates, top values, quantiles, grids,
categories, drift bins), some of them the erased entity's.

A sample could be told apart, but an aggregate (a quantile, a most frequent value, a bin edge)
cannot be recomputed without one entity's rows: the data it was computed from is gone or not the
store's. So every value-bearing part of every record about a view keyed by the entity is
redacted (:mod:`featurestore.quality.redaction`), in every version of it, deleted views
included; in the statistics of saved datasets, the columns of those views. Counts, rates,
outcomes and drift metrics stay. A redacted record is not redacted again, and the check after an
erasure finds a record as residue when redacting it would still change it.

A saved dataset's statistics are its drift reference: the next drift check against it profiles
the (rewritten) dataset file again instead (:class:`~featurestore.quality.service.QualityService`).
"""

from __future__ import annotations

from collections.abc import Collection

from featurestore.governance.holdings import Removal
from featurestore.quality.history import DATASET_SUBJECT, VIEW_SUBJECT, QualityHistory
from featurestore.quality.redaction import (
    redact_drift_record,
    redact_statistics,
    redact_validation,
)

#: ``Removal.place`` of quality records.
QUALITY_PLACE = "quality"


def scrub_quality(
    history: QualityHistory, views: Collection[str], *, dry_run: bool
) -> list[Removal]:
    """Redact (``dry_run``: count) the values of ``views``'s features in every quality record;
    one :class:`Removal` per kind of record and subject, counting records."""
    erased = frozenset(views)

    def readable(view: str, feature: str) -> bool:
        return view not in erased

    found: list[Removal] = []

    def note(kind: str, subject: str, changed: int) -> None:
        if changed:
            found.append(Removal(QUALITY_PLACE, f"{kind} of {subject}", changed, subject))

    for view in sorted(erased):
        results = [
            redacted
            for result in history.validations(view)
            if (redacted := redact_validation(result, readable)) is not result
        ]
        stats = [
            scrubbed
            for stat in history.statistics(VIEW_SUBJECT, view)
            if (scrubbed := redact_statistics(stat, readable)) is not stat
        ]
        drifts = [
            cleaned
            for report in history.drift_reports(view)
            if (cleaned := redact_drift_record(report, readable)) != report
        ]
        if not dry_run:
            for result in results:
                history.replace_validation(result)
            for stat in stats:
                history.replace_statistics(stat)
            for report in drifts:
                history.replace_drift(report)
        note("validation results", view, len(results))
        note("statistics", view, len(stats))
        note("drift reports", view, len(drifts))
    by_dataset: dict[str, int] = {}
    for old in history.statistics(DATASET_SUBJECT, None):
        new = redact_statistics(old, readable)
        if new is old:
            continue
        if not dry_run:
            history.replace_statistics(new)
        by_dataset[old.subject] = by_dataset.get(old.subject, 0) + 1
    for dataset, changed in sorted(by_dataset.items()):
        note("statistics", f"dataset {dataset}", changed)
    return found
