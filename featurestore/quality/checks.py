"""The quick checks every validation runs, with or without Great Expectations: ``schema``
(each declared feature is present in its declared Arrow type) and ``null_rate`` (each feature's
share of nulls, NaN included, is at most the limit). Arrow compute only: cheap on any batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.quality.result import CheckOutcome
from featurestore.types import ValueType

__all__ = ["merge_quick", "null_rate_outcome", "quick_checks", "schema_outcome"]


def quick_checks(
    batch: pa.RecordBatch | pa.Table, declared: Mapping[str, ValueType], max_null_rate: float
) -> list[CheckOutcome]:
    """The schema outcome of every declared feature, then the null-rate outcome of every
    feature present in ``batch`` (a missing one already fails its schema check)."""
    outcomes = [schema_outcome(batch, name, dtype) for name, dtype in declared.items()]
    for name in declared:
        if len(batch.schema.get_all_field_indices(name)) == 1:
            outcomes.append(null_rate_outcome(batch, name, max_null_rate))
    return outcomes


def schema_outcome(batch: pa.RecordBatch | pa.Table, name: str, dtype: ValueType) -> CheckOutcome:
    """Whether column ``name`` is in ``batch`` exactly once, with ``dtype``'s Arrow type."""
    expected = dtype.to_arrow()
    kwargs = {"dtype": dtype.name, "arrow_type": str(expected)}
    indices = batch.schema.get_all_field_indices(name)
    success = False
    if not indices:
        observed: dict[str, object] = {"present": False}
        message = (
            f"{name}: column missing from the batch; the view declares it as {dtype.name}, so "
            "the source (or its field_mapping) must provide it"
        )
    elif len(indices) > 1:
        observed = {"present": True, "columns": len(indices)}
        message = f"{name}: {len(indices)} columns have this name; a feature must be one column"
    else:
        actual = batch.schema.field(indices[0]).type
        observed = {"present": True, "arrow_type": str(actual)}
        # Type equality, not text: a list's item field may be named otherwise (DuckDB says
        # ``list<l: string>`` for ``list<item: string>``), which is the same type.
        success = actual == expected
        if success:
            message = f"{name}: {dtype.name} ({expected}) as declared"
        else:
            message = (
                f"{name}: values are Arrow {actual}, but the view declares {dtype.name} "
                f"({expected}); fix the Field's dtype or cast the column in the source"
            )
    return CheckOutcome("schema", name, success, "quick", kwargs, observed, [], message)


def null_rate_outcome(
    batch: pa.RecordBatch | pa.Table, name: str, max_null_rate: float
) -> CheckOutcome:
    """The share of nulls in column ``name``; NaN counts as null in floating-point columns."""
    column = batch.column(name)
    nulls = column.null_count
    nans = 0
    if pa.types.is_floating(column.type):
        with_nans = pc.sum(pc.is_null(column, nan_is_null=True)).as_py() or 0
        nans = with_nans - nulls
    return _null_rate(name, len(column), nulls + nans, nans, max_null_rate)


def _null_rate(name: str, rows: int, nulls: int, nans: int, limit: float) -> CheckOutcome:
    rate = nulls / rows if rows else 0.0
    observed = {"element_count": rows, "null_count": nulls, "nan_count": nans, "null_rate": rate}
    nan_note = f", {nans:,} of them NaN" if nans else ""
    message = (
        f"{name}: {nulls:,} of {rows:,} values ({rate:.1%}) null{nan_note}; "
        f"at most {limit:.1%} allowed"
    )
    success = rate <= limit
    return CheckOutcome(
        "null_rate", name, success, "quick", {"max_null_rate": limit}, observed, [], message
    )


def merge_quick(first: CheckOutcome, second: CheckOutcome) -> CheckOutcome:
    """One outcome for two batches: null counts add up (the rate is over all rows); a schema
    check fails if it failed on either batch, keeping the first failure's observation."""
    if first.check == "null_rate":
        a, b = first.observed, second.observed
        return _null_rate(
            str(first.column),
            a["element_count"] + b["element_count"],
            a["null_count"] + b["null_count"],
            a["nan_count"] + b["nan_count"],
            float(first.kwargs["max_null_rate"]),
        )
    return first if not first.success else second
