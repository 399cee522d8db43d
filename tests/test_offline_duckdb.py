"""The DuckDB engine: the offline engine contract, plus what only DuckDB has (its settings,
no extension installs at run time, the sampled profiling path)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from contract_pit_oracle import PitOracleContract
from contract_stats import DRIVER, T0, check_numeric, ranked
from offline_contract import OfflineEngineContract

from featurestore.config import OfflineStoreConfig, RepoConfig
from featurestore.definitions import FeatureView, Field, FileSource
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import OfflineEngine
from featurestore.offline.duckdb import DuckDBEngine
from featurestore.offline.duckdb.duckdb_stats import ProfileOptions
from featurestore.quality.profile import TableProfile
from featurestore.types import Float64, Int64, String


class TestDuckDBEngine(OfflineEngineContract):
    """Every contract test, on DuckDB."""

    __test__ = True
    engine_type = "duckdb"


class _FixedNearWindow(PitOracleContract):
    """The oracle on views without TTL with the near window of their plan fixed (the engine
    measures it from the data otherwise), so each stage is checked on its own."""

    engine_type = "duckdb"
    near_window_us: int
    # The retention cut-offs reach both stages through the same scan: the default run covers them.
    test_engine_matches_oracle_with_retention_cutoffs = None  # type: ignore[assignment]
    test_filter_scenarios_exercise_the_filter = None  # type: ignore[assignment]

    # Fewer seeds than the default run: the seeds only matter through their views without TTL.
    @pytest.mark.parametrize("seed", range(12))
    def test_engine_matches_oracle(self, tmp_path: Path, seed: int) -> None:
        super().test_engine_matches_oracle(tmp_path, seed)

    @pytest.mark.parametrize("seed", range(8))
    def test_engine_matches_oracle_filtering_by_created_timestamp(
        self, tmp_path: Path, seed: int
    ) -> None:
        super().test_engine_matches_oracle_filtering_by_created_timestamp(tmp_path, seed)

    def open_engine(self, config: RepoConfig) -> OfflineEngine:
        engine = super().open_engine(config)
        assert isinstance(engine, DuckDBEngine)
        engine.near_window_us = self.near_window_us
        return engine


class TestDuckDBFarStage(_FixedNearWindow):
    """A one-microsecond near window: only entity rows exactly at an event time find their value
    in the near stage, every other row takes the far stage (the ASOF join on its keys' rows)."""

    __test__ = True
    near_window_us = 1


class TestDuckDBNearStage(_FixedNearWindow):
    """A near window wider than the scenarios (12 hours of data): the near stage serves every row
    that has a value; the far stage only sees rows without one."""

    __test__ = True
    near_window_us = 10 * 86_400 * 1_000_000


def duckdb_engine(repo: Path, offline: OfflineStoreConfig | None = None) -> DuckDBEngine:
    """The DuckDB engine over ``repo``, opened through the table as the facade opens it."""
    config = RepoConfig(
        project="t",
        repo_path=repo,
        registry="sqlite://",
        offline_store=offline or OfflineStoreConfig(),
    )
    engine = open_offline_engine(config)
    assert isinstance(engine, DuckDBEngine)
    return engine


def test_memory_limit_temp_directory_and_threads_are_applied(tmp_path: Path) -> None:
    engine = duckdb_engine(
        tmp_path, OfflineStoreConfig(memory_limit="300MB", temp_directory="spill", threads=1)
    )
    connection = engine.connection()
    settings = connection.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory'), current_setting('threads'), "
        "current_setting('TimeZone'), current_setting('autoinstall_known_extensions')"
    ).fetchone()
    assert settings is not None
    memory, temp, threads, zone, autoinstall = settings
    assert memory.replace(" ", "") in {"286.1MiB", "300.0MB"}
    assert Path(temp) == tmp_path / "spill"
    assert (threads, zone, autoinstall) == (1, "UTC", False)


def test_parquet_and_time_zone_functions_work_without_installing_anything(tmp_path: Path) -> None:
    connection = duckdb_engine(tmp_path).connection()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "x.parquet")
    row = connection.execute(
        f"SELECT sum(x), timezone('Asia/Tokyo', TIMESTAMPTZ '2024-01-01 00:00:00+00') FROM read_parquet('{tmp_path / 'x.parquet'}')"
    ).fetchone()
    assert row == (1, datetime(2024, 1, 1, 9, 0))


def skewed(seed: int, rows: int) -> pa.Table:
    """Columns whose ten most frequent values stand out (a sample finds them) next to a
    column of distinct floats."""
    rng = np.random.default_rng(seed)
    common = rng.choice(20, rows, p=np.r_[np.full(10, 0.08), np.full(10, 0.02)])
    rare = rng.integers(100, 100_000, rows)
    mixed = np.where(rng.random(rows) < 0.6, common, rare)
    events = [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, rows)]
    return pa.table(
        {
            "driver_id": pa.array(rng.integers(1, 50, rows), pa.int64()),
            "event_timestamp": pa.array(events, pa.timestamp("us", tz="UTC")),
            "trips": pa.array(mixed, pa.int64()),
            "distance": pa.array(rng.normal(10, 3, rows), pa.float64()),
            "label": pa.array([f"v{v}" for v in mixed], pa.string()),
        }
    )


def test_sampled_profile_is_still_exact(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    table = skewed(3, 30_000)
    pq.write_table(table, tmp_path / "data" / "skewed.parquet")
    types = {"trips": Int64, "distance": Float64, "label": String}
    skewed_view = FeatureView(
        name="skewed",
        entities=[DRIVER],
        schema=[Field(name=n, dtype=t) for n, t in types.items()],
        source=FileSource(path="data/skewed.parquet"),
    )
    sampled = ProfileOptions(sample_rows=1_000, exact_top_distinct=10)
    profile = profile_view(tmp_path, skewed_view, sampled)
    frame = table.to_pandas()
    for name in ("trips", "distance"):
        check_numeric(profile.columns[name], frame[name], types[name])
    # The sample found the ten frequent values, counted exactly.
    assert profile.columns["trips"].top_values == ranked(frame["trips"].astype("float64"))[:10]
    label = profile.columns["label"]
    assert label.categories[:10] == ranked(frame["label"])[:10]
    counts = frame["label"].value_counts()
    assert all(counts[v] == n for v, n in label.categories)
    # The grid comes from the sample: sorted, about 1% of the values per step.
    grid = profile.columns["distance"].grid
    assert len(grid) == 101
    assert grid == sorted(grid)
    steps = np.diff(profile.columns["distance"].cumulative[1:-1])
    assert steps.max() < 0.03 * len(frame)


def profile_view(repo: Path, feature_view: FeatureView, options: ProfileOptions) -> TableProfile:
    """The engine's profile of the whole view, with non-default sampling options."""
    store = duckdb_engine(repo)
    store.profile_options = options
    return store.view_statistics(feature_view, start_us=None, end_us=None)
