"""``Aggregation``: one windowed aggregate of a source column, a feature of an aggregated view."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from featurestore.aggregations.functions import FUNCTIONS, AggFunction, window_label
from featurestore.definitions.base import check_name
from featurestore.errors import DefinitionError
from featurestore.types import ValueType


class Aggregation:
    """A function of one source column over a sliding window ending at each instant::

        Aggregation(column="fare", function="sum", window=timedelta(hours=1))   # fare_sum_1h
        Aggregation(column="trip_id", function="count", window=None, name="trips_ever")
        Aggregation(column="fare", function="approx_percentile", window=timedelta(days=7),
                    percentile=0.95)
        Aggregation(column="rider_id", function="last_k", window=timedelta(days=1), k=10)

    ``window`` is a positive timedelta, or ``None`` for all history (lifetime). The feature is
    called ``name``, else ``{column}_{function}_{window}``. The functions and their results are
    listed in :mod:`featurestore.aggregations.functions`. The column's type is checked when the
    aggregation is put on a :class:`~featurestore.FeatureView` (which declares it).
    """

    def __init__(
        self,
        column: str,
        function: str,
        window: timedelta | None,
        name: str | None = None,
        **params: Any,
    ) -> None:
        self.column = check_name("aggregation column", column)
        label = f"aggregation {function!r} of {column!r}"
        if function not in FUNCTIONS:
            raise DefinitionError(
                f"{label}: unknown function {function!r}; use one of {', '.join(FUNCTIONS)}"
            )
        self.function = function
        if window is not None and not isinstance(window, timedelta):
            raise DefinitionError(
                f"{label}: window must be a datetime.timedelta or None (lifetime), got {window!r}"
            )
        if window is not None and window <= timedelta(0):
            raise DefinitionError(f"{label}: window must be positive, got {window}")
        self.window = window
        self.params = self._check_params(label, params)
        self.name = check_name("aggregation", name) if name is not None else self.default_name

    def _check_params(self, label: str, params: Mapping[str, Any]) -> dict[str, Any]:
        allowed = self.spec_of_function.params
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameter"
            raise DefinitionError(
                f"{label}: unexpected parameter {unknown[0]!r} ({self.function} {takes})"
            )
        for param, check in allowed.items():
            if param not in params:
                raise DefinitionError(f"{label}: {self.function} needs {param}=..., it is missing")
            problem = check(params[param])
            if problem:
                raise DefinitionError(f"{label}: {problem}")
        return dict(sorted(params.items()))

    @property
    def spec_of_function(self) -> AggFunction:
        """The function's contract (accepted columns, result type, empty value)."""
        return FUNCTIONS[self.function]

    @property
    def default_name(self) -> str:
        return f"{self.column}_{self.function}_{window_label(self.window)}"

    @property
    def window_us(self) -> int | None:
        """The window in whole microseconds (None for lifetime)."""
        return None if self.window is None else self.window // timedelta(microseconds=1)

    @property
    def percentile(self) -> float:
        return float(self.params["percentile"])

    @property
    def k(self) -> int:
        return int(self.params["k"])

    @property
    def empty(self) -> int | None:
        """The value of a window with no non-null input."""
        return self.spec_of_function.empty

    def check_column_type(self, view_label: str, dtype: ValueType) -> ValueType:
        """The feature type this aggregation produces from a column of type ``dtype``."""
        contract = self.spec_of_function
        if not contract.accepts_type(dtype):
            raise DefinitionError(
                f"{view_label}, aggregation {self.name!r}: {self.function} needs {contract.accepts}, "
                f"but column {self.column!r} is {dtype.name}"
            )
        return contract.result(dtype)

    def spec(self) -> dict[str, Any]:
        window = None if self.window is None else self.window.total_seconds()
        return {
            "name": self.name,
            "column": self.column,
            "function": self.function,
            "window_seconds": window,
            "params": dict(self.params),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Aggregation:
        seconds = spec["window_seconds"]
        return cls(
            spec["column"],
            spec["function"],
            None if seconds is None else timedelta(seconds=seconds),
            name=spec["name"],
            **spec.get("params", {}),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aggregation) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash((self.name, self.column, self.function, self.window))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return (
            f"Aggregation(column={self.column!r}, function={self.function!r}, "
            f"window={self.window!r}, name={self.name!r}{extra})"
        )
