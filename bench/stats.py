"""Statistics benchmark: profile every feature of ``driver_hourly_stats`` (L: 65M rows).

    python bench/stats.py --size L               # featurestore (DuckDB) vs pandas
    python bench/stats.py --size S --days 7      # the last 7 days of the window only
    python bench/stats.py --size L --facade      # also time FeatureStore.statistics

Ours is the offline engine's ``view_statistics`` (what ``featurestore stats VIEW`` runs) over the
example repository's driver view, reading the cached Parquet file: per feature count, nulls,
approximate distinct count, min, max, mean, sample standard deviation, seven exact quantiles,
the ten most frequent values, a 101-point percentile grid and the exact count of values at or
below each of its points. Feast has no equivalent, so the baseline is the same statistics with
pandas in the same run: read the file's columns, drop rows without key or timestamp, keep the
window, then ``describe``-style aggregates, ``quantile``, ``value_counts`` and ``nunique`` (exact)
per feature, and the grid counts with numpy (``searchsorted`` on a sorted copy).

Each engine runs in a fresh child process; the time is the computation alone (pandas: reading
the file included, as ours reads it too), the peak memory the child's ``ru_maxrss``. Afterwards
the two results are compared: quantiles, means and grid counts must agree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    ChildResult,
    emit_result,
    ensure_workload,
    guarded,
    load_generator,
    machine_summary,
    peak_rss_mb,
    print_results,
    run_child,
    script_entry,
    stopwatch,
    views_for,
    work_dir,
    workload_window,
)
from repos import build_our_repo, child_apply_ours

ME = str(Path(__file__).resolve())
VIEW = "driver_hourly_stats"
FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips", "trip_distance")
QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _digest(columns: dict[str, dict[str, Any]]) -> str:
    """What the parent compares, as JSON (floats survive the trip exactly)."""
    return json.dumps(columns)


# -- child processes -----------------------------------------------------------------------------


def child_ours(repo: str, start: datetime, end: datetime) -> None:
    """Time the engine's ``view_statistics`` of the driver view over the window."""
    from featurestore.config import load_config
    from featurestore.loader import load_repo
    from featurestore.offline.backends import open_offline_engine
    from featurestore.offline.base import SupportsStatistics

    [view] = [v for v in load_repo(repo).feature_views if v.name == VIEW]
    engine = open_offline_engine(load_config(repo))
    assert isinstance(engine, SupportsStatistics)
    with stopwatch() as elapsed:
        profile = engine.view_statistics(view, start_us=_micros(start), end_us=_micros(end))
    peak = peak_rss_mb()
    digest = {
        name: {
            "rows": c.rows,
            "nulls": c.nulls,
            "mean": c.mean,
            "quantiles": c.quantiles,
            "top": [[float(v), n] for v, n in c.top_values],
            "grid": c.grid,
            "cumulative": c.cumulative,
            "distinct": c.distinct,
        }
        for name, c in profile.columns.items()
    }
    emit_result(
        {"seconds": elapsed[0], "peak_mb": peak, "rows": profile.rows, "digest": _digest(digest)}
    )


def child_facade(repo: str, start: datetime, end: datetime) -> None:
    """Time ``FeatureStore.statistics`` (the engine plus recording the result)."""
    from featurestore import FeatureStore

    with FeatureStore(repo_path=repo) as store:
        store.list_feature_views()  # open the registry before the clock starts
        with stopwatch() as elapsed:
            stored = store.statistics(VIEW, start, end)
        peak = peak_rss_mb()
    emit_result({"seconds": elapsed[0], "peak_mb": peak, "rows": stored.profile.rows})


def child_pandas(path: str, start: datetime, end: datetime, grids: str | None) -> None:
    """The same statistics with pandas (and numpy for the grid counts); ``grids`` is a JSON file
    of grid points to count at (ours, so the counts compare exactly), else pandas' own.

    Written to be frugal, as a careful pandas user would: the row filter is computed once from
    the key and timestamp columns, then one feature column at a time is read, profiled and
    dropped; one ``value_counts`` serves both the distinct count and the top values.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    grid_points = json.loads(Path(grids).read_text()) if grids else {}
    with stopwatch() as elapsed:
        keys = pq.read_table(path, columns=["driver_id", "event_timestamp"]).to_pandas()
        ts = keys["event_timestamp"]
        keep = keys["driver_id"].notna() & ts.notna()
        keep &= (ts >= pd.Timestamp(start)) & (ts <= pd.Timestamp(end))
        mask = keep.to_numpy()
        del keys, ts, keep
        digest = {}
        for name in FEATURES:
            column = pq.read_table(path, columns=[name]).column(0).to_pandas()
            values = column[mask].astype("float64")
            del column
            present = values.dropna()
            counts = present.value_counts()
            ordered = np.sort(present.to_numpy())
            points = grid_points.get(name) or list(present.quantile(np.arange(101) / 100))
            digest[name] = {
                "rows": len(values),
                "nulls": int(values.isna().sum()),
                "min": float(ordered[0]),
                "max": float(ordered[-1]),
                "mean": float(present.mean()),
                "std": float(present.std(ddof=1)),
                "quantiles": {k: float(present.quantile(q)) for k, q in QUANTILES.items()},
                "top": _top(counts),
                "distinct": len(counts),
                "cumulative": [int(i) for i in np.searchsorted(ordered, points, side="right")],
            }
            del values, present, counts, ordered
        rows = int(mask.sum())
    peak = peak_rss_mb()
    emit_result({"seconds": elapsed[0], "peak_mb": peak, "rows": rows, "digest": _digest(digest)})


def _top(counts: Any, limit: int = 10) -> list[list[float]]:
    """The ``limit`` most frequent values, ties by value, without sorting every count."""
    if counts.empty:
        return []
    floor = counts.nlargest(limit).iloc[-1]
    above = counts[counts > floor]
    tied = counts[counts == floor].index.to_numpy()
    smallest = np.sort(np.partition(tied, min(limit, len(tied)) - 1)[:limit])
    chosen = [(float(v), int(n)) for v, n in above.items()]
    chosen += [(float(v), int(floor)) for v in smallest]
    chosen.sort(key=lambda item: (-item[1], item[0]))
    return [[v, n] for v, n in chosen[:limit]]


def child_main(argv: list[str]) -> int:
    """Entry point of the child processes (``stats.py --child KIND ...``)."""
    parser = argparse.ArgumentParser(prog="stats.py --child")
    parser.add_argument("kind", choices=["apply", "ours", "facade", "pandas"])
    parser.add_argument("--repo")
    parser.add_argument("--data")
    parser.add_argument("--start", required=False)
    parser.add_argument("--end", required=False)
    parser.add_argument("--grids", help="pandas: a JSON file of grid points to count at")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start or "1970-01-01T00:00:00+00:00")
    end = datetime.fromisoformat(args.end or "1970-01-01T00:00:00+00:00")
    bodies = {
        "apply": lambda: child_apply_ours(args.repo),
        "ours": lambda: child_ours(args.repo, start, end),
        "facade": lambda: child_facade(args.repo, start, end),
        "pandas": lambda: child_pandas(args.data, start, end, args.grids),
    }
    return guarded(bodies[args.kind])


# -- comparing -----------------------------------------------------------------------------------


def compare_results(ours: ChildResult, pandas: ChildResult) -> int:
    """Print how the two results agree; return the number of disagreeing statistics."""
    if not (ours.ok and pandas.ok):
        return 0
    a = json.loads(ours.detail["digest"])
    b = json.loads(pandas.detail["digest"])
    print(f"\nagreement with pandas ({ours.detail['rows']:,} vs {pandas.detail['rows']:,} rows)")
    print(
        f"  {'feature':<18} {'quantiles':>10} {'mean':>10} {'grid counts':>12} {'top values':>11}"
        f" {'distinct (approx / exact)':>27}"
    )
    bad = 0
    for name in FEATURES:
        mine, theirs = a[name], b[name]
        quantiles = all(
            math.isclose(mine["quantiles"][k], theirs["quantiles"][k], rel_tol=1e-12, abs_tol=1e-12)
            for k in QUANTILES
        )
        mean = math.isclose(mine["mean"], theirs["mean"], rel_tol=1e-9)
        counts = mine["cumulative"] == theirs["cumulative"]
        top_counts = dict((v, n) for v, n in theirs["top"])
        # Ours ranks sampled candidates past 100k distinct values: compare their counts.
        tops = (
            "equal"
            if mine["top"] == theirs["top"]
            else "counts ok"
            if all(top_counts.get(v, n) == n for v, n in mine["top"])
            else "DIFFER"
        )
        bad += sum(not ok for ok in (quantiles, mean, counts))
        distinct = f"{mine['distinct']:,} / {theirs['distinct']:,}"
        print(
            f"  {name:<18} {_ok(quantiles):>10} {_ok(mean):>10} {_ok(counts):>12} "
            f"{tops:>11} {distinct:>27}"
        )
    return bad


def _ok(flag: bool) -> str:
    return "equal" if flag else "DIFFER"


# -- the benchmark -------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Command line entry point (``argv`` without the program name)."""
    # Feast has no statistics to compare with: pandas is the baseline, so no --compare here.
    parser = argparse.ArgumentParser(description="Statistics benchmark (featurestore vs pandas).")
    parser.add_argument("--size", default="S", choices=["XS", "S", "L"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=12.0,
        help="kill an engine whose memory passes this (the machine is shared); default 12",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    parser.add_argument("--days", type=int, help="profile only the last N days of the window")
    parser.add_argument(
        "--facade", action="store_true", help="also time FeatureStore.statistics (applies first)"
    )
    parser.add_argument("--skip-pandas", action="store_true", help="time ours alone")
    args = parser.parse_args(argv)

    generator = load_generator()
    workload = generator.workload_for(args.size)
    data_dir = ensure_workload(args.size, workload, args.seed)
    start, end = workload_window(workload)
    if args.days is not None:
        start = max(start, end - timedelta(days=args.days))
    print(
        f"workload {args.size}: {data_dir}; window {start.isoformat()} .. {end.isoformat()}; "
        f"{machine_summary()}"
    )
    window = ["--start", start.isoformat(), "--end", end.isoformat()]
    cap_mb = args.memory_cap_gb * 1024
    with work_dir(args.keep) as work:
        repo = build_our_repo(work / "ours", data_dir, views_for())
        results = [
            run_child(
                "featurestore (duckdb)",
                [ME, "--child", "ours", "--repo", str(repo), *window],
                memory_cap_mb=cap_mb,
            )
        ]
        if args.facade:
            applied = run_child("apply", [ME, "--child", "apply", "--repo", str(repo)])
            if applied.ok:
                results.append(
                    run_child(
                        "FeatureStore.statistics",
                        [ME, "--child", "facade", "--repo", str(repo), *window],
                        memory_cap_mb=cap_mb,
                    )
                )
            else:
                print(f"  apply failed: {applied.error}")
        pandas = None
        if not args.skip_pandas:
            data = str(data_dir / generator.DRIVER_FILE)
            argv_pandas = [ME, "--child", "pandas", "--data", data, *window]
            ours = results[0]
            if ours.ok:
                # pandas counts at our grid points, so the grid counts compare exactly.
                digest = json.loads(ours.detail["digest"])
                grids = work / "grids.json"
                grids.write_text(json.dumps({k: v["grid"] for k, v in digest.items()}))
                argv_pandas += ["--grids", str(grids)]
            pandas = run_child("pandas", argv_pandas, memory_cap_mb=cap_mb)
            results.append(pandas)
    print_results(f"statistics of {VIEW} ({len(FEATURES)} features), size {args.size}", results)
    mismatches = compare_results(results[0], pandas) if pandas is not None else 0
    return 0 if results[0].ok and not mismatches else 1


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
