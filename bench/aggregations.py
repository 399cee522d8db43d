"""Windowed aggregations offline: featurestore's tiled plan vs the SQL a user would write.

    python bench/aggregations.py                                   # 100k drivers, 50M trips, 1M rows
    python bench/aggregations.py --drivers 10000 --entity-rows 100000   # a smaller run

The workload: ``--drivers`` drivers with 500 trips each over 30 days on average (the trips of
``repo/generate_data.py``: 50M events for 100,000 drivers), and an entity frame of
``--entity-rows`` (driver, instant) rows uniform over the period. Six aggregations over 1h, 1d
and 7d windows are computed at every entity row:

* **ours**: ``store.get_historical_features`` on an aggregated view (the DuckDB engine's plan:
  tile partial aggregates for each window's interior, raw events only for its two edge tiles);
* **range join**: the straightforward DuckDB SQL, a join of each entity row to its driver's trips
  of the last 7 days (``t.driver_id = e.driver_id AND t.ts > e.ts - 7 days AND t.ts <= e.ts``)
  and a ``GROUP BY`` with one ``FILTER`` per window.

Each runs in a fresh process with the same DuckDB settings (``--threads``, ``--memory-limit``);
the time is the query to a pandas frame, the peak memory the child's ``ru_maxrss``. The two
results are then compared cell by cell (floats within 1e-9 relative). Data is cached under
``bench/data/aggs-<drivers>-<rows>-<seed>/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import (
    DATA_ROOT,
    ChildResult,
    emit_result,
    guarded,
    load_generator,
    machine_summary,
    peak_rss_mb,
    print_results,
    run_child,
    script_entry,
    stopwatch,
    work_dir,
)

DAYS = 30
ROW_ID = "row_id"
#: (feature name, SQL of the range join's aggregate, window) for the six aggregations.
AGGREGATIONS = [
    ("trips_1h", "count(t.trip_id)", timedelta(hours=1)),
    ("fare_sum_1h", "sum(t.fare)", timedelta(hours=1)),
    ("trips_1d", "count(t.trip_id)", timedelta(days=1)),
    ("fare_mean_1d", "avg(t.fare)", timedelta(days=1)),
    ("fare_max_7d", "max(t.fare)", timedelta(days=7)),
    ("fare_stddev_7d", "stddev_samp(t.fare)", timedelta(days=7)),
]
DEFINITIONS = """\
from datetime import timedelta
from featurestore import Aggregation, Entity, FeatureView, Field, FileSource
from featurestore.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
trips = FeatureView(
    name="trips",
    entities=[driver],
    source=FileSource(path="{trips}", timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
    schema=[Field(name="trip_id", dtype=Int64), Field(name="fare", dtype=Float64)],
    aggregations=[
        Aggregation("trip_id", "count", timedelta(hours=1), name="trips_1h"),
        Aggregation("fare", "sum", timedelta(hours=1)),
        Aggregation("trip_id", "count", timedelta(days=1), name="trips_1d"),
        Aggregation("fare", "mean", timedelta(days=1)),
        Aggregation("fare", "max", timedelta(days=7)),
        Aggregation("fare", "stddev", timedelta(days=7)),
    ],
)
"""


def ensure_data(drivers: int, entity_rows: int, seed: int) -> Path:
    """Trips and the entity frame, generated once per (drivers, rows, seed)."""
    out = DATA_ROOT / f"aggs-{drivers}-{entity_rows}-{seed}"
    marker = out / "workload.json"
    if marker.is_file():
        print(f"reusing cached workload {out}")
        return out
    gen = load_generator()
    start_us = gen.end_us(gen.END) - DAYS * gen.DAY_US
    out.mkdir(parents=True, exist_ok=True)
    trips = gen.trip_batches(drivers, DAYS, start_us, seed)
    rows = gen._write(out / gen.TRIPS_FILE, gen.TRIP_SCHEMA, trips, lambda m: None)
    rng = np.random.default_rng([seed, 99])
    ts = start_us + rng.integers(0, DAYS * gen.DAY_US, size=entity_rows, dtype=np.int64)
    entity = pa.table(
        {
            "driver_id": rng.integers(1, drivers, size=entity_rows, endpoint=True, dtype=np.int64),
            "event_timestamp": pa.array(ts.astype("datetime64[us]")).cast(gen.TIMESTAMP),
            ROW_ID: np.arange(entity_rows, dtype=np.int64),
        }
    )
    pq.write_table(entity, out / "entity_df.parquet")
    marker.write_text(json.dumps({"drivers": drivers, "trips": rows, "entity_rows": entity_rows}))
    print(f"generated {rows:,} trips of {drivers:,} drivers and {entity_rows:,} entity rows")
    return out


# -- child processes -----------------------------------------------------------------------------


def child_ours(repo: str, entity: str, out: str) -> None:
    from featurestore import FeatureStore

    frame = pq.read_table(entity).to_pandas()
    with FeatureStore(repo_path=repo) as store:
        store.list_feature_views()
        refs = [f"trips:{name}" for name, _, _ in AGGREGATIONS]
        with stopwatch() as elapsed:
            result = store.get_historical_features(entity_df=frame, features=refs).to_pandas()
        peak = peak_rss_mb()
    result.to_parquet(out)
    emit_result({"seconds": elapsed[0], "peak_mb": peak, "rows": len(result)})


def child_range_join(data: str, entity: str, out: str, threads: int, memory: str) -> None:
    import duckdb

    frame = pq.read_table(entity).to_pandas()  # noqa: F841 - the SQL reads it by name
    connection = duckdb.connect(config={"threads": threads, "memory_limit": memory})
    connection.execute("SET TimeZone = 'UTC'")
    longest = max(window for _, _, window in AGGREGATIONS)
    columns = ", ".join(
        f"{sql} FILTER (WHERE t.event_timestamp > e.event_timestamp - INTERVAL "
        f"{int(window.total_seconds())} SECOND) AS {name}"
        for name, sql, window in AGGREGATIONS
    )
    sql = f"""
        SELECT e.{ROW_ID}, any_value(e.driver_id) AS driver_id,
               any_value(e.event_timestamp) AS event_timestamp, {columns}
        FROM frame AS e
        LEFT JOIN read_parquet('{data}/trips.parquet') AS t
          ON t.driver_id = e.driver_id
         AND t.event_timestamp <= e.event_timestamp
         AND t.event_timestamp > e.event_timestamp - INTERVAL {int(longest.total_seconds())} SECOND
        GROUP BY e.{ROW_ID}
        ORDER BY e.{ROW_ID}
    """
    with stopwatch() as elapsed:
        result = connection.execute(sql).fetch_df()
    peak = peak_rss_mb()
    result.to_parquet(out)
    emit_result({"seconds": elapsed[0], "peak_mb": peak, "rows": len(result)})


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aggregations.py --child")
    parser.add_argument("kind", choices=["ours", "range-join"])
    parser.add_argument("--repo")
    parser.add_argument("--data")
    parser.add_argument("--entity", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args(argv)
    if args.kind == "ours":
        return guarded(lambda: child_ours(args.repo, args.entity, args.out))
    return guarded(
        lambda: child_range_join(args.data, args.entity, args.out, args.threads, args.memory_limit)
    )


# -- comparing -----------------------------------------------------------------------------------


def compare(ours: Path, theirs: Path) -> dict[str, int]:
    """Cells that differ per feature (null == null; 0 == an empty window's null count)."""
    names = [name for name, _, _ in AGGREGATIONS]
    a = pq.read_table(ours, columns=[ROW_ID, *names]).sort_by(ROW_ID)
    b = pq.read_table(theirs, columns=[ROW_ID, *names]).sort_by(ROW_ID)
    differ: dict[str, int] = {}
    for name in names:
        x = a[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
        y = b[name].cast(pa.float64()).to_numpy(zero_copy_only=False)
        same = np.isclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)
        differ[name] = int((~same).sum())
    return differ


def write_repo(work: Path, project: str, offline_store: str, data: Path) -> Path:
    """The benchmark's repository in ``work``: the trips view over ``data``'s trips, the given
    ``offline_store`` settings (YAML flow mapping), an embedded online store."""
    repo = work / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "features.py").write_text(DEFINITIONS.format(trips=data / "trips.parquet"))
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///data/registry.db\n"
        f"offline_store: {offline_store}\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
    )
    return repo


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", type=int, default=100_000)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit of both")
    parser.add_argument("--memory-cap-gb", type=float, default=12.0)
    parser.add_argument("--skip-range-join", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    data = ensure_data(args.drivers, args.entity_rows, args.seed)
    entity = str(data / "entity_df.parquet")
    cap = args.memory_cap_gb * 1024
    print(machine_summary())
    with work_dir(args.keep) as work:
        repo = write_repo(
            work,
            "aggs_bench",
            f"{{type: duckdb, threads: {args.threads}, memory_limit: {args.memory_limit}}}",
            data,
        )
        from featurestore import FeatureStore  # the parent only applies

        with FeatureStore(repo_path=repo) as store:
            from featurestore.loader import load_repo

            store.apply(load_repo(repo).objects)
        script = str(Path(__file__).resolve())
        results: list[ChildResult] = [
            run_child(
                "featurestore (tiles)",
                [script, "--child", "ours", "--repo", str(repo), "--entity", entity,
                 "--out", str(work / "ours.parquet")],
                memory_cap_mb=cap,
            )
        ]  # fmt: skip
        if not args.skip_range_join:
            results.append(
                run_child(
                    "DuckDB range join + GROUP BY",
                    [script, "--child", "range-join", "--data", str(data), "--entity", entity,
                     "--out", str(work / "theirs.parquet"), "--threads", str(args.threads),
                     "--memory-limit", args.memory_limit],
                    memory_cap_mb=cap,
                )
            )  # fmt: skip
        print_results(
            f"{args.entity_rows:,} entity rows x 6 aggregations (1h, 1d, 7d) over the trips of "
            f"{args.drivers:,} drivers",
            results,
        )
        if len(results) == 2 and all(r.ok for r in results):
            differ = compare(work / "ours.parquet", work / "theirs.parquet")
            print(f"  cells that differ from the range join: {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
