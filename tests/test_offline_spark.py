"""The Spark engine: the whole offline engine contract on ``local[2]`` (windowed aggregations
included), plus what only Spark has (SparkSource tables, ``to_spark()``, a Spark DataFrame as
entity_df, materialization and aggregated retrieval through the facade, the capability errors)."""

from __future__ import annotations

import random
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aggregation_oracle import deduplicated, matches, window_rows
from conftest import require_redis
from contract_aggregations import (
    BASE,
    CITIES,
    DISTINCT_ERROR,
    PAIRS,
    RANK_ERROR,
    city_view,
    entity_instants,
    pair_view,
    write_cities,
    write_pairs,
)
from offline_contract import OfflineEngineContract, us
from online_state_oracle import close
from spark_session import PY4J_WARNINGS, spark  # noqa: F401 - the module's session fixture
from test_materialize import REDIS_URL

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, Policy, SparkSource
from featurestore.config import RepoConfig, SparkOfflineStoreConfig
from featurestore.definitions import content_hash
from featurestore.errors import AccessDeniedError, SourceSchemaError
from featurestore.governance.access import Principal
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import (
    FeatureRequest,
    LatestWindow,
    SupportsAggregations,
    SupportsEventReads,
    SupportsKeyCounts,
    SupportsStatistics,
    SupportsWindowReads,
    missing_capability,
)
from featurestore.offline.spark import SparkEngine
from featurestore.types import Float64, Int64

pytestmark = PY4J_WARNINGS


class TestSparkEngine(OfflineEngineContract):
    """Every contract test, on Spark local[2] (statistics are skipped: Spark lacks them);
    the aggregation oracle tests run for real."""

    __test__ = True
    engine_type = "spark"

    @pytest.fixture(autouse=True)
    def _session(self, spark: Any) -> None:  # noqa: F811
        """Engines opened by the contract reuse the module's running session."""


# -- what only Spark has -------------------------------------------------------------------------

T0 = datetime(2024, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
#: (driver, event time, created time, rate): driver 1 corrects its T0+1h row (created later).
ROWS = [
    (1, T0, T0, 0.1),
    (1, T0 + H, T0 + H, 0.2),
    (1, T0 + H, T0 + 2 * H, 0.3),
    (2, T0, T0, 0.5),
    (2, T0 + 3 * H, T0 + 3 * H, 0.6),
]
#: (driver, time) -> the rate the design's join gives (TTL one day).
ENTITY = [(2, T0 + 4 * H), (1, T0 + H), (9, T0), (1, T0 - H), (1, T0 + H), (2, T0 + H)]
EXPECTED = [0.6, 0.3, None, None, 0.3, 0.5]


def rates_table() -> pa.Table:
    ids, events, created, rates = (list(c) for c in zip(*ROWS, strict=True))
    stamp = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(events, stamp),
            "created": pa.array(created, stamp),
            "rate": pa.array(rates, pa.float64()),
        }
    )


def rates_view(source: FileSource, ttl: timedelta | None = timedelta(days=1)) -> FeatureView:
    return FeatureView(
        name="rates",
        entities=[DRIVER],
        ttl=ttl,
        schema=[Field(name="rate", dtype=Float64)],
        source=source,
    )


def entity_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [e[0] for e in ENTITY],
            "event_timestamp": [e[1] for e in ENTITY],
            "label": [f"row{i}" for i in range(len(ENTITY))],
        }
    )


def spark_engine(repo: Path) -> SparkEngine:
    config = RepoConfig(
        project="t",
        repo_path=repo,
        registry="sqlite://",
        offline_store=SparkOfflineStoreConfig(master="local[2]"),
    )
    engine = open_offline_engine(config)
    assert isinstance(engine, SparkEngine)
    return engine


def request(view: FeatureView) -> FeatureRequest:
    return FeatureRequest(view, ("rate",), ("rate",))


def test_spark_source_reads_a_table_of_the_warehouse(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    spark.createDataFrame(rates_table()).write.mode("overwrite").saveAsTable("rates_tbl")
    view = rates_view(
        SparkSource(name="rates_src", table="rates_tbl", created_timestamp_column="created")
    )
    engine = spark_engine(tmp_path)
    result = engine.get_historical_features(entity_frame(), [request(view)]).to_pandas()
    assert result["label"].tolist() == [f"row{i}" for i in range(len(ENTITY))]
    assert [None if pd.isna(v) else v for v in result["rate"]] == EXPECTED
    window = LatestWindow(start_us=None, end_us=us(T0 + 2 * H))
    with closing(engine.latest_per_entity(view, window, batch_rows=10)) as latest:
        table = pa.Table.from_batches(list(latest.batches()))
        assert (latest.keys, latest.rows_read) == (2, 4)
    assert dict(zip(table["driver_id"].to_pylist(), table["rate"].to_pylist(), strict=True)) == {
        1: 0.3,
        2: 0.5,
    }
    # Erasure's key counts name the table when it is not file-based (a saved table is files).
    counts = engine.count_entity_rows(view, {"driver_id": 1})
    assert sum(counts.values()) == 3
    engine.close()


def test_spark_source_is_stored_in_the_registry_and_part_of_the_hash(tmp_path: Path) -> None:
    source = SparkSource(name="rates_src", table="lake.rates", created_timestamp_column="created")
    view = rates_view(source)
    rebuilt = FeatureView.from_dict(view.to_dict())  # as the registry rebuilds it
    assert isinstance(rebuilt.source, SparkSource)
    assert rebuilt.source == source
    assert rebuilt.source.table == "lake.rates"
    other = rates_view(SparkSource(name="rates_src", table="lake.rates_v2"))
    assert content_hash(view.spec()) != content_hash(other.spec())


def test_duckdb_refuses_a_spark_source_naming_it_and_the_engine(tmp_path: Path) -> None:
    view = rates_view(SparkSource(name="rates_src", table="rates_tbl"))
    engine = open_offline_engine(RepoConfig(project="t", repo_path=tmp_path, registry="sqlite://"))
    with pytest.raises(SourceSchemaError, match=r"'rates_src' is a SparkSource.*'duckdb'"):
        engine.get_historical_features(entity_frame(), [request(view)])


def test_spark_dataframe_entity_and_to_spark(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    pq.write_table(rates_table(), tmp_path / "rates.parquet")
    view = rates_view(FileSource(path="rates.parquet", created_timestamp_column="created"))
    engine = spark_engine(tmp_path)
    entity = spark.createDataFrame(entity_frame()).repartition(1)
    job = engine.get_historical_features(entity, [request(view)])
    frame = job.to_spark()
    assert frame.columns == ["driver_id", "event_timestamp", "label", "rate"]
    rows = frame.collect()
    assert [r["label"] for r in rows] == [f"row{i}" for i in range(len(ENTITY))]
    assert [r["rate"] for r in rows] == EXPECTED
    assert job.to_arrow().column("rate").to_pylist() == EXPECTED
    # The same job from pandas, and its own to_spark(): the same rows in the same order.
    from_pandas = engine.get_historical_features(entity_frame(), [request(view)])
    assert [r["rate"] for r in from_pandas.to_spark().collect()] == EXPECTED
    assert from_pandas.to_arrow().column("rate").to_pylist() == EXPECTED
    engine.close()


def test_statistics_and_window_reads_are_absent_with_a_clear_error(tmp_path: Path) -> None:
    engine = spark_engine(tmp_path)
    assert not isinstance(engine, SupportsStatistics | SupportsWindowReads)
    assert isinstance(engine, SupportsKeyCounts | SupportsEventReads)
    assert isinstance(engine, SupportsAggregations)
    error = missing_capability(engine, SupportsStatistics, "compute statistics")
    assert "offline engine 'spark' cannot compute statistics" in str(error)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_materialize_through_the_facade(spark: Any, tmp_path: Path, backend: str) -> None:  # noqa: F811
    online = (
        f"{{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}"
        if backend == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}"
    )
    if backend == "redis":
        require_redis(REDIS_URL)
    (tmp_path / "data").mkdir()
    pq.write_table(rates_table(), tmp_path / "data" / "rates.parquet")
    project = f"spark_{uuid.uuid4().hex[:10]}"
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///{tmp_path / 'data' / 'registry.db'}\n"
        "offline_store: {type: spark, master: 'local[2]', conf: {spark.sql.shuffle.partitions: '1'}}\n"
        f"online_store: {online}\n"
    )
    store = FeatureStore(tmp_path)
    try:
        assert store.config.offline_store.type == "spark"
        # No TTL: online reads would otherwise find these 2024 rows expired by the wall clock.
        source = FileSource(path="data/rates.parquet", created_timestamp_column="created")
        view = rates_view(source, ttl=None)
        store.apply([DRIVER, view])
        report = store.materialize(T0 - H, T0 + 2 * H)
        assert (report.view("rates").keys, report.view("rates").rows_read) == (2, 4)
        found = store.get_online_features(["rates:rate"], [{"driver_id": 1}, {"driver_id": 2}])
        assert found.to_dict()["rate"] == [0.3, 0.5]
        # Incremental: only what arrived since the watermark (driver 2's T0+3h row).
        report = store.materialize_incremental(T0 + 4 * H)
        assert report.view("rates").keys == 1
        found = store.get_online_features(["rates:rate"], [{"driver_id": 1}, {"driver_id": 2}])
        assert found.to_dict()["rate"] == [0.3, 0.6]
        training = store.get_historical_features(entity_frame(), ["rates:rate"]).to_pandas()
        assert [None if pd.isna(v) else v for v in training["rate"]] == EXPECTED
    finally:
        store.teardown()
        store.close()


def test_aggregated_views_through_the_facade(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    """An analyst retrieves an aggregated view on Spark from a Spark DataFrame (values equal the
    oracle's) and a principal without read_offline is denied."""
    rng = random.Random(17)
    rows = write_cities(tmp_path, rng, 120)
    view = city_view()
    (tmp_path / "featurestore.yaml").write_text(
        f"project: sparkagg_{uuid.uuid4().hex[:8]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        "offline_store: {type: spark, master: 'local[2]'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    policies = [
        Policy(name="admins", roles=["admin"], actions=["admin"]),
        Policy(name="analysts", roles=["analyst"], actions=["describe", "read_offline"]),
    ]
    with FeatureStore(tmp_path, principal=Principal("root", frozenset({"admin"}))) as admin:
        admin.apply([*view.entities, view, *policies])
    entities = [
        {"city": rng.choice([*CITIES, "Lyon"]), "event_timestamp": t}
        for t in entity_instants(rng, rows, 30)
    ]
    features = [f"cities:{name}" for name in view.feature_names]
    with FeatureStore(tmp_path, principal=Principal("bob", frozenset({"analyst"}))) as analyst:
        job = analyst.get_historical_features(
            spark.createDataFrame(pd.DataFrame(entities)), features
        )
        got = job.to_spark().toArrow().to_pydict()
    assert got["city"] == [e["city"] for e in entities]
    events = deduplicated(rows, view.join_keys, view.event_id)
    for index, entity in enumerate(entities):
        for agg in view.aggregations:
            chosen = window_rows(
                events, {"city": entity["city"]}, entity["event_timestamp"], agg.window
            )
            found = got[agg.name][index]
            assert matches(agg, found, chosen, rank_error=0, distinct_error=0), (index, agg.name)
    stranger = FeatureStore(tmp_path, principal=Principal("eve"))
    with stranger, pytest.raises(AccessDeniedError, match="read_offline"):
        stranger.get_historical_features(pd.DataFrame(entities), features)


def test_aggregated_view_materializes_through_spark_like_the_oracle(
    spark: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Materializing an aggregated view with Spark (two files, late events, replayed event ids,
    null created times) into SQLite: online lookups at each run's end equal the brute-force
    oracle and Spark's offline retrieval at that instant; a principal without materialize is
    denied."""
    rng = random.Random(29)
    rows = write_pairs(tmp_path, rng, 160)
    view = pair_view(windows=[timedelta(hours=1), timedelta(hours=36), None])
    (tmp_path / "featurestore.yaml").write_text(
        f"project: sparkmat_{uuid.uuid4().hex[:8]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        "offline_store: {type: spark, master: 'local[2]', conf: {spark.sql.shuffle.partitions: '2'}}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}\n"
    )
    events = deduplicated(rows, view.join_keys, view.event_id)
    pairs = [*PAIRS, (5, 5)]
    features = [f"{view.name}:{agg.name}" for agg in view.aggregations]
    exact = [agg for agg in view.aggregations if agg.spec_of_function.exact]
    with FeatureStore(tmp_path, principal=Principal("root", frozenset({"admin"}))) as store:
        store.apply([*view.entities, view, Policy(name="a", roles=["admin"], actions=["admin"])])
        with (
            FeatureStore(tmp_path, principal=Principal("eve")) as stranger,
            pytest.raises(AccessDeniedError, match="materialize"),
        ):
            stranger.materialize(BASE, BASE + timedelta(days=1), progress=False)
        for at in sorted(entity_instants(rng, rows, 3)):  # runs move forward
            report = store.materialize(BASE - timedelta(days=1), at, progress=False)
            assert report.view(view.name).rows_read > 0
            online = store.get_online_features(
                features, entity_rows=[{"a": a, "b": b} for a, b in pairs], as_of=at
            ).to_dict()
            entity_df = pd.DataFrame(
                {"a": [a for a, _ in pairs], "b": [b for _, b in pairs], "event_timestamp": at}
            )
            offline = store.get_historical_features(entity_df, features).to_arrow().to_pydict()
            for index, (a, b) in enumerate(pairs):
                for agg in view.aggregations:
                    chosen = window_rows(events, {"a": a, "b": b}, at, agg.window)
                    got = online[agg.name][index]
                    assert matches(
                        agg, got, chosen, rank_error=RANK_ERROR, distinct_error=DISTINCT_ERROR
                    ), (at, a, b, agg.name, got)
                for agg in exact:
                    want = offline[agg.name][index]
                    assert close(online[agg.name][index], want), (at, a, b, agg.name, want)


def test_read_events_equal_duckdb_row_for_row(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    """The same files read by Spark and DuckDB: the same events (first copies of replays,
    across files), columns, types, order, file sequence and counts, in batches of at most
    ``batch_rows``, for random ranges and retention cut-offs."""
    rng = random.Random(31)
    rows = write_pairs(tmp_path, rng, 150)
    write_cities(tmp_path, rng, 60)
    spark_side = spark_engine(tmp_path)
    duck = open_offline_engine(RepoConfig(project="t", repo_path=tmp_path, registry="sqlite://"))
    assert isinstance(duck, SupportsEventReads)
    times = sorted(us(r["ts"]) for r in rows if r["ts"] is not None)
    cases = [(pair_view(windows=[None]), None, times[-1], None)]
    for _ in range(3):
        low, high = sorted(rng.sample(times, 2))
        cases.append((pair_view(created=rng.random() < 0.5, windows=[None]), low, high, None))
    cases.append((pair_view(windows=[None]), None, times[-1], rng.choice(times)))
    cases.append((city_view(), rng.choice([None, times[0]]), rng.choice(times), None))
    for view, after_us, end_us, not_before_us in cases:
        read = [
            engine.read_events(
                view, after_us=after_us, end_us=end_us, not_before_us=not_before_us, batch_rows=7
            )
            for engine in (spark_side, duck)
        ]
        with closing(read[0]) as got, closing(read[1]) as want:
            batches = list(got.batches())
            assert all(b.num_rows <= 7 for b in batches)
            expected = pa.Table.from_batches(list(want.batches()))
            table = pa.Table.from_batches(batches)
            assert table.schema.names == expected.schema.names
            assert table.schema.types == expected.schema.types
            assert table.num_rows > 0, (view.name, after_us, end_us)
            assert table.to_pylist() == expected.to_pylist(), (view.name, after_us, end_us)
            assert (got.rows_read, got.keys) == (want.rows_read, want.keys)
    duck.close()
    spark_side.close()
