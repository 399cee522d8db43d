"""Data sources a feature view reads from.

A :class:`FileSource` is Parquet data: one file, a folder (every ``*.parquet`` below it) or a glob.
Relative paths are relative to the feature repository. A :class:`PushSource` is a FileSource that
also takes rows pushed at run time (``store.push(...)``, ``POST /push``): its batch source gives
the history and the column schema; pushed rows land in the online store, in the store's own data
folder next to it, or both.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featurestore.definitions.base import check_name
from featurestore.errors import DefinitionError

_GLOB_CHARS = set("*?[")


class FileSource:
    """Parquet data with an event-timestamp column.

    ``created_timestamp_column`` breaks ties between rows with the same event timestamp (the later
    created row wins). ``field_mapping`` renames source columns: ``{"conv": "conv_rate"}``.

        FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp",
                   created_timestamp_column="created")
    """

    type_name = "file"

    def __init__(
        self,
        *,
        path: str,
        timestamp_field: str = "event_timestamp",
        created_timestamp_column: str | None = None,
        field_mapping: Mapping[str, str] | None = None,
        name: str | None = None,
        description: str = "",
    ) -> None:
        if not isinstance(path, str) or not path:
            raise DefinitionError(f"FileSource: path must be a non-empty string, got {path!r}")
        self.path = path
        self.name = check_name("source", name) if name is not None else _default_name(path)
        self.timestamp_field = check_name(f"source {self.name!r} timestamp_field", timestamp_field)
        self.created_timestamp_column = (
            check_name(f"source {self.name!r} created_timestamp_column", created_timestamp_column)
            if created_timestamp_column
            else None
        )
        mapping = dict(field_mapping or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise DefinitionError(
                f"source {self.name!r}: field_mapping must map strings to strings"
            )
        if len(set(mapping.values())) != len(mapping):
            raise DefinitionError(
                f"source {self.name!r}: field_mapping maps two columns to one name"
            )
        self.field_mapping = mapping
        self.description = description

    def spec(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "path": self.path,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": dict(sorted(self.field_mapping.items())),
        }

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}

    @classmethod
    def from_dicts(cls, spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> FileSource:
        meta = meta or {}
        return cls(
            path=spec["path"],
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column"),
            field_mapping=spec.get("field_mapping") or {},
            name=meta.get("name"),
            description=meta.get("description", ""),
        )

    def source_column(self, name: str) -> str:
        """The source column that holds the column called ``name`` in the view."""
        for src, dst in self.field_mapping.items():
            if dst == name:
                return src
        return name

    def resolve(self, repo_path: str | os.PathLike[str]) -> str:
        """The absolute path or glob to read, with folders expanded to their Parquet files."""
        path = Path(self.path)
        full = path if path.is_absolute() else Path(repo_path) / path
        text = str(full)
        if _GLOB_CHARS & set(self.path):
            return text
        if full.is_dir():
            return str(full / "**" / "*.parquet")
        return text

    def files(self, repo_path: str | os.PathLike[str]) -> list[str]:
        """The Parquet files the source currently covers, sorted; raises if there are none."""
        pattern = self.resolve(repo_path)
        files = (
            sorted(glob.glob(pattern, recursive=True))
            if _GLOB_CHARS & set(pattern)
            else ([pattern] if os.path.isfile(pattern) else [])
        )
        if not files:
            raise DefinitionError(
                f"source {self.name!r}: path {self.path!r} matches no Parquet file"
            )
        return files

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileSource) and (self.spec(), self.meta()) == (
            other.spec(),
            other.meta(),
        )

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"FileSource(path={self.path!r})"


class PushSource:
    """Rows pushed at run time, on top of a :class:`FileSource` with the same columns.

    Pushed rows use the batch source's column names (before ``field_mapping``) and must carry its
    timestamp column, join keys and features; the batch source's Parquet schema decides their
    types. Offline, a view reading a push source sees the batch files plus every row pushed to
    the offline store::

        driver_push = PushSource(name="driver_stats_push",
                                 batch_source=FileSource(path="data/driver_stats.parquet"))
        store.push("driver_stats_push", df, to="online_and_offline")
    """

    type_name = "push"

    def __init__(self, *, name: str, batch_source: FileSource, description: str = "") -> None:
        self.name = check_name("push source", name)
        if not isinstance(batch_source, FileSource):
            raise DefinitionError(
                f"push source {name!r}: batch_source must be a FileSource, "
                f"got {type(batch_source).__name__}"
            )
        self.batch_source = batch_source
        self.description = description

    # The batch source's columns are the push source's columns.
    @property
    def path(self) -> str:
        return self.batch_source.path

    @property
    def timestamp_field(self) -> str:
        return self.batch_source.timestamp_field

    @property
    def created_timestamp_column(self) -> str | None:
        return self.batch_source.created_timestamp_column

    @property
    def field_mapping(self) -> dict[str, str]:
        return self.batch_source.field_mapping

    def source_column(self, name: str) -> str:
        return self.batch_source.source_column(name)

    def resolve(self, repo_path: str | os.PathLike[str]) -> str:
        return self.batch_source.resolve(repo_path)

    def files(self, repo_path: str | os.PathLike[str]) -> list[str]:
        """The batch source's files (pushed offline data lives in the store, not here)."""
        return self.batch_source.files(repo_path)

    def spec(self) -> dict[str, Any]:
        # The push name routes pushes to views, so it decides what a view serves: spec.
        batch = {k: v for k, v in self.batch_source.spec().items() if k != "type"}
        return {"type": self.type_name, "name": self.name, **batch}

    def meta(self) -> dict[str, Any]:
        return {"description": self.description, "batch_source": self.batch_source.meta()}

    @classmethod
    def from_dicts(cls, spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> PushSource:
        meta = meta or {}
        batch_spec = {k: v for k, v in spec.items() if k not in ("type", "name")}
        return cls(
            name=spec["name"],
            batch_source=FileSource.from_dicts(batch_spec, meta.get("batch_source")),
            description=meta.get("description", ""),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PushSource) and (self.spec(), self.meta()) == (
            other.spec(),
            other.meta(),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.path))

    def __repr__(self) -> str:
        return f"PushSource(name={self.name!r}, batch_source={self.batch_source!r})"


class SparkSource(FileSource):
    """A table of the Spark catalog (``spark.table(table)``: a Hive/Delta/Iceberg table, a
    temporary view...), read only by the Spark offline engine
    (``offline_store: {type: spark}``); other engines refuse it with an error naming it::

        SparkSource(name="driver_stats", table="lake.driver_stats",
                    timestamp_field="event_timestamp", created_timestamp_column="created")

    Its spec (so the view's content hash) holds the table and columns; it has no files.
    """

    type_name = "spark"

    def __init__(
        self,
        *,
        name: str,
        table: str,
        timestamp_field: str = "event_timestamp",
        created_timestamp_column: str | None = None,
        field_mapping: Mapping[str, str] | None = None,
        description: str = "",
    ) -> None:
        if not isinstance(table, str) or not table.strip():
            raise DefinitionError(
                f"SparkSource {name!r}: table must be a non-empty table name, got {table!r}"
            )
        super().__init__(
            path=f"spark-table:{table}",
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            field_mapping=field_mapping,
            name=check_name("source", name),
            description=description,
        )
        self.table = table

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        del spec["path"]
        return {**spec, "table": self.table}

    @classmethod
    def from_dicts(cls, spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> SparkSource:
        meta = meta or {}
        return cls(
            name=str(meta.get("name") or spec["table"]),
            table=spec["table"],
            timestamp_field=spec["timestamp_field"],
            created_timestamp_column=spec.get("created_timestamp_column"),
            field_mapping=spec.get("field_mapping") or {},
            description=meta.get("description", ""),
        )

    def resolve(self, repo_path: str | os.PathLike[str]) -> str:
        """The table's name (a SparkSource has no path)."""
        return self.path

    def files(self, repo_path: str | os.PathLike[str]) -> list[str]:
        """Never: a table has no files any engine but Spark could read."""
        raise DefinitionError(
            f"source {self.name!r} is a SparkSource (table {self.table!r}): only the spark "
            "offline engine reads it; set offline_store: {type: spark} in featurestore.yaml"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SparkSource) and (self.spec(), self.meta()) == (
            other.spec(),
            other.meta(),
        )

    def __hash__(self) -> int:
        return hash(self.table)

    def __repr__(self) -> str:
        return f"SparkSource(name={self.name!r}, table={self.table!r})"


#: What a feature view may read from (a SparkSource is a FileSource without files).
DataSource = FileSource | PushSource


def source_from_dicts(spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> DataSource:
    """Rebuild a view's source from its registry spec and meta."""
    if spec.get("type") == PushSource.type_name:
        return PushSource.from_dicts(spec, meta)
    if spec.get("type") == SparkSource.type_name:
        return SparkSource.from_dicts(spec, meta)
    return FileSource.from_dicts(spec, meta)


def _default_name(path: str) -> str:
    stem = Path(path.rstrip("/*")).stem or "source"
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in stem)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"
