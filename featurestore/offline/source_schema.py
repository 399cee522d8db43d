"""Checking a feature view against its source's Parquet schema, without reading any data.

Used at apply time (and before a retrieval) so a view that names a column its source lacks, or
declares a type the column cannot serve, fails with a message naming the view, column and file.
Feature and join-key names go through the source's ``field_mapping``; ``timestamp_field`` and
``created_timestamp_column`` are source column names already.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import SourceSchemaError
from featurestore.types import ValueType, arrow_compatible


@dataclass(frozen=True)
class _Requirement:
    """One column the view needs from its source."""

    role: str  # how the message names it, e.g. "feature 'conv_rate'"
    column: str  # the source column
    dtype: ValueType | None  # declared type, if any
    timestamp: bool = False


def validate_view_source(view: FeatureView, repo_path: str | os.PathLike[str]) -> None:
    """Raise SourceSchemaError when ``view`` does not fit the schema of every file of its source."""
    for path in view.source.files(repo_path):
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceSchemaError(
                f"{view.label}: cannot read the Parquet schema of {path}: {exc}"
            ) from None
        for requirement in _requirements(view):
            _check(view, path, schema, requirement)


def source_arrow_types(
    view: FeatureView, repo_path: str | os.PathLike[str]
) -> dict[str, pa.DataType]:
    """Arrow types of the view's join keys in its source (first file), by key name."""
    files = view.source.files(repo_path)
    schema = pq.read_schema(files[0])
    types: dict[str, pa.DataType] = {}
    for key in view.join_keys:
        column = view.source.source_column(key)
        if column in schema.names:
            types[key] = schema.field(column).type
    return types


def _requirements(view: FeatureView) -> list[_Requirement]:
    source = view.source
    needed = [
        _Requirement(f"join key {key!r}", source.source_column(key), dtype)
        for key, dtype in view.join_key_types.items()
    ]
    needed.extend(
        _Requirement(f"feature {f.name!r}", source.source_column(f.name), f.dtype)
        for f in view.features
    )
    needed.append(_Requirement("timestamp field", source.timestamp_field, None, timestamp=True))
    if source.created_timestamp_column is not None:
        needed.append(
            _Requirement(
                "created timestamp column", source.created_timestamp_column, None, timestamp=True
            )
        )
    return needed


def _check(view: FeatureView, path: str, schema: pa.Schema, requirement: _Requirement) -> None:
    column = requirement.column
    if column not in schema.names:
        raise SourceSchemaError(
            f"{view.label}: source file {path} has no column {column!r} (needed for "
            f"{requirement.role}); "
            f"it has {schema.names}. Fix the view's schema, field_mapping or source."
        )
    actual = schema.field(column).type
    if requirement.timestamp:
        if not (pa.types.is_timestamp(actual) or pa.types.is_date(actual)):
            raise SourceSchemaError(
                f"{view.label}: column {column!r} ({requirement.role}) in {path} is {actual}, "
                "but it must hold timestamps"
            )
        return
    declared = requirement.dtype
    if declared is not None and not arrow_compatible(declared, _plain(actual)):
        raise SourceSchemaError(
            f"{view.label}: column {column!r} in {path} is {actual}, which cannot serve "
            f"{requirement.role} declared {declared.name}"
        )


def _plain(dtype: pa.DataType) -> pa.DataType:
    # A dictionary-encoded column serves values of its value type.
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype
