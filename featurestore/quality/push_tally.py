"""Passing push validations, recorded together.

A service that takes thousands of pushes a second must not write a registry row (and a lineage
edge) for each one that passed. Each push is still validated on its own, before anything is
written; a push that **fails** is recorded at once, with its samples. Passing pushes of a view
version are folded into one pending result (rows, null counts and expectation counts added up,
``count`` the pushes) that is recorded every ``flush_seconds`` (``quality.push_flush_seconds``
in ``featurestore.yaml``; 0 records each push) and when the store closes, or before the
validation history is read.

    tally = PushTally(flush_seconds=10.0)
    tally.add(view, result)          # a passing push result
    for view, merged in tally.drain(force=False):
        record(view, merged)
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from featurestore.definitions.feature_view import FeatureView
from featurestore.quality.checks import merge_quick
from featurestore.quality.expectations import merge_expectation
from featurestore.quality.result import CheckOutcome, ValidationResult

#: How often passing push validations are written, by default.
FLUSH_SECONDS = 10.0

_Key = tuple[str, int | None, str, tuple[tuple[str, str, str | None], ...]]


class PushTally:
    """Pending passing push results, per view version and set of checks."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._pending: dict[_Key, tuple[FeatureView, ValidationResult]] = {}
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def add(self, view: FeatureView, result: ValidationResult) -> None:
        """Fold a passing push's ``result`` into its view version's pending result."""
        shape = tuple((c.source, c.check, c.column) for c in result.checks)
        key = (result.view, result.version, result.mode, shape)
        with self._lock:
            pending = self._pending.get(key)
            merged = result if pending is None else _merge(pending[1], result)
            self._pending[key] = (view, merged)

    def drain(self, *, force: bool) -> list[tuple[FeatureView, ValidationResult]]:
        """The pending results to record, when ``flush_seconds`` passed or ``force``; they are
        removed from the tally."""
        with self._lock:
            if not self._pending or (
                not force and time.monotonic() - self._since < self.flush_seconds
            ):
                return []
            drained = list(self._pending.values())
            self._pending.clear()
            self._since = time.monotonic()
        return drained


def _merge(first: ValidationResult, second: ValidationResult) -> ValidationResult:
    return replace(
        first,
        rows=first.rows + second.rows,
        checks=tuple(_merge_check(a, b) for a, b in zip(first.checks, second.checks, strict=True)),
        seconds=first.seconds + second.seconds,
        count=first.count + second.count,
        suite=first.suite or second.suite,
        skipped=first.skipped or second.skipped,
    )


def _merge_check(first: CheckOutcome, second: CheckOutcome) -> CheckOutcome:
    if first.source == "quick":
        return merge_quick(first, second)
    return merge_expectation(first, second)
