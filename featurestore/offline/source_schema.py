"""Checking a feature view against its source's Parquet schema, without reading any data.

Used at apply time (and before a retrieval) so a view that names a column its source lacks, or
declares a type the column cannot serve, fails with a message naming the view, column and file.
Feature and join-key names go through the source's ``field_mapping``; ``timestamp_field`` and
``created_timestamp_column`` are source column names already.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import SparkSource
from featurestore.errors import SourceSchemaError
from featurestore.types import ValueType, arrow_compatible, inferred_key_type


@dataclass(frozen=True)
class _Requirement:
    """One column the view needs from its source."""

    role: str  # how the message names it, e.g. "feature 'conv_rate'"
    column: str  # the source column
    dtype: ValueType | None  # declared type, if any
    timestamp: bool = False


def validate_view_source(
    view: FeatureView, repo_path: str | os.PathLike[str], engine_type: str = "duckdb"
) -> None:
    """Raise SourceSchemaError when ``view`` does not fit the schema of every file of its source,
    or when its source is a Spark table the engine ``engine_type`` (a file reader) cannot read."""
    if isinstance(view.source, SparkSource):
        raise SourceSchemaError(
            f"{view.label}: its source {view.source.name!r} is a SparkSource (table "
            f"{view.source.table!r}), which the {engine_type!r} offline engine cannot read; "
            "set offline_store: {type: spark} in featurestore.yaml"
        )
    validate_and_infer_key_types(view, repo_path)


def validate_and_infer_key_types(
    view: FeatureView, repo_path: str | os.PathLike[str]
) -> dict[str, ValueType]:
    """Validate as :func:`validate_view_source` does, and return the types the source gives the
    view's undeclared join keys (see :func:`~featurestore.types.inferred_key_type`).

    A key is left out when a file's column has no inferable type; files that disagree (an
    integer column in one, text in another) are a SourceSchemaError naming the files.
    """
    if isinstance(view.source, SparkSource):
        return {}  # a table: the Spark engine checks its columns when it reads it
    undeclared = [key for key, dtype in view.declared_key_types.items() if dtype is None]
    found: dict[str, dict[str, ValueType | None]] = {key: {} for key in undeclared}
    for path in view.source.files(repo_path):
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise SourceSchemaError(
                f"{view.label}: cannot read the Parquet schema of {path}: {exc}"
            ) from None
        for requirement in _requirements(view):
            _check(view, path, schema, requirement)
        for key in undeclared:
            actual = schema.field(view.source.source_column(key)).type
            found[key][path] = inferred_key_type(actual)
    inferred: dict[str, ValueType] = {}
    for key, per_file in found.items():
        types = set(per_file.values())
        if len(types) > 1 and None not in types:
            listing = ", ".join(f"{path}: {dtype}" for path, dtype in per_file.items())
            raise SourceSchemaError(
                f"{view.label}: join key {key!r} has different types in the files of its "
                f"source ({listing}); rewrite the files with one type, or declare the "
                "entity's value_type"
            )
        only = next(iter(types), None)
        if len(types) == 1 and only is not None:
            inferred[key] = only
    return inferred


def type_join_keys(
    views: Sequence[FeatureView],
    repo_path: str | os.PathLike[str],
    registered: Sequence[FeatureView] = (),
) -> None:
    """Validate each view against its source and record the types inferred for its undeclared
    join keys on it (apply time); then check that views sharing an entity's key agree, these
    ones and the ``registered`` views that stay (those named like one of ``views`` are
    replaced by it)."""
    for view in views:
        view.record_inferred_key_types(validate_and_infer_key_types(view, repo_path))
    names = {view.name for view in views}
    check_inferred_key_types([*views, *(v for v in registered if v.name not in names)])


def check_inferred_key_types(views: Sequence[FeatureView]) -> None:
    """Raise SourceSchemaError when views sharing an entity's undeclared join key infer
    different types for it from their sources (the key would match in one view only)."""
    seen: dict[tuple[str, str], dict[str, ValueType]] = {}
    inferred: set[tuple[str, str]] = set()
    for view in views:
        for entity in view.entities:
            for key in entity.join_keys:
                dtype = view.join_key_types.get(key)
                if dtype is not None:
                    seen.setdefault((entity.name, key), {})[view.name] = dtype
                if key in view.inferred_key_types:
                    inferred.add((entity.name, key))
    for (entity_name, key), by_view in seen.items():
        # Declared types were checked when declared; integer widths encode alike.
        families = {"Int64" if t.name == "Int32" else t.name for t in by_view.values()}
        if (entity_name, key) in inferred and len(families) > 1:
            listing = ", ".join(f"{name!r}: {dtype}" for name, dtype in sorted(by_view.items()))
            raise SourceSchemaError(
                f"entity {entity_name!r}: its join key {key!r} has different types in the sources "
                f"of the views that use it ({listing}); make the source columns agree, or "
                "declare the entity's value_type"
            )


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
