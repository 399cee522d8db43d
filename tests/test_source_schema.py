"""validate_view_source: missing columns and incompatible types, named with view, column and file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.errors import SourceSchemaError
from featurestore.offline.source_schema import validate_view_source
from featurestore.types import Array, Float32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
GOOD = {
    "driver_id": pa.array([1], pa.int32()),
    "event_timestamp": pa.array([0], pa.timestamp("ns")),
    "created": pa.array([0], pa.timestamp("us", tz="UTC")),
    "conv": pa.array([0.5], pa.float64()),
    "city": pa.array(["a"], pa.string()).dictionary_encode(),
    "tags": pa.array([[1, 2]], pa.list_(pa.int64())),
}


def _view(path: str = "stats", **schema_overrides: object) -> FeatureView:
    fields = {"conv_rate": Float32, "city": String, "tags": Array(Int64), **schema_overrides}
    return FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[Field(name=name, dtype=dtype) for name, dtype in fields.items()],  # type: ignore[arg-type]
        source=FileSource(
            path=path, created_timestamp_column="created", field_mapping={"conv": "conv_rate"}
        ),
    )


def _write(repo: Path, name: str, **changes: pa.Array | None) -> Path:
    columns = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    path = repo / "stats" / name
    path.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def test_a_fitting_source_passes_with_mapping_widening_and_dictionary(tmp_path: Path) -> None:
    _write(tmp_path, "part-0.parquet")
    _write(tmp_path, "part-1.parquet", conv=pa.array([1], pa.int64()))
    validate_view_source(_view(), tmp_path)


@pytest.mark.parametrize(
    ("dropped", "needed_for"),
    [
        ("conv", "feature 'conv_rate'"),
        ("driver_id", "join key 'driver_id'"),
        ("event_timestamp", "timestamp field"),
        ("created", "created timestamp column"),
    ],
)
def test_a_missing_column_names_view_column_and_file(
    tmp_path: Path, dropped: str, needed_for: str
) -> None:
    _write(tmp_path, "part-0.parquet")
    bad = _write(tmp_path, "part-1.parquet", **{dropped: None})
    with pytest.raises(SourceSchemaError) as error:
        validate_view_source(_view(), tmp_path)
    message = str(error.value)
    assert "feature view 'driver_stats'" in message
    assert f"no column {dropped!r}" in message
    assert needed_for in message
    assert str(bad) in message


@pytest.mark.parametrize(
    ("column", "array", "declared"),
    [
        ("conv", pa.array(["x"]), "Float32"),
        ("driver_id", pa.array(["1"]), "Int64"),
        ("tags", pa.array([["a"]]), "Array(Int64)"),
        ("city", pa.array([1]), "String"),
    ],
)
def test_an_incompatible_type_names_both_types(
    tmp_path: Path, column: str, array: pa.Array, declared: str
) -> None:
    path = _write(tmp_path, "part-0.parquet", **{column: array})
    with pytest.raises(SourceSchemaError) as error:
        validate_view_source(_view(), tmp_path)
    message = str(error.value)
    stored = pq.read_schema(path).field(column).type
    assert f"column {column!r} in {path} is {stored}" in message
    assert f"declared {declared}" in message


def test_a_timestamp_column_must_hold_timestamps(tmp_path: Path) -> None:
    _write(tmp_path, "part-0.parquet", created=pa.array(["2024-01-01"]))
    with pytest.raises(
        SourceSchemaError, match=r"'created' \(created timestamp column\).*must hold timestamps"
    ):
        validate_view_source(_view(), tmp_path)


def test_a_source_without_files_is_reported(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="matches no Parquet file"):
        validate_view_source(_view(path="nowhere.parquet"), tmp_path)
