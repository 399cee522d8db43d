"""Entity input of online lookups: entity rows or columns, checked and typed per join key.

Every entity row needs every join key of every requested view (extra keys are ignored); values
are converted to the key's declared Arrow type, and a value of the wrong kind (a string for an
Int64 key, a float for an integer key) is an error naming the key, the view and the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import EntityFrameError
from featurestore.types import ValueType

__all__ = ["EntityRowsInput", "entity_columns", "key_array", "typed_key_values"]

#: Entity rows: one mapping of join key -> value per row; extra keys are ignored.
EntityRowsInput = Sequence[Mapping[str, Any]]


def entity_columns(
    views: Sequence[FeatureView],
    entity_rows: EntityRowsInput | None,
    entities: Mapping[str, Sequence[Any]] | None,
) -> tuple[dict[str, list[Any]], int]:
    """The join-key columns ``views`` need, as lists, and the number of entity rows."""
    if (entity_rows is None) == (entities is None):
        raise EntityFrameError(
            "pass exactly one of entity_rows=[{'driver_id': 1}, ...] and "
            "entities={'driver_id': [1, ...]}"
        )
    columns: dict[str, list[Any]] = {}
    if entities is not None:
        if not isinstance(entities, Mapping):
            raise EntityFrameError(
                f"entities must map join keys to lists of values, got {type(entities).__name__}"
            )
        lengths = {k: len(v) for k, v in entities.items() if not isinstance(v, str | bytes)}
        if len(lengths) != len(entities):
            bad = next(k for k in entities if k not in lengths)
            raise EntityFrameError(f"entities[{bad!r}] must be a list of values, not a string")
        if len(set(lengths.values())) > 1:
            raise EntityFrameError(f"entities lists differ in length: {lengths}")
        rows = next(iter(lengths.values()), 0)
        for view in views:
            for key in view.join_keys:
                if key not in entities:
                    raise EntityFrameError(_missing(key, view, list(entities)))
                columns[key] = list(entities[key])
        return columns, rows
    assert entity_rows is not None
    if isinstance(entity_rows, Mapping | str | bytes):
        raise EntityFrameError(
            "entity_rows must be a list of mappings, e.g. [{'driver_id': 1}]; "
            "for columns use entities={'driver_id': [1, ...]}"
        )
    rows_list = list(entity_rows)
    for view in views:
        for key in view.join_keys:
            if key in columns:
                continue
            try:
                columns[key] = [row[key] for row in rows_list]
            except KeyError:
                index = next(i for i, row in enumerate(rows_list) if key not in row)
                raise EntityFrameError(
                    _missing(key, view, list(rows_list[index]), f"entity row {index}")
                ) from None
            except TypeError:
                index = next(i for i, row in enumerate(rows_list) if not isinstance(row, Mapping))
                raise EntityFrameError(
                    f"entity row {index} must be a mapping of join keys to values, "
                    f"got {rows_list[index]!r}"
                ) from None
    return columns, len(rows_list)


def _missing(key: str, view: FeatureView, present: list[str], where: str = "entities") -> str:
    return (
        f"{where} lacks join key {key!r}, which {view.label} needs "
        f"(its join keys: {view.join_keys}; given: {present})"
    )


_INT_TYPES = {"Int32", "Int64"}


def key_array(
    values: list[Any], key: str, declared: ValueType | None, view: FeatureView
) -> pa.Array:
    """``values`` as an Arrow array of the key's declared type, or an error naming both."""
    try:
        return _convert(values, declared)
    except _CONVERSION_ERRORS:
        wrong = next((v for v in values if not _fits(v, declared)), values[0] if values else None)
    wanted = "one type for all rows" if declared is None else declared.name
    raise EntityFrameError(
        f"join key {key!r} of {view.label} is declared {wanted}, but got {wrong!r} "
        f"({type(wrong).__name__})"
    )


_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


def typed_key_values(values: list[Any], declared: ValueType | None) -> pa.Array | None:
    """``values`` converted as :func:`key_array` converts them (a float is never an integer
    key), or None when they do not fit ``declared``; for callers with their own message."""
    try:
        return _convert(values, declared)
    except _CONVERSION_ERRORS:
        return None


def _convert(values: list[Any], declared: ValueType | None) -> pa.Array:
    if declared is None:
        return pa.array(values)
    target = declared.to_arrow()
    if declared.name not in _INT_TYPES:
        return pa.array(values, target)
    # Arrow would turn 1.0 into 1 for an integer type; a float (or bool) key is a bug upstream,
    # so the values must infer as integers (or all null) before the (overflow-checked) cast.
    inferred = pa.array(values)
    if not (pa.types.is_integer(inferred.type) or pa.types.is_null(inferred.type)):
        raise TypeError(f"{inferred.type} is not an integer type")
    return inferred if inferred.type == target else inferred.cast(target)


def _fits(value: Any, declared: ValueType | None) -> bool:
    if value is None or declared is None:
        return value is None
    try:
        _convert([value], declared)
    except _CONVERSION_ERRORS:
        return False
    return True
