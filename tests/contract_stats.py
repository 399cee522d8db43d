"""Contract part: statistics computed by an engine, checked against pandas on the same rows.

Random data (fixed seeds) with nulls, NaN, duplicates, integers, floats, strings, booleans, bytes
and timestamps; source timestamps stored in New York time, window bounds given in Tokyo time.
Tables here are smaller than DuckDB's sample (exact grid, quantiles read off it); its sampled
path is tested in ``tests/test_offline_duckdb.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from contract_engine import EngineContractBase

from featurestore import Entity, FeatureView, Field, FileSource, PushSource
from featurestore.config import RepoConfig
from featurestore.errors import QualityError
from featurestore.offline.base import SupportsStatistics, SupportsWindowReads
from featurestore.offline.store_data import StoreData
from featurestore.quality.profile import QUANTILES, ColumnStats, TableProfile
from featurestore.types import (
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    ValueType,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
ROWS = 4000
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TYPES: dict[str, ValueType] = {
    "rate": Float32,
    "distance": Float64,
    "trips": Int64,
    "rank": Int32,
    "label": String,
    "active": Bool,
    "code": Bytes,
    "seen": UnixTimestamp,
}
NUMERIC = ["rate", "distance", "trips", "rank", "seen"]
CATEGORICAL = ["label", "active", "code"]


def view(source: FileSource | PushSource | None = None) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        schema=[Field(name=name, dtype=dtype) for name, dtype in TYPES.items()],
        source=source or FileSource(path="data/stats.parquet", created_timestamp_column="created"),
    )


def generate(seed: int, rows: int = ROWS, start: datetime = T0) -> pa.Table:
    """Source rows over 10 days: every kind of value, nulls everywhere, NaN in the floats."""
    rng = np.random.default_rng(seed)

    def with_nulls(values: list[Any], share: float = 0.08) -> list[Any]:
        return [None if rng.random() < share else v for v in values]

    rate = [float(v) for v in rng.random(rows).astype(np.float32)]
    rate = [float("nan") if rng.random() < 0.03 else v for v in rate]
    distance = [round(float(v), 1) for v in rng.exponential(10.0, rows)]  # many duplicates
    distance = [float("nan") if rng.random() < 0.02 else v for v in distance]
    seen_us = [
        int((start - timedelta(days=30)).timestamp() * 1e6) + int(v)
        for v in rng.integers(0, 30 * 86_400_000_000, rows)
    ]
    event_s = rng.integers(0, 10 * 86_400, rows)
    events = [start + timedelta(seconds=int(s)) for s in event_s]
    keys = with_nulls([int(k) for k in rng.integers(1, 200, rows)], 0.02)
    table = pa.table(
        {
            "driver_id": pa.array(keys, pa.int64()),
            "event_timestamp": pa.array(
                with_nulls(events, 0.02), pa.timestamp("us", tz="America/New_York")
            ),
            "created": pa.array(events, pa.timestamp("us", tz="UTC")),
            "rate": pa.array(with_nulls(rate), pa.float32()),
            "distance": pa.array(with_nulls(distance), pa.float64()),
            "trips": pa.array(with_nulls([int(v) for v in rng.poisson(4.0, rows)]), pa.int64()),
            "rank": pa.array(with_nulls([int(v) for v in rng.integers(-50, 50, rows)]), pa.int32()),
            "label": pa.array(
                with_nulls([str(v) for v in rng.choice(["a", "b", "c", "dd", "É"], rows)]),
                pa.string(),
            ),
            "active": pa.array(with_nulls([bool(v) for v in rng.random(rows) < 0.3]), pa.bool_()),
            "code": pa.array(
                with_nulls([f"c{v}".encode() for v in rng.zipf(1.6, rows) % 300]), pa.binary()
            ),
            "seen": pa.array(with_nulls(seen_us), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
    )
    return table


def us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


# -- the pandas oracle --------------------------------------------------------------------------


def window_frame(
    table: pa.Table,
    start: datetime | None,
    end: datetime | None,
    not_before: datetime | None = None,
) -> pd.DataFrame:
    """The rows the engine profiles: key and timestamp set, inside the inclusive window."""
    frame = table.to_pandas()
    ts = frame["event_timestamp"]
    keep = frame["driver_id"].notna() & ts.notna()
    for bound, test in ((start, ts.ge), (end, ts.le), (not_before, ts.ge)):
        if bound is not None:
            keep &= test(pd.Timestamp(bound)).fillna(False).astype(bool)
    return frame[keep].reset_index(drop=True)


def profiled(series: pd.Series, dtype: ValueType) -> pd.Series:
    """A column in the profile's domain, as the engine defines it (module docstring)."""
    if dtype == UnixTimestamp:
        micros = series.dt.as_unit("us").astype("int64")
        return (micros / 1e6).where(series.notna())
    if dtype in (Float32, Float64, Int32, Int64):
        return series.astype("float64")
    if dtype == Bool:
        return series.map(lambda v: None if pd.isna(v) else ("true" if v else "false"))
    if dtype == Bytes:
        return series.map(lambda v: None if v is None else v.decode())
    return series.astype(object)


def ranked(values: pd.Series) -> list[tuple[Any, int]]:
    counts = values.dropna().value_counts()
    return sorted(((v, int(n)) for v, n in counts.items()), key=lambda item: (-item[1], item[0]))


def check_numeric(stats: ColumnStats, series: pd.Series, dtype: ValueType) -> None:
    values = profiled(series, dtype)
    present = values.dropna()
    assert stats.kind == "numeric"
    assert stats.rows == len(values)
    assert stats.nulls == int(values.isna().sum())
    assert stats.min == present.min()
    assert stats.max == present.max()
    assert stats.mean == pytest.approx(present.mean(), rel=1e-12)
    assert stats.stddev == pytest.approx(present.std(ddof=1), rel=1e-9)
    for name, q in QUANTILES.items():
        assert stats.quantiles[name] == pytest.approx(present.quantile(q), rel=1e-12, abs=1e-12)
    sorted_values = np.sort(present.to_numpy())
    expected = [int(np.searchsorted(sorted_values, g, side="right")) for g in stats.grid]
    assert stats.cumulative == expected
    assert len(stats.grid) == 101
    assert stats.grid == sorted(stats.grid)
    counts = present.value_counts()
    for value, count in stats.top_values:
        assert counts[value] == count
    assert stats.distinct is not None
    assert abs(stats.distinct - present.nunique()) <= max(2, 0.1 * present.nunique())


def check_categorical(stats: ColumnStats, series: pd.Series, dtype: ValueType) -> None:
    values = profiled(series, dtype)
    present = values.dropna()
    assert stats.kind == "categorical"
    assert stats.rows == len(values)
    assert stats.nulls == int(values.isna().sum())
    assert stats.min == min(present)
    assert stats.max == max(present)
    assert stats.categories == ranked(values)[:100]
    natural = (lambda v: v == "true") if dtype == Bool else str
    assert stats.top_values == [(natural(v), n) for v, n in ranked(values)[:10]]
    assert stats.mean is None
    assert stats.quantiles == {}
    assert stats.grid == []
    assert stats.distinct is not None
    assert abs(stats.distinct - present.nunique()) <= max(2, 0.1 * present.nunique())


def check_profile(profile: TableProfile, frame: pd.DataFrame, *, exact_grid: bool = True) -> None:
    assert profile.rows == len(frame)
    assert list(profile.columns) == list(TYPES)
    for name, dtype in TYPES.items():
        stats = profile.columns[name]
        assert stats.dtype == dtype.name
        if name in NUMERIC:
            check_numeric(stats, frame[name], dtype)
            if exact_grid:
                present = profiled(frame[name], dtype).dropna()
                expected = [present.quantile(k / 100) for k in range(101)]
                assert stats.grid == pytest.approx(expected, rel=1e-12, abs=1e-12)
                assert stats.top_values == ranked(present)[:10]
        else:
            check_categorical(stats, frame[name], dtype)


# -- view statistics ------------------------------------------------------------------------------


# -- the sampled path -----------------------------------------------------------------------------


# -- files and windows of rows --------------------------------------------------------------------


def counts_of(frame: pd.DataFrame, column: str) -> Mapping[Any, int]:
    return dict(frame[column].value_counts(dropna=False))


class StatisticsContract(EngineContractBase):
    """Statistics of a view or a saved training set, checked against pandas on the same rows."""

    @pytest.fixture
    def repo(self, tmp_path: Path) -> Path:
        (tmp_path / "data").mkdir()
        pq.write_table(generate(7), tmp_path / "data" / "stats.parquet")
        return tmp_path

    def engine(self, repo: Path) -> SupportsStatistics:
        """The engine under test over ``repo`` (skipped if it has no statistics)."""
        engine = self.open_engine(RepoConfig(project="t", repo_path=repo, registry="sqlite://"))
        return self.capable(engine, SupportsStatistics)

    def test_view_statistics_match_pandas_in_a_window_given_in_another_time_zone(
        self, repo: Path
    ) -> None:
        tokyo = ZoneInfo("Asia/Tokyo")
        start = datetime(2026, 5, 3, 9, 30, tzinfo=tokyo)
        end = datetime(2026, 5, 8, 21, 0, tzinfo=tokyo)
        table = pq.read_table(repo / "data" / "stats.parquet")
        frame = window_frame(table, start, end)
        profile = self.engine(repo).view_statistics(view(), start_us=us(start), end_us=us(end))
        check_profile(profile, frame)
        assert 0 < profile.rows < table.num_rows
        assert profile.seconds > 0

    def test_whole_table_with_unbounded_window(self, repo: Path) -> None:
        table = pq.read_table(repo / "data" / "stats.parquet")
        profile = self.engine(repo).view_statistics(view(), start_us=None, end_us=None)
        frame = window_frame(table, None, None)
        check_profile(profile, frame)
        # Rows with a null key or timestamp are not the view's rows.
        assert profile.rows < table.num_rows

    def test_window_bounds_are_inclusive(self, tmp_path: Path) -> None:
        (tmp_path / "data").mkdir()
        moments = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=3)]
        table = pa.table(
            {
                "driver_id": pa.array([1, 2, 3, 4], pa.int64()),
                "event_timestamp": pa.array(moments, pa.timestamp("us", tz="UTC")),
                "created": pa.array(moments, pa.timestamp("us", tz="UTC")),
                "rate": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
            }
        )
        pq.write_table(table, tmp_path / "data" / "stats.parquet")
        small = FeatureView(
            name="small",
            entities=[DRIVER],
            schema=[Field(name="rate", dtype=Float32)],
            source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
        )
        profile = self.engine(tmp_path).view_statistics(
            small, start_us=us(moments[1]), end_us=us(moments[2])
        )
        rate = profile.columns["rate"]
        assert (profile.rows, rate.min, rate.max, rate.mean) == (2, 2.0, 3.0, 2.5)
        one_microsecond = timedelta(microseconds=1)
        narrower = self.engine(tmp_path).view_statistics(
            small,
            start_us=us(moments[1] + one_microsecond),
            end_us=us(moments[2] - one_microsecond),
        )
        assert narrower.rows == 0

    def test_empty_window_gives_an_empty_profile(self, repo: Path) -> None:
        start = T0 - timedelta(days=400)
        profile = self.engine(repo).view_statistics(
            view(), start_us=us(start), end_us=us(start + timedelta(days=1))
        )
        assert profile.rows == 0
        assert set(profile.columns) == set(TYPES)
        for stats in profile.columns.values():
            assert (stats.rows, stats.nulls, stats.null_rate) == (0, 0, 0.0)
            assert (stats.min, stats.max, stats.mean, stats.stddev) == (None, None, None, None)
            assert stats.quantiles == {}
            assert stats.top_values == []
            assert stats.grid == []

    def test_retention_cutoff_drops_older_rows(self, repo: Path) -> None:
        cutoff = T0 + timedelta(days=4, hours=6)
        table = pq.read_table(repo / "data" / "stats.parquet")
        profile = self.engine(repo).view_statistics(
            view(), start_us=None, end_us=None, not_before_us=us(cutoff)
        )
        check_profile(profile, window_frame(table, None, None, not_before=cutoff))

    def test_pushed_offline_rows_are_included(self, repo: Path) -> None:
        batch = FileSource(path="data/stats.parquet", created_timestamp_column="created")
        pushed_view = view(PushSource(name="stats_push", batch_source=batch))
        config = RepoConfig(project="t", repo_path=repo, registry="sqlite://")
        pushed = generate(11, rows=500, start=T0 + timedelta(days=10))
        StoreData(config).stage("stats_push", pushed).commit()
        engine = self.capable(self.open_engine(config), SupportsStatistics)
        profile = engine.view_statistics(pushed_view, start_us=None, end_us=None)
        original = pq.read_table(repo / "data" / "stats.parquet")
        frame = window_frame(pa.concat_tables([original, pushed]), None, None)
        check_profile(profile, frame)

    def test_a_subset_of_features_in_the_order_asked(self, repo: Path) -> None:
        profile = self.engine(repo).view_statistics(
            view(), start_us=None, end_us=None, features=["label", "rate"]
        )
        assert list(profile.columns) == ["label", "rate"]
        with pytest.raises(QualityError, match=r"driver_stats.*no feature 'nope'"):
            self.engine(repo).view_statistics(view(), start_us=None, end_us=None, features=["nope"])

    def test_probe_counts_on_a_reference(self, repo: Path) -> None:
        table = pq.read_table(repo / "data" / "stats.parquet")
        first, second = T0 + timedelta(days=5), T0 + timedelta(days=5, microseconds=1)
        store = self.engine(repo)
        reference = store.view_statistics(view(), start_us=None, end_us=us(first))
        current = store.view_statistics(
            view(), start_us=us(second), end_us=None, reference=reference.columns
        )
        frame = window_frame(table, second, None)
        for name in NUMERIC:
            values = np.sort(profiled(frame[name], TYPES[name]).dropna().to_numpy())
            expected = [
                int(np.searchsorted(values, g, side="right")) for g in reference.columns[name].grid
            ]
            assert current.columns[name].probe_cumulative == expected
            assert current.columns[name].probe_categories is None
        for name in CATEGORICAL:
            counts = profiled(frame[name], TYPES[name]).value_counts()
            expected = [int(counts.get(v, 0)) for v, _ in reference.columns[name].categories]
            assert current.columns[name].probe_categories == expected
        # Without a reference nothing is probed.
        assert reference.columns["rate"].probe_cumulative is None

    def test_file_statistics_of_a_saved_dataset(self, repo: Path) -> None:
        frame = window_frame(pq.read_table(repo / "data" / "stats.parquet"), None, None)
        renamed = {name: f"driver_stats__{name}" for name in TYPES}
        saved = pa.Table.from_pandas(
            frame[list(TYPES)].rename(columns=renamed), preserve_index=False
        )
        path = repo / "dataset.parquet"
        pq.write_table(saved, path)
        columns = {renamed[name]: dtype for name, dtype in TYPES.items()}
        profile = self.engine(repo).file_statistics(str(path), columns)
        assert list(profile.columns) == list(columns)
        check_profile(
            TableProfile(
                rows=profile.rows,
                columns={name: profile.columns[renamed[name]] for name in TYPES},
            ),
            frame,
        )
        with pytest.raises(QualityError, match="no column 'driver_stats__missing'"):
            self.engine(repo).file_statistics(str(path), {"driver_stats__missing": Float64})

    def test_profile_survives_json(self, repo: Path) -> None:
        profile = self.engine(repo).view_statistics(view(), start_us=None, end_us=None)
        text = json.dumps(profile.to_dict(), allow_nan=False)
        assert TableProfile.from_dict(json.loads(text)) == profile

    def test_read_window_streams_every_row_in_declared_types(self, repo: Path) -> None:
        start, end = T0 + timedelta(days=2), T0 + timedelta(days=6)
        config = RepoConfig(project="t", repo_path=repo, registry="sqlite://")
        engine = self.capable(self.open_engine(config), SupportsWindowReads)
        rows = engine.read_window(view(), start_us=us(start), end_us=us(end), batch_rows=300)
        try:
            batches = list(rows.batches())
        finally:
            rows.close()
        frame = window_frame(pq.read_table(repo / "data" / "stats.parquet"), start, end)
        assert (rows.keys, rows.rows_read) == (len(frame), len(frame))
        assert rows.max_created_us == us(frame["created"].max().to_pydatetime())
        assert max(b.num_rows for b in batches) <= 300
        table = pa.Table.from_batches(batches)
        assert table.column_names == ["driver_id", "event_timestamp", *TYPES]
        assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        for name, dtype in TYPES.items():
            assert table.schema.field(name).type == dtype.to_arrow()
        got = table.to_pandas().sort_values(["event_timestamp", "driver_id"]).reset_index(drop=True)
        want = frame.sort_values(["event_timestamp", "driver_id"]).reset_index(drop=True)
        assert got["driver_id"].tolist() == want["driver_id"].tolist()
        assert (
            got["event_timestamp"].tolist() == want["event_timestamp"].dt.tz_convert(UTC).tolist()
        )
        assert counts_of(got, "label") == counts_of(want, "label")
