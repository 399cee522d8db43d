"""Online lookup latency through the SDK: 1 and 100 entities, two views, 7 features; vs Feast.

    python bench/online.py                                  # featurestore alone, size S, Redis
    python bench/online.py --compare feast --feast-python .venv-feast/bin/python
    python bench/online.py --size XS --iterations 200 --online sqlite
    python bench/online.py --definitions untyped            # entities without value_type only
    python bench/online.py --online redis-and-cluster       # one Redis vs a Redis Cluster

Each engine first materializes the workload (``--size``, default S; ``--days N``: only the last
N days, identically for both) into its own online store, as ``materialize.py`` does: ours into
Redis database 10, Feast into database 11. Then, in a fresh child per engine, the SDK is opened
once and warmed up, and each lookup is timed on its own, in process:
``store.get_online_features(features=[7 refs], entity_rows=rows).to_dict()`` with 1 entity row
(``driver_id`` + ``customer_id``) ``--iterations`` times (default 2,000) and with 100 rows
(default 500), keys drawn at random with a fixed seed (the same keys for both engines). This is
repeated ``--rounds`` times; the table shows the round with the best p50 and the p50 spread.
Ours runs once per definition style (``--definitions typed|untyped|both``, default both): the
example's entities with ``value_type=Int64`` and without it (key types inferred at apply),
each repository under a project of its own in the same online store.

``--online redis-and-cluster`` compares one Redis with a Redis Cluster of the run's own (3
masters, 3 replicas): both are materialized, then the timed rounds alternate between them (a
fresh child per round and store), and the cluster / single ratios of p50 and p99 are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    ChildResult,
    bench_parser,
    emit_result,
    guarded,
    load_generator,
    peak_rss_mb,
    run_child,
    script_entry,
    views_for,
    work_dir,
    workload_window,
)
from engine_runs import (
    LABELS,
    EngineRun,
    Setup,
    add_definitions_argument,
    add_online_arguments,
    cleanup,
    materialize_all,
    prepare,
)

ME = str(Path(__file__).resolve())
#: Entity rows per lookup, and the default number of timed lookups of each.
SHAPES = {1: 2_000, 100: 500}
WARMUP = 200
PERCENTILES = (50, 90, 99)


# -- the measuring child -------------------------------------------------------------------------


def key_batches(
    entities: int, lookups: int, drivers: int, customers: int, seed: int
) -> list[list[dict[str, int]]]:
    """``lookups`` lists of ``entities`` random (driver_id, customer_id) rows, from ``seed``."""
    rng = np.random.default_rng([seed, entities])
    driver_ids = rng.integers(1, drivers + 1, size=(lookups, entities))
    customer_ids = rng.integers(1, customers + 1, size=(lookups, entities))
    return [
        [{"driver_id": int(d), "customer_id": int(c)} for d, c in zip(ds, cs, strict=True)]
        for ds, cs in zip(driver_ids, customer_ids, strict=True)
    ]


def time_lookups(
    lookup: Callable[[list[dict[str, int]]], Any], batches: Sequence[Any]
) -> list[float]:
    """Milliseconds of each ``lookup(rows)`` call, one batch of rows per call."""
    samples = []
    for rows in batches:
        started = time.perf_counter_ns()
        lookup(rows)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50, p90 and p99 of ``samples`` (ms), plus the mean."""
    values = np.asarray(samples)
    out = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
    out["mean"] = float(values.mean())
    return out


def child_latency(engine: str, repo: str, refs: list[str], params: dict[str, int]) -> None:
    """Open the engine's SDK, warm up, time every lookup shape ``params['rounds']`` times."""
    if engine == "ours":
        import featurestore

        store: Any = featurestore.FeatureStore(repo_path=repo)
        version = f"featurestore {featurestore.__version__}"
    else:
        import feast

        store = feast.FeatureStore(repo_path=repo)
        version = f"feast {feast.__version__}"

    # Ours evaluates statuses at the end of the materialized window, where the values are within
    # their TTL and come back present (at today's date they would all be OUTSIDE_MAX_AGE, since
    # the workload is historical); Feast has no such notion and serves them as they are.
    as_of = datetime.fromtimestamp(params["as_of"], timezone.utc)

    def lookup(rows: list[dict[str, int]]) -> Any:
        if engine == "ours":
            return store.get_online_features(features=refs, entity_rows=rows, as_of=as_of).to_dict()
        return store.get_online_features(features=refs, entity_rows=rows).to_dict()

    result: dict[str, Any] = {"engine": version, "shapes": {}}
    for entities, lookups in ((1, params["n1"]), (100, params["n100"])):
        batches = key_batches(
            entities, lookups + WARMUP, params["drivers"], params["customers"], params["seed"]
        )
        time_lookups(lookup, batches[:WARMUP])
        rounds = [
            percentiles(time_lookups(lookup, batches[WARMUP:])) for _ in range(params["rounds"])
        ]
        result["shapes"][str(entities)] = rounds
        result[f"found_{entities}"] = _found_share(lookup(batches[0]), refs)
    if engine == "ours":
        response = store.get_online_features(features=refs, entity_rows=batches[0], as_of=as_of)
        features = {ref.split(":", 1)[1] for ref in refs}
        result["statuses"] = _status_counts(
            {name: column for name, column in response.statuses.items() if name in features}
        )
    emit_result({"seconds": 0.0, "peak_mb": peak_rss_mb(), **result})


def _found_share(values: dict[str, list[Any]], refs: Sequence[str]) -> float:
    """Share of non-null feature values in one response (what the lookups actually returned)."""
    names = [ref.split(":", 1)[1] for ref in refs]
    cells = [v for name in names for v in values[name]]
    return sum(v is not None for v in cells) / max(len(cells), 1)


def _status_counts(statuses: dict[str, list[Any]]) -> dict[str, int]:
    """How many values have each status."""
    counts: dict[str, int] = {}
    for column in statuses.values():
        for status in column:
            name = str(getattr(status, "value", status))
            counts[name] = counts.get(name, 0) + 1
    return counts


def child_main(argv: list[str]) -> int:
    """Entry point of the child processes (``online.py --child ENGINE ...``)."""
    parser = argparse.ArgumentParser(prog="online.py --child")
    parser.add_argument("engine", choices=["ours", "feast"])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--refs", required=True)
    for name in ("n1", "n100", "rounds", "drivers", "customers", "seed", "as_of"):
        parser.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args(argv)
    params = {
        name: getattr(args, name)
        for name in ("n1", "n100", "rounds", "drivers", "customers", "seed", "as_of")
    }
    return guarded(lambda: child_latency(args.engine, args.repo, args.refs.split(","), params))


# -- the benchmark -------------------------------------------------------------------------------


def measure(run: EngineRun, refs: Sequence[str], params: dict[str, int]) -> ChildResult:
    """Run the latency child of one engine over its materialized store."""
    argv = [ME, "--child", run.engine, "--repo", str(run.repo), "--refs", ",".join(refs)]
    for name, value in params.items():
        argv += [f"--{name}", str(value)]
    return run_child(f"{run.label} lookups", argv, python=run.python)


def print_latency(results: dict[str, ChildResult]) -> None:
    """p50 / p90 / p99 (best round by p50) per engine and shape, the p50 spread, and ratios."""
    print("\nSDK lookup latency, ms (best round by p50; p50 spread over rounds)")
    print(f"  {'engine':<18} {'entities':>8} {'p50':>8} {'p90':>8} {'p99':>8} {'mean':>8}  spread")
    best: dict[tuple[str, str], dict[str, float]] = {}
    for engine, result in results.items():
        if not result.ok:
            print(f"  {LABELS[engine]:<18} FAILED  {result.error}")
            continue
        for shape, rounds in result.detail["shapes"].items():
            top = min(rounds, key=lambda r: r["p50"])
            best[(engine, shape)] = top
            p50s = [r["p50"] for r in rounds]
            print(
                f"  {LABELS[engine]:<18} {shape:>8} {top['p50']:>8.3f} {top['p90']:>8.3f} "
                f"{top['p99']:>8.3f} {top['mean']:>8.3f}  {min(p50s):.3f}-{max(p50s):.3f}"
                f" (median {statistics.median(p50s):.3f}, {len(p50s)} rounds)"
            )
    for engine, result in results.items():
        if result.ok:
            shares = ", ".join(
                f"{shape} entities {result.detail[f'found_{shape}']:.0%}" for shape in ("1", "100")
            )
            print(f"  {LABELS[engine]}: {result.detail['engine']}; non-null values: {shares}")
            if "statuses" in result.detail:
                print(
                    f"  {LABELS[engine]} statuses of the feature values of a 100-entity response: {result.detail['statuses']}"
                )
    for key in results:
        for shape in ("1", "100"):
            ours, theirs = best.get((key, shape)), best.get(("feast", shape))
            if key != "feast" and ours and theirs:
                print(
                    f"  Feast / {LABELS[key]}, {shape} entities: "
                    f"p50 x{theirs['p50'] / ours['p50']:.2f}, "
                    f"p99 x{theirs['p99'] / ours['p99']:.2f}"
                )


#: ``--online`` mode of this script: the same lookups on one Redis, then on a Redis Cluster.
BOTH_REDIS = "redis-and-cluster"


def run_on(
    args: argparse.Namespace, refs: Sequence[str], params: dict[str, int]
) -> dict[str, ChildResult]:
    """Materialize into ``args.online`` and time the lookups of every engine there."""
    with work_dir(args.keep) as work:
        setup = prepare(args, work)
        try:
            materialize_all(setup, args, {"ours": 1, "feast": 1})
            runs, results = materialized_runs(setup)
            for run in runs:
                results[run.key] = measure(run, refs, params)
            print_latency(results)
        finally:
            cleanup(setup.target, setup.engines)
    return results


def materialized_runs(setup: Setup) -> tuple[list[EngineRun], dict[str, ChildResult]]:
    """The engines ready to be timed, and the failures (apply or materialization) by key."""
    ready: list[EngineRun] = []
    failed: dict[str, ChildResult] = {}
    for run in setup.engines:
        if isinstance(run, ChildResult):
            failed[next(k for k, label in LABELS.items() if label == run.label)] = run
            continue
        materialized = run.best()
        if not materialized.ok:
            error = f"materialization failed: {materialized.error}"
            failed[run.key] = ChildResult(run.label, ok=False, error=error)
            continue
        print(
            f"{run.label}: materialized in {materialized.seconds:.1f} s, "
            f"{setup.target.count_keys(run.engine) or 'n/a'} keys in its store"
        )
        ready.append(run)
    return ready, failed


def run_on_both(
    args: argparse.Namespace, refs: Sequence[str], params: dict[str, int]
) -> dict[str, dict[str, ChildResult]]:
    """One Redis and a Redis Cluster, both materialized first; then the timed rounds alternate
    between them (a child per round and store), so a change in the machine's load hits both."""
    setups: dict[str, Setup] = {}
    with work_dir(args.keep) as work:
        try:
            for kind in ("redis", "redis-cluster"):
                (work / kind).mkdir()
                setups[kind] = prepare(
                    argparse.Namespace(**{**vars(args), "online": kind}), work / kind
                )
                materialize_all(setups[kind], args, {"ours": 1, "feast": 1})
            ready = {kind: materialized_runs(setup) for kind, setup in setups.items()}
            results = {kind: dict(failed) for kind, (_, failed) in ready.items()}
            for _ in range(params["rounds"]):
                for kind, (runs, _) in ready.items():
                    for run in runs:
                        one = measure(run, refs, {**params, "rounds": 1})
                        merge_round(results[kind], run.key, one)
        finally:
            for setup in setups.values():
                cleanup(setup.target, setup.engines)
    for kind, by_key in results.items():
        print(f"\n-- {kind}")
        print_latency(by_key)
    return results


def merge_round(results: dict[str, ChildResult], key: str, one: ChildResult) -> None:
    """Add a one-round measurement to ``results[key]`` (a failed round fails the key)."""
    held = results.get(key)
    if held is None or not one.ok:
        results[key] = one
    elif held.ok:
        for shape, rounds in one.detail["shapes"].items():
            held.detail["shapes"][shape].extend(rounds)


def print_cluster_ratio(single: dict[str, ChildResult], cluster: dict[str, ChildResult]) -> None:
    """Cluster / single Redis per definition style and shape: p50 and p99 of the best round
    (by p50), and the ratio of the rounds' median p50s (steadier when the load changes)."""
    print("\nRedis Cluster (3 masters, 3 replicas) / one Redis, same lookups, same run")
    for key, one in single.items():
        other = cluster.get(key)
        if not (one.ok and other is not None and other.ok):
            print(f"  {LABELS[key]}: no ratio (a run failed)")
            continue
        for shape in ("1", "100"):
            a = min(one.detail["shapes"][shape], key=lambda r: r["p50"])
            b = min(other.detail["shapes"][shape], key=lambda r: r["p50"])
            median_a = statistics.median(r["p50"] for r in one.detail["shapes"][shape])
            median_b = statistics.median(r["p50"] for r in other.detail["shapes"][shape])
            print(
                f"  {LABELS[key]:<14} {shape:>3} entities: p50 {b['p50']:.3f} / "
                f"{a['p50']:.3f} ms = x{b['p50'] / a['p50']:.2f}; p99 {b['p99']:.3f} / "
                f"{a['p99']:.3f} ms = x{b['p99'] / a['p99']:.2f}; median p50 "
                f"{median_b:.3f} / {median_a:.3f} ms = x{median_b / median_a:.2f}"
            )


def main(argv: list[str]) -> int:
    """Command line entry point (``argv`` without the program name)."""
    parser = bench_parser(
        "SDK online lookup latency (featurestore, optionally vs Feast).",
        what="measure the same lookups",
    )
    add_online_arguments(
        parser, [(BOTH_REDIS, "one Redis, then a cluster, back to back, and their ratio")]
    )
    add_definitions_argument(parser)
    parser.add_argument(
        "--iterations",
        type=int,
        help=f"timed lookups per shape and round (default {SHAPES[1]:,} for 1 entity, "
        f"{SHAPES[100]} for 100)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repeat the timed lookups (default 3)"
    )
    args = parser.parse_args(argv)

    refs = [ref for view in views_for() for ref in view.refs]
    workload = load_generator().workload_for(args.size)
    params = {
        "n1": args.iterations or SHAPES[1],
        "n100": args.iterations or SHAPES[100],
        "rounds": args.rounds,
        "drivers": workload.drivers,
        "customers": workload.customers,
        "seed": args.seed,
        "as_of": int(workload_window(workload)[1].timestamp()),
    }
    if args.online != BOTH_REDIS:
        results = run_on(args, refs, params)
    else:
        if args.compare:
            raise SystemExit(f"--online {BOTH_REDIS} measures featurestore alone (no --compare)")
        both = run_on_both(args, refs, params)
        single, cluster = both["redis"], both["redis-cluster"]
        print_cluster_ratio(single, cluster)
        results = {**{f"{k} redis": r for k, r in single.items()}, **cluster}
    ours = [result for key, result in results.items() if key != "feast"]
    return 0 if ours and all(result.ok for result in ours) else 1


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
