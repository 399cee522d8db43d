"""Validating a view's rows batch by batch: the quick checks always, the view's expectation
suite when it has one, merged into one :class:`ValidationResult`.

    validator = ViewValidator(view, version=2, trigger="materialize", defaults=QualityDefaults())
    for batch in batches:
        validator.add(batch)
    result = validator.finish()
    validator.check(result)          # strict mode: ValidationFailedError when it failed
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from featurestore.errors import (
    ConfigError,
    DefinitionError,
    ExtraNotInstalledError,
    QualityError,
    ValidationFailedError,
)
from featurestore.quality.checks import merge_quick, quick_checks, schema_outcome
from featurestore.quality.expectations import INSTALL_HINT, SuiteRunner, merge_expectation
from featurestore.quality.result import TRIGGERS, CheckOutcome, ValidationResult
from featurestore.quality.validation import MODES

if TYPE_CHECKING:
    # Only for annotations: feature_view imports the quality package for Validation.
    from featurestore.definitions.feature_view import FeatureView

__all__ = ["QualityDefaults", "ViewValidator"]

_Key = tuple[str, str, str | None] | tuple[str, int]


@dataclass(frozen=True)
class QualityDefaults:
    """Project-wide validation settings (``quality:`` in featurestore.yaml) for views whose
    :class:`~featurestore.quality.validation.Validation` leaves them unset, or that have none."""

    mode: str = "warn"
    max_null_rate: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"quality: mode must be 'strict' or 'warn', got {self.mode!r}")
        rate = self.max_null_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(
                f"quality: max_null_rate must be a fraction between 0 and 1, got {rate!r}"
            )


class ViewValidator:
    """Validates a view's rows batch by batch and merges the outcomes.

    Batches hold the view's feature columns in their declared Arrow types (join keys and
    timestamps may be there too; they are not checked). The quick checks count over all rows;
    the suite runs on each batch as it comes, so its aggregate expectations hold per batch.
    Without Great Expectations installed, a suite is skipped in ``warn`` mode (the result says
    why) and fails the result in ``strict`` mode.

    ``events=True``: the rows are an aggregated view's *events* (a push), not its values. They
    get the schema check of the source columns the view declares; the null-rate limit and the
    suite are about the aggregated values, which are validated over a window on demand (see
    :mod:`featurestore.offline.duckdb.agg_instants`).
    """

    def __init__(
        self,
        view: FeatureView,
        *,
        version: int | None,
        trigger: str,
        defaults: QualityDefaults,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        events: bool = False,
    ) -> None:
        if trigger not in TRIGGERS:
            raise QualityError(
                f"{view.label}: unknown validation trigger {trigger!r}; use one of {list(TRIGGERS)}"
            )
        validation = view.validation
        if validation is not None and validation.suite_json is None and validation.suite_file:
            raise DefinitionError(
                f"{view.label}: expectation suite file {validation.suite_file!r} is not loaded; "
                "resolve the validation against the feature repository first "
                "(Validation.resolve(repo_path), which apply does)"
            )
        if validation is not None:
            validation.check_columns(view.label, view.feature_names)
        self.view = view
        self.version = version
        self.trigger = trigger
        self.window_start, self.window_end = window_start, window_end
        self.mode = validation.mode if validation is not None else defaults.mode
        limit = None if validation is None else validation.max_null_rate
        self.max_null_rate = defaults.max_null_rate if limit is None else limit
        self._suite = None if validation is None or events else validation.suite_json
        self._runner: SuiteRunner | None = None
        self._skipped: str | None = None
        self._events = events
        self._declared = {f.name: f.dtype for f in (view.columns if events else view.features)}
        self._outcomes: dict[_Key, CheckOutcome] = {}
        self._rows = 0
        self._seconds = 0.0
        self._started_at = datetime.now(UTC)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Validate one batch now and fold its outcomes into the result. An empty batch has
        nothing to check."""
        started = time.perf_counter()
        try:
            if batch.num_rows == 0:
                return
            self._rows += batch.num_rows
            outcomes = (
                [schema_outcome(batch, name, dtype) for name, dtype in self._declared.items()]
                if self._events
                else quick_checks(batch, self._declared, self.max_null_rate)
            )
            for outcome in outcomes:
                self._fold(("quick", outcome.check, outcome.column), outcome)
            runner = self._suite_runner()
            if runner is not None:
                for position, outcome in runner.run(batch, list(self._declared)):
                    self._fold(("expectation", position), outcome)
        finally:
            self._seconds += time.perf_counter() - started

    def _suite_runner(self) -> SuiteRunner | None:
        if self._suite is None or self._skipped is not None:
            return None
        if self._runner is None:
            try:
                self._runner = SuiteRunner(self._suite, owner=self.view.label)
            except ExtraNotInstalledError:
                self._skipped = (
                    f"expectation suite {self._suite['name']!r} not run: Great Expectations is "
                    f"not installed ({INSTALL_HINT})"
                )
                return None
        return self._runner

    def _fold(self, key: _Key, outcome: CheckOutcome) -> None:
        previous = self._outcomes.get(key)
        if previous is None:
            self._outcomes[key] = outcome
        elif outcome.source == "quick":
            self._outcomes[key] = merge_quick(previous, outcome)
        else:
            self._outcomes[key] = merge_expectation(previous, outcome)

    def finish(self) -> ValidationResult:
        """The merged result of every batch added so far. It changes nothing, so a caller
        that writes batch by batch can call it (and :meth:`check`) after each :meth:`add` to
        reject a strict batch before writing it."""
        checks = list(self._outcomes.values())
        suite_name = None if self._suite is None else str(self._suite["name"])
        if self._skipped is not None and self.mode == "strict":
            # Strict means nothing unchecked is written: a suite that cannot run rejects.
            checks.append(
                CheckOutcome(
                    "expectation_suite",
                    None,
                    False,
                    "expectation",
                    {"suite": suite_name},
                    {},
                    [],
                    f"{self._skipped}; strict mode rejects rows it cannot check",
                )
            )
        return ValidationResult(
            view=self.view.name,
            version=self.version,
            trigger=self.trigger,
            mode=self.mode,
            rows=self._rows,
            checks=tuple(checks),
            started_at=self._started_at,
            seconds=self._seconds,
            suite=suite_name if self._runner is not None else None,
            skipped=self._skipped,
            window_start=self.window_start,
            window_end=self.window_end,
        )

    def check(self, result: ValidationResult) -> None:
        """Raise ValidationFailedError (carrying ``result``) when the mode is strict and the
        result failed; its message is the summary and every failed check with samples."""
        if self.mode == "strict" and not result.success:
            raise ValidationFailedError(
                f"{result.summary()}; nothing was written\n{result.describe_failures()}", result
            )
