"""What a validation run found: one :class:`CheckOutcome` per check, gathered in a
:class:`ValidationResult` that the registry stores as JSON.

Both round-trip through ``to_dict`` / ``from_dict`` exactly, and every value they hold is
JSON-safe (see :func:`json_safe`), so a stored result reads back equal to the one recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

TRIGGERS = ("materialize", "push", "on_demand")
SOURCES = ("quick", "expectation")


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: NaN and NaT become ``None``, infinities the strings
    ``"Infinity"`` / ``"-Infinity"``, dates and times ISO strings, NumPy scalars and arrays
    Python values, bytes base64 text, tuples and sets lists; anything else its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            # Strict JSON (and PostgreSQL's JSON type) has no infinity token.
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, dt.datetime | dt.date | dt.time):
        # pandas.NaT is a datetime that is not equal to itself.
        return None if value != value else value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class CheckOutcome:
    """The outcome of one check over every batch a validation saw.

    ``check`` is ``"schema"``, ``"null_rate"``, ``"expectation_suite"`` (a suite that could not
    run in strict mode) or a Great Expectations expectation type; ``source`` is ``"quick"``
    (the built-in checks) or ``"expectation"`` (the view's suite). ``kwargs`` are the check's
    arguments, ``observed`` what it measured (``element_count``, ``unexpected_count``,
    ``unexpected_percent``, ``observed_value``, ``null_rate`` ...), ``samples`` up to ten
    distinct unexpected values and ``message`` one readable line::

        conv_rate: 1,000 of 4,000 values (25.0%) not between 0 and 1; e.g. 2.0, 7.5

    ``redacted`` marks an outcome whose feature values (samples, an observed aggregate) were
    withheld from its reader or scrubbed by an erasure (see :mod:`featurestore.quality.redaction`).
    """

    check: str
    column: str | None
    success: bool
    source: str
    kwargs: dict[str, Any]
    observed: dict[str, Any]
    samples: list[Any]
    message: str
    redacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, read back by :meth:`from_dict`."""
        return {
            "check": self.check,
            "column": self.column,
            "success": self.success,
            "source": self.source,
            "kwargs": json_safe(self.kwargs),
            "observed": json_safe(self.observed),
            "samples": json_safe(self.samples),
            "message": self.message,
            "redacted": self.redacted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckOutcome:
        """Rebuild an outcome from :meth:`to_dict` output."""
        return cls(
            check=data["check"],
            column=data.get("column"),
            success=bool(data["success"]),
            source=data["source"],
            kwargs=dict(data.get("kwargs") or {}),
            observed=dict(data.get("observed") or {}),
            samples=list(data.get("samples") or []),
            message=data.get("message", ""),
            redacted=bool(data.get("redacted", False)),
        )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@dataclass(frozen=True)
class ValidationResult:
    """One validation of a view's rows: at materialization, on push or on demand.

    ``success`` holds when every check passed. A suite that could not run (Great Expectations
    not installed) is noted in ``skipped``; in ``warn`` mode that alone does not fail the
    result, in ``strict`` mode the validator records it as a failed ``expectation_suite``
    check, so the batch is rejected rather than written unchecked. With no rows there is
    nothing to reject: the result passes with ``rows == 0``.

    ``id`` is set by the registry when it stores the result (``dataclasses.replace``).
    ``count`` is how many validations the record stands for: passing pushes are recorded
    together (see :mod:`featurestore.quality.push_tally`), everything else one by one.
    """

    view: str
    version: int | None
    trigger: str
    mode: str
    rows: int
    checks: tuple[CheckOutcome, ...]
    started_at: dt.datetime
    seconds: float
    suite: str | None = None
    skipped: str | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    id: int | None = None
    count: int = 1

    @property
    def success(self) -> bool:
        """Whether every check passed."""
        return all(check.success for check in self.checks)

    @property
    def failures(self) -> list[CheckOutcome]:
        """The checks that failed, in the order they ran."""
        return [check for check in self.checks if not check.success]

    def summary(self) -> str:
        """One line, e.g. ``driver_stats v2 (materialize, strict): 2 of 5 checks failed on
        10,000 rows``."""
        version = "" if self.version is None else f" v{self.version}"
        head = f"{self.view}{version} ({self.trigger}, {self.mode})"
        failed = len(self.failures)
        if self.rows == 0 and not failed:
            text = f"{head}: no rows to validate, nothing to reject"
        elif failed:
            text = f"{head}: {failed:,} of {_count(len(self.checks), 'check')} failed on {_count(self.rows, 'row')}"
        else:
            text = (
                f"{head}: {_count(len(self.checks), 'check')} passed on {_count(self.rows, 'row')}"
            )
        if self.count > 1:
            text += f" (in {self.count:,} batches, recorded together)"
        if self.skipped and not any(c.check == "expectation_suite" for c in self.failures):
            text += f"; {self.skipped}"
        return text

    def describe_failures(self) -> str:
        """One line per failed check, with sample values; ``"no failed checks"`` when none."""
        failures = self.failures
        if not failures:
            return "no failed checks"
        return "\n".join(f"- [{check.check}] {check.message}" for check in failures)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (with the derived ``success``), read back by :meth:`from_dict`."""
        return {
            "id": self.id,
            "view": self.view,
            "version": self.version,
            "trigger": self.trigger,
            "mode": self.mode,
            "rows": self.rows,
            "success": self.success,
            "suite": self.suite,
            "skipped": self.skipped,
            "started_at": self.started_at.isoformat(),
            "seconds": self.seconds,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "checks": [check.to_dict() for check in self.checks],
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResult:
        """Rebuild a result from :meth:`to_dict` output."""
        return cls(
            view=data["view"],
            version=data.get("version"),
            trigger=data["trigger"],
            mode=data["mode"],
            rows=int(data["rows"]),
            checks=tuple(CheckOutcome.from_dict(c) for c in data.get("checks", ())),
            started_at=dt.datetime.fromisoformat(data["started_at"]),
            seconds=float(data["seconds"]),
            suite=data.get("suite"),
            skipped=data.get("skipped"),
            window_start=_from_iso(data.get("window_start")),
            window_end=_from_iso(data.get("window_end")),
            id=data.get("id"),
            count=int(data.get("count", 1)),
        )


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)
