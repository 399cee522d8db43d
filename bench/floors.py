"""What any plan must pay: the primitive steps under the two goals not met (issues 11 and 14).

    python bench/floors.py aggregations   # the 50M trips of aggregations.py (generated if absent)
    python bench/floors.py historical     # key-sorted L of historical.py (run it once first)

Each step is one DuckDB query (2 threads, ``--memory-limit``) in a fresh process, timed to its
last row; the peak memory is the child's ``ru_maxrss``. The steps are not plans: they are the
cheapest operations a plan of that kind is made of (reading the columns it needs once, grouping
or joining them once, handing them to Python once), so their times bound what any plan built
from them can reach, next to the reference each goal is measured against (the range join of
``aggregations.py``, Feast in ``historical.py``). Figures and what they mean: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import (
    DATA_ROOT,
    ChildResult,
    emit_result,
    guarded,
    machine_summary,
    peak_rss_mb,
    run_child,
    script_entry,
    stopwatch,
)

DAY_US = 86_400_000_000
BUCKET_US = 4 * 7_200_000_000  # the driver view's bucket: 4 TTLs of 2 hours
TTL_US = 7_200_000_000


def _trips(data: Path) -> str:
    return f"read_parquet('{data}/trips.parquet')"


def _drivers(data: Path) -> str:
    return f"read_parquet('{data}/driver_stats.parquet', file_row_number = true)"


def aggregation_steps(data: Path) -> dict[str, str]:
    """The steps of an exact windowed aggregation over the trips (key, time, fare, trip id)."""
    trips = _trips(data)
    ts = "epoch_us(event_timestamp)"
    return {
        "read the 4 columns once": (
            f"SELECT count(trip_id), sum(fare), max({ts}), max(driver_id) FROM {trips}"
        ),
        "read + one GROUP BY into (key, day) partials": (
            f"SELECT count(*), sum(n) FROM (SELECT driver_id, {ts} // {DAY_US} AS d, "
            f"count(trip_id) AS n, sum(fare) AS s, max(fare) AS hi FROM {trips} GROUP BY ALL)"
        ),
        "read + hand the 4 columns to Python (Arrow)": (
            f"SELECT driver_id, {ts} AS ts, fare, trip_id IS NOT NULL AS t FROM {trips}"
        ),
        "read + sort by (key, time)": (
            f"SELECT sum(r) FROM (SELECT row_number() OVER (ORDER BY driver_id, {ts}) AS r "
            f"FROM {trips})"
        ),
        "read + running sums per key (window)": (
            f"SELECT sum(c), sum(s) FROM (SELECT count(trip_id) OVER w AS c, sum(fare) OVER w AS s "
            f"FROM {trips} WINDOW w AS (PARTITION BY driver_id ORDER BY {ts} "
            "ROWS UNBOUNDED PRECEDING))"
        ),
    }


def historical_steps(data: Path) -> dict[str, str]:
    """The steps of the driver view's point-in-time join on key-sorted L (TTL 2 h)."""
    drivers = _drivers(data)
    entity = f"read_parquet('{data}/entity_df.parquet')"
    expanded = (
        f"SELECT row_number() OVER () AS r, driver_id AS k, epoch_us(event_timestamp) AS ts, "
        f"epoch_us(event_timestamp) // {BUCKET_US} - d AS b FROM {entity}, (VALUES (0), (1)) s(d) "
        f"WHERE d = 0 OR (epoch_us(event_timestamp) - {TTL_US}) // {BUCKET_US} "
        f"< epoch_us(event_timestamp) // {BUCKET_US}"
    )
    return {
        "read key, time, created, position": (
            "SELECT max(driver_id), max(event_timestamp), max(created), max(file_row_number) "
            f"FROM {drivers}"
        ),
        "read all 8 columns": (
            "SELECT max(driver_id), max(event_timestamp), max(created), max(file_row_number), "
            "sum(conv_rate), sum(acc_rate), sum(avg_daily_trips), sum(trip_distance) "
            f"FROM {drivers}"
        ),
        "read key + time, probe the bucket join, count": (
            f"SELECT count(*) FROM ({expanded}) AS e JOIN (SELECT driver_id AS k, "
            f"epoch_us(event_timestamp) AS ets FROM {drivers}) AS f ON f.k = e.k "
            f"AND f.ets // {BUCKET_US} = e.b WHERE f.ets <= e.ts AND f.ets >= e.ts - {TTL_US}"
        ),
    }


def child_step(sql: str, memory: str) -> None:
    import duckdb

    connection = duckdb.connect(config={"threads": 2, "memory_limit": memory})
    connection.execute("SET TimeZone = 'UTC'")
    with stopwatch() as elapsed:
        rows = connection.sql(sql).to_arrow_table().num_rows
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb(), "rows": rows})


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="floors.py --child")
    parser.add_argument("what", choices=["aggregations", "historical"])
    parser.add_argument("step")
    parser.add_argument("--data", required=True)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args(argv)
    steps = (aggregation_steps if args.what == "aggregations" else historical_steps)(
        Path(args.data)
    )
    return guarded(lambda: child_step(steps[args.step], args.memory_limit))


def _data(what: str, seed: int) -> Path:
    if what == "aggregations":
        import aggregations

        return aggregations.ensure_data(100_000, 1_000_000, seed)
    data = DATA_ROOT / f"L-key-sorted-{seed}"
    if not (data / "driver_stats.parquet").is_file():
        raise SystemExit(
            f"no key-sorted L workload in {data}: run "
            "bench/historical.py --size L --layout key-sorted once to generate it"
        )
    return data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["aggregations", "historical"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args(argv)
    data = _data(args.what, args.seed)
    print(machine_summary())
    steps = (aggregation_steps if args.what == "aggregations" else historical_steps)(data)
    script = str(Path(__file__).resolve())
    results: list[ChildResult] = [
        run_child(
            step,
            [script, "--child", args.what, step, "--data", str(data),
             "--memory-limit", args.memory_limit],
        )
        for step in steps
    ]  # fmt: skip
    print(f"\n{args.what}: primitive steps on {data.name} (DuckDB, 2 threads)")
    print(f"  {'step':<50} {'seconds':>9} {'peak MB':>9}")
    for r in results:
        shown = f"{r.seconds:>9.2f} {r.peak_mb:>9.0f}" if r.ok else f"FAILED {r.error}"
        print(f"  {r.label:<50} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
