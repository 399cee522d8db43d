"""Running an on-demand view's function over a batch (offline, large lookups) or one row.

Offline and online go through the same two doors, so both see the same input values and give
the same outputs:

* ``mode="pandas"``: inputs become an Arrow table with the declared types, then a DataFrame the
  same way a retrieval's ``to_pandas`` makes one (integers and booleans as pandas' nullable
  dtypes, floats with NaN for null, strings as objects); the returned columns are cast to the
  declared types with Arrow (NaN becomes null).
* ``mode="python"``: each row is a dict of plain Python values; each returned value is coerced
  to its declared type by :func:`coercer` (NaN becomes None, Float32 is rounded as Arrow stores
  it), and offline the coerced values make the Arrow column.

Whatever goes wrong (the function raises, misses or adds a column, returns a value of the wrong
type or a different number of rows) is a :class:`TransformationError` naming the view, its version
and the problem.
"""

from __future__ import annotations

import math
import numbers
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import EntityFrameError, TransformationError
from featurestore.types import Bool, Float32, Float64, Int32, Int64, String, ValueType

_NULLABLE: dict[pa.DataType, Any] = {
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
_FLOAT32 = struct.Struct("f")
_INT32 = 2**31


class Transform:
    """One version of an on-demand view, ready to run (the function is loaded once)."""

    def __init__(self, view: OnDemandFeatureView, version: int) -> None:
        self.view = view
        self.version = version
        self.label = f"{view.label} v{version}"
        self.mode = view.mode
        self.function = view.function()
        self.inputs: dict[str, ValueType] = dict(view.inputs)
        self.input_types = pa.schema([(n, t.to_arrow()) for n, t in self.inputs.items()])
        self.outputs = [f.name for f in view.schema]
        self.output_types = [f.dtype for f in view.schema]
        self._coercers = [coercer(t) for t in self.output_types]
        self._input_coercers = {n: coercer(t) for n, t in self.inputs.items()}

    # -- batches -------------------------------------------------------------------------------

    def run_table(self, table: pa.Table | pa.RecordBatch) -> list[pa.Array]:
        """The output columns for ``table`` (its columns: the inputs, cast to their types)."""
        if self.mode == "python":
            rows = table.to_pylist()
            values = [self.run_row(row) for row in rows]
            return [
                pa.array([v[i] for v in values], type=t.to_arrow())
                for i, t in enumerate(self.output_types)
            ]
        frame = _frame(table)
        result = self._call(frame)
        return self._check_frame(result, table.num_rows)

    def run_columns(self, columns: Mapping[str, Sequence[Any]], rows: int) -> list[list[Any]]:
        """Online: output values per output column for input columns of plain values."""
        if self.mode == "python":
            coerce = self._input_coercers
            names = list(self.inputs)
            try:
                inputs = [
                    {n: coerce[n](columns[n][i], n, self.label) for n in names} for i in range(rows)
                ]
            except TransformationError as exc:  # looked-up values fit: a request value does not
                raise EntityFrameError(f"request value: {exc}") from None
            per_row = [self.run_row(row) for row in inputs]
            return [[row[j] for row in per_row] for j in range(len(self.outputs))]
        table = self.input_table(columns)
        return [array.to_pylist() for array in self.run_table(table)]

    def input_table(self, columns: Mapping[str, Sequence[Any]]) -> pa.Table:
        """Input values as an Arrow table of the declared types (a wrong type is an error)."""
        arrays = []
        for name, dtype in self.inputs.items():
            try:
                arrays.append(pa.array(columns[name], type=dtype.to_arrow(), from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise EntityFrameError(
                    f"{self.label}: input {name!r} does not fit its type {dtype.name}: {exc}"
                ) from None
        return pa.Table.from_arrays(arrays, schema=self.input_types)

    # -- one row -------------------------------------------------------------------------------

    def run_row(self, row: dict[str, Any]) -> list[Any]:
        """``mode="python"``: the coerced outputs for one row of plain values."""
        result = self._call(row)
        if not isinstance(result, dict):
            raise TransformationError(
                f"{self.label}: the function must return a dict of {self.outputs}, "
                f"got {type(result).__name__}"
            )
        if len(result) != len(self.outputs) or any(name not in result for name in self.outputs):
            self._wrong_columns(list(result))
        label = self.label
        return [
            coerce(result[name], name, label)
            for name, coerce in zip(self.outputs, self._coercers, strict=True)
        ]

    # -- checks --------------------------------------------------------------------------------

    def _call(self, argument: Any) -> Any:
        try:
            return self.function(argument)
        except Exception as exc:  # any failure of user code is reported the same way
            raise TransformationError(
                f"{self.label}: the function raised {type(exc).__name__}: {exc}"
            ) from exc

    def _check_frame(self, result: Any, rows: int) -> list[pa.Array]:
        if not isinstance(result, pd.DataFrame):
            raise TransformationError(
                f"{self.label}: the function must return a pandas DataFrame with columns "
                f"{self.outputs}, got {type(result).__name__}"
            )
        if list(result.columns) != self.outputs and sorted(map(str, result.columns)) != sorted(
            self.outputs
        ):
            self._wrong_columns([str(c) for c in result.columns])
        if len(result) != rows:
            raise TransformationError(
                f"{self.label}: the function returned {len(result)} rows for {rows} input rows; "
                "it must return one row per input row, in order"
            )
        arrays = []
        for name, dtype in zip(self.outputs, self.output_types, strict=True):
            column = result[name]
            try:
                arrays.append(pa.array(column, type=dtype.to_arrow(), from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
                raise TransformationError(
                    f"{self.label}: column {name!r} ({column.dtype}) does not fit its declared "
                    f"type {dtype.name}: {exc}"
                ) from None
        return arrays

    def _wrong_columns(self, got: list[str]) -> None:
        missing = [n for n in self.outputs if n not in got]
        extra = [n for n in got if n not in self.outputs]
        raise TransformationError(
            f"{self.label}: the function must return exactly the schema's columns "
            f"{self.outputs}; missing {missing}, unexpected {extra}"
        )


def _frame(table: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """A DataFrame as a retrieval's ``to_pandas`` makes it (nullable integers and booleans)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_NULLABLE.get)
    return frame


Coercer = Callable[[Any, str, str], Any]


def coercer(dtype: ValueType) -> Coercer:
    """A function ``(value, column, label) -> value of dtype`` (TransformationError if not)."""
    if dtype in (Float64, Float32):
        single = dtype == Float32

        def to_float(value: Any, column: str, label: str) -> Any:
            if value is None or value is pd.NA:
                return None
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                _wrong(value, column, dtype, label)
            number = float(value)
            if math.isnan(number):
                return None
            if single:
                try:
                    return _FLOAT32.unpack(_FLOAT32.pack(number))[0]
                except (OverflowError, struct.error):
                    return number  # as Arrow: out of float32 range becomes inf
            return number

        return to_float
    if dtype in (Int64, Int32):
        bound = _INT32 if dtype == Int32 else 2**63

        def to_int(value: Any, column: str, label: str) -> Any:
            if _null(value):
                return None
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                _wrong(value, column, dtype, label)
            if not isinstance(value, numbers.Integral) and float(value) != int(value):
                _wrong(value, column, dtype, label)
            number = int(value)
            if not -bound <= number < bound:
                _wrong(value, column, dtype, label)
            return number

        return to_int
    if dtype == String:

        def to_str(value: Any, column: str, label: str) -> Any:
            if _null(value):
                return None
            if not isinstance(value, str):
                _wrong(value, column, dtype, label)
            return value

        return to_str
    if dtype == Bool:

        def to_bool(value: Any, column: str, label: str) -> Any:
            if _null(value):
                return None
            if type(value).__name__ not in ("bool", "bool_"):
                _wrong(value, column, dtype, label)
            return bool(value)

        return to_bool
    arrow_type = dtype.to_arrow()

    def through_arrow(value: Any, column: str, label: str) -> Any:
        try:
            return pa.array([value], type=arrow_type, from_pandas=True).to_pylist()[0]
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            _wrong(value, column, dtype, label)

    return through_arrow


def _null(value: Any) -> bool:
    """None, pandas' NA and NaN are null, as Arrow reads them from pandas."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _wrong(value: Any, column: str, dtype: ValueType, label: str) -> Any:
    raise TransformationError(
        f"{label}: {column!r} is {value!r} ({type(value).__name__}), which is not a {dtype.name}"
    )
