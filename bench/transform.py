"""On-demand transformation benchmark: what an on-demand view costs, offline and online.

    python bench/transform.py --size S
    python bench/transform.py --size S --compare feast --feast-python /work/main/.venv-feast/bin/python

Offline: 1M entity rows (with a request column ``trip_distance_km``) and the 7 features of the two
example views, retrieved to pandas without and with one pandas-mode on-demand view over both
views and the request value (``ride_value``: 2 output features). Each retrieval runs in a fresh
process; time and peak memory are the retrieval's. Goal: with <= 1.3x the time without.

Online: the views are materialized into the example's embedded online store, then single-entity
lookups of 3 plain features are timed without and with a python-mode twin of the view
(``ride_value_py``), interleaved, 3,000 each after a warm-up; p50 and p90. Goal: p50 with <= p50
without + 50 us.

``--compare feast``: the same retrieval with the same on-demand function through Feast 0.67's
``@on_demand_feature_view`` (pandas mode) on the same files. Goal: ours >= 3x faster.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from common import (
    ChildResult,
    bench_parser,
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
)
from repos import build_feast_repo, build_our_repo, child_apply_ours, feast_objects

ON_DEMAND = ["ride_value:ride_value", "ride_value:value_per_passenger"]
ON_DEMAND_PY = ["ride_value_py:ride_value", "ride_value_py:value_per_passenger"]
LOOKUP_FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:trip_distance",
    "customer_daily_profile:avg_passenger_count",
]
LOOKUPS = 3_000

#: Appended to the example repository's ``features.py`` in the benchmark's copy.
OUR_VIEWS = """

bench_request = RequestSource(
    name="bench_request", schema=[Field(name="trip_distance_km", dtype=Float64)]
)


@on_demand_feature_view(
    sources=[
        driver_hourly_stats[["conv_rate", "trip_distance"]],
        customer_daily_profile[["avg_passenger_count"]],
        bench_request,
    ],
    schema=[
        Field(name="ride_value", dtype=Float64),
        Field(name="value_per_passenger", dtype=Float64),
    ],
)
def ride_value(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=inputs.index)
    out["ride_value"] = inputs["conv_rate"] * inputs["trip_distance_km"] / (1 + inputs["trip_distance"])
    out["value_per_passenger"] = out["ride_value"] / inputs["avg_passenger_count"].clip(lower=1)
    return out


@on_demand_feature_view(
    sources=[
        driver_hourly_stats[["conv_rate", "trip_distance"]],
        customer_daily_profile[["avg_passenger_count"]],
        bench_request,
    ],
    schema=[
        Field(name="ride_value", dtype=Float64),
        Field(name="value_per_passenger", dtype=Float64),
    ],
    mode="python",
)
def ride_value_py(row: dict) -> dict:
    conv, distance, km = row["conv_rate"], row["trip_distance"], row["trip_distance_km"]
    if conv is None or distance is None or km is None:
        return {"ride_value": None, "value_per_passenger": None}
    value = conv * km / (1 + distance)
    passengers = row["avg_passenger_count"]
    return {
        "ride_value": value,
        "value_per_passenger": None if passengers is None else value / max(passengers, 1),
    }
"""


def _entity_frame(path: str) -> Any:
    """The workload's entity frame plus the request column (the same values in every child)."""
    frame = pq.read_table(path).to_pandas()
    frame["trip_distance_km"] = np.random.default_rng(7).uniform(0.5, 30.0, len(frame))
    return frame


# -- children ------------------------------------------------------------------------------------


def child_offline_ours(repo: str, entity: str, with_on_demand: bool) -> None:
    from featurestore import FeatureStore

    entity_df = _entity_frame(entity)
    refs = [r for v in views_for() for r in v.refs] + (ON_DEMAND if with_on_demand else [])
    with FeatureStore(repo_path=repo) as store:
        store.list_feature_views()
        with stopwatch() as elapsed:
            result = store.get_historical_features(entity_df=entity_df, features=refs).to_pandas()
        peak = peak_rss_mb()
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            "rows": len(result),
            "non_null": int(result["ride_value"].notna().sum()) if with_on_demand else None,
        }
    )


def child_online_ours(repo: str, end: str) -> None:
    from datetime import datetime

    from featurestore import FeatureStore

    as_of = datetime.fromisoformat(end) - timedelta(minutes=1)
    with FeatureStore(repo_path=repo) as store:
        store.materialize(as_of - timedelta(days=2), as_of, progress=False)
        row = {"driver_id": 1, "customer_id": 1, "trip_distance_km": 3.2}
        plain, with_view = LOOKUP_FEATURES, [*LOOKUP_FEATURES, *ON_DEMAND_PY]
        for _ in range(300):  # warm-up: plans cached, code loaded
            store.get_online_features(plain, entity_rows=[row], as_of=as_of)
            store.get_online_features(with_view, entity_rows=[row], as_of=as_of)
        timings: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(LOOKUPS):
            for name, refs in (("without", plain), ("with", with_view)):
                start = time.perf_counter()
                store.get_online_features(refs, entity_rows=[row], as_of=as_of)
                timings[name].append(time.perf_counter() - start)
        response = store.get_online_features(with_view, entity_rows=[row], as_of=as_of)
        sample = response.to_dict()
        statuses = {k: v[0].value for k, v in response.statuses.items()}
    emit_result(
        {
            "seconds": sum(timings["with"]),
            "peak_mb": peak_rss_mb(),
            **{
                f"p{q}_{name}_us": statistics.quantiles(values, n=100)[q - 1] * 1e6
                for name, values in timings.items()
                for q in (50, 90)
            },
            "sample": {k: v[0] for k, v in sample.items()},
            "statuses": statuses,
        }
    )


def child_offline_feast(repo: str, entity: str, data_dir: str) -> None:
    import feast
    from feast.on_demand_feature_view import on_demand_feature_view
    from feast.types import Float64

    objects = feast_objects(views_for(), Path(data_dir))
    driver, customer = (o for o in objects if isinstance(o, feast.FeatureView))
    request = feast.RequestSource(
        name="bench_request", schema=[feast.Field(name="trip_distance_km", dtype=Float64)]
    )

    @on_demand_feature_view(
        sources=[
            driver[["conv_rate", "trip_distance"]],
            customer[["avg_passenger_count"]],
            request,
        ],
        schema=[
            feast.Field(name="ride_value", dtype=Float64),
            feast.Field(name="value_per_passenger", dtype=Float64),
        ],
        mode="pandas",
    )
    def ride_value(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=inputs.index)
        out["ride_value"] = (
            inputs["conv_rate"] * inputs["trip_distance_km"] / (1 + inputs["trip_distance"])
        )
        out["value_per_passenger"] = out["ride_value"] / inputs["avg_passenger_count"].clip(lower=1)
        return out

    store = feast.FeatureStore(repo_path=repo)
    store.apply([*objects, ride_value])
    entity_df = _entity_frame(entity)
    refs = [r for v in views_for() for r in v.refs] + ON_DEMAND
    store.list_feature_views()
    with stopwatch() as elapsed:
        result = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak_rss_mb(),
            "rows": len(result),
            "non_null": int(result["ride_value"].notna().sum()),
            "engine": f"feast {feast.__version__}",
        }
    )


def child_main(argv: list[str]) -> int:
    kind, repo = argv[0], argv[1]
    if kind == "apply-ours":
        return guarded(lambda: child_apply_ours(repo))
    if kind in ("offline-with", "offline-without"):
        return guarded(lambda: child_offline_ours(repo, argv[2], kind == "offline-with"))
    if kind == "online":
        return guarded(lambda: child_online_ours(repo, argv[2]))
    return guarded(lambda: child_offline_feast(repo, argv[2], argv[3]))


# -- the benchmark -------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    generator = load_generator()
    parser = bench_parser("On-demand view benchmark", what="run the on-demand retrieval")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child")
    args = parser.parse_args(argv)
    workload = generator.workload_for(args.size)
    data_dir = ensure_workload(args.size, workload, args.seed)
    entity = str(data_dir / generator.ENTITY_FILE)
    cap_mb = args.memory_cap_gb * 1024
    print(f"workload {args.size}: {workload.entity_rows:,} entity rows; {machine_summary()}")
    me = str(Path(__file__).resolve())
    with work_dir(args.keep) as work:
        # The workload is old: keep its rows online (by default they expire with the TTL).
        online_store = {"type": "sqlite", "path": "data/online.db", "expiry_grace": "36500d"}
        repo = build_our_repo(work / "ours", data_dir, views_for(), online_store=online_store)
        with (repo / "features.py").open("a") as features:
            features.write(OUR_VIEWS)
        applied = run_child("featurestore apply", [me, "--child", "apply-ours", str(repo)])
        if not applied.ok:
            print(f"apply failed: {applied.error}")
            return 1
        offline = [
            run_child(
                f"featurestore offline, {label}",
                [me, "--child", f"offline-{label}", str(repo), entity],
                memory_cap_mb=cap_mb,
                timeout=args.timeout,
            )
            for label in ("without", "with")
        ]
        results: list[ChildResult] = list(offline)
        if args.compare == "feast":
            feast_repo = build_feast_repo(work / "feast", "duckdb")
            results.append(
                run_child(
                    "feast offline, with",
                    [me, "--child", "feast", str(feast_repo), entity, str(data_dir)],
                    python=args.feast_python or sys.executable,
                    memory_cap_mb=cap_mb,
                    timeout=args.timeout,
                )
            )
        print_results(f"on-demand retrieval, {args.size}, {workload.entity_rows:,} rows", results)
        if all(r.ok for r in offline):
            ratio = offline[1].seconds / offline[0].seconds
            print(f"  with / without on-demand view: {ratio:.2f}x time (goal <= 1.3x)")
            print(f"  non-null ride_value: {offline[1].detail.get('non_null'):,}")
        if len(results) == 3 and all(r.ok for r in results):
            print(
                f"  feast / ours (with the view): {results[2].seconds / offline[1].seconds:.1f}x "
                f"(goal >= 3x); feast non-null ride_value: {results[2].detail.get('non_null'):,}"
            )
        online = run_child(
            "featurestore online", [me, "--child", "online", str(repo), generator.END.isoformat()]
        )
        if online.ok:
            d = online.detail
            print(
                f"\nonline single-entity lookup ({LOOKUPS:,} each, interleaved): "
                f"p50 without {d['p50_without_us']:.0f} us, with {d['p50_with_us']:.0f} us "
                f"(+{d['p50_with_us'] - d['p50_without_us']:.0f} us, goal <= +50 us); "
                f"p90 without {d['p90_without_us']:.0f} us, with {d['p90_with_us']:.0f} us"
            )
            print(f"  sample: {d['sample']}\n  statuses: {d['statuses']}")
        else:
            print(f"online failed: {online.error}")
    return 0


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
