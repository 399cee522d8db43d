"""Materialization benchmark: the example repo's two views into Redis, optionally vs Feast.

    python bench/materialize.py --size S                   # featurestore alone, into Redis db 10
    python bench/materialize.py --size L --compare feast --feast-python .venv-feast/bin/python
    python bench/materialize.py --size S --online sqlite   # both engines into SQLite files

Both engines materialize the workload's whole generated window (30 days; ``--days N``: the last
N days) of ``driver_hourly_stats`` and ``customer_daily_profile`` from the cached Parquet files:
ours is the example repository (``repo/features.py``) with ``online_store`` pointed at Redis
database 10, and Feast gets the same definitions with its DuckDB offline store and its Redis
online store on database 11. Each database is emptied (FLUSHDB, its own only) before each run.

Each run is a fresh child process; the time is ``store.materialize(start, end)`` alone (not the
apply), the peak memory the child's ``ru_maxrss`` afterwards. A child whose memory passes
``--memory-cap-gb`` is killed and reported as "killed at X GB after Y s"; Feast also has
``--feast-timeout``. After the runs, the keys in each database are counted, and a sample of
1,000 entity keys from the entity frame is looked up through each SDK and compared value by value.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from common import (
    bench_parser,
    emit_result,
    guarded,
    load_generator,
    peak_rss_mb,
    script_entry,
    stopwatch,
    views_for,
    work_dir,
)
from engine_runs import EngineRun, add_online_arguments, cleanup, materialize_all, prepare
from materialize_report import (
    compare_lookups,
    lookup_sample,
    print_materialization,
    sample_keys,
    source_rows,
)
from repos import (
    child_apply_feast,
    child_apply_ours,
)

ME = str(Path(__file__).resolve())


# -- child processes -----------------------------------------------------------------------------


def child_materialize_ours(repo: str, start: datetime, end: datetime) -> None:
    """Time ``store.materialize(start, end)`` of every view of the repository."""
    import featurestore
    from featurestore import FeatureStore

    with FeatureStore(repo_path=repo) as store:
        store.list_feature_views()  # open the registry before the clock starts
        with stopwatch() as elapsed:
            report = store.materialize(start, end, progress=False)
        peak = peak_rss_mb()
    print(report.summary())
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            # Summed over the views' reports (the per-view fields are the stable part).
            "rows_read": sum(v.rows_read for v in report.views),
            "keys": sum(v.keys for v in report.views),
            "written": sum(v.written for v in report.views),
            "engine": f"featurestore {featurestore.__version__}",
        }
    )


def child_materialize_feast(repo: str, start: datetime, end: datetime) -> None:
    """Time Feast's ``store.materialize(start, end)`` of every view of the repository."""
    import feast

    store = feast.FeatureStore(repo_path=repo)
    store.list_feature_views()
    with stopwatch() as elapsed:
        store.materialize(start_date=start, end_date=end)
    peak = peak_rss_mb()
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            "engine": f"feast {feast.__version__} "
            f"({store.config.offline_store.type} offline, {store.config.online_store.type} online)",
        }
    )


def _entity_rows(keys_path: str) -> list[dict[str, Any]]:
    """The sample's entity rows, as both SDKs take them."""
    rows: list[dict[str, Any]] = pq.read_table(keys_path).to_pylist()
    return rows


def child_lookup_ours(repo: str, keys_path: str, refs: list[str], out: str, as_of: str) -> None:
    """Look the sample up through our SDK (now, and at ``as_of``); write values and statuses."""
    from featurestore import FeatureStore
    from featurestore.online.lookup import OnlineLookup

    rows = _entity_rows(keys_path)
    with FeatureStore(repo_path=repo) as store:
        now = store.get_online_features(features=refs, entity_rows=rows)
        # The consistency contract's instant: the end of the materialized window. The same
        # lookup code as the facade's, with its evaluation time set.
        at_end = OnlineLookup(store.project, store.registry, store.online).lookup(
            refs, entity_rows=rows, as_of=datetime.fromisoformat(as_of)
        )
        columns: dict[str, Any] = dict(at_end.to_dict())
        for name, statuses in at_end.statuses.items():
            columns[f"status:{name}"] = [str(getattr(s, "value", s)) for s in statuses]
        for name, statuses in now.statuses.items():
            columns[f"status_now:{name}"] = [str(getattr(s, "value", s)) for s in statuses]
        for name, values in now.to_dict().items():
            columns[f"now:{name}"] = values
    pq.write_table(pa.table(columns), out)
    emit_result({"seconds": 0.0, "peak_mb": peak_rss_mb()})


def child_lookup_feast(repo: str, keys_path: str, refs: list[str], out: str) -> None:
    """Look the sample up through Feast's SDK; write the values."""
    import feast

    store = feast.FeatureStore(repo_path=repo)
    response = store.get_online_features(features=refs, entity_rows=_entity_rows(keys_path))
    pq.write_table(pa.table(response.to_dict()), out)
    emit_result({"seconds": 0.0, "peak_mb": peak_rss_mb()})


def child_main(argv: list[str]) -> int:
    """Entry point of the child processes (``materialize.py --child KIND ...``)."""
    parser = argparse.ArgumentParser(prog="materialize.py --child")
    parser.add_argument(
        "kind",
        choices=["apply-ours", "apply-feast", "ours", "feast", "lookup-ours", "lookup-feast"],
    )
    parser.add_argument("--repo", required=True)
    parser.add_argument("--data")
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--keys")
    parser.add_argument("--refs", default="")
    parser.add_argument("--out")
    parser.add_argument("--ttl-seconds", type=float, help="replaces the views' TTLs (apply-feast)")
    args = parser.parse_args(argv)
    refs = [r for r in args.refs.split(",") if r]
    ttl = None if args.ttl_seconds is None else timedelta(seconds=args.ttl_seconds)
    start = datetime.fromisoformat(args.start or "1970-01-01T00:00:00+00:00")
    end = datetime.fromisoformat(args.end or "1970-01-01T00:00:00+00:00")
    bodies = {
        "apply-ours": lambda: child_apply_ours(args.repo),
        "apply-feast": lambda: child_apply_feast(args.repo, args.data, online=True, ttl=ttl),
        "ours": lambda: child_materialize_ours(args.repo, start, end),
        "feast": lambda: child_materialize_feast(args.repo, start, end),
        "lookup-ours": lambda: child_lookup_ours(args.repo, args.keys, refs, args.out, args.end),
        "lookup-feast": lambda: child_lookup_feast(args.repo, args.keys, refs, args.out),
    }
    return guarded(bodies[args.kind])


# -- the benchmark ---------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Command line entry point (``argv`` without the program name)."""
    parser = bench_parser(
        "Materialization benchmark (featurestore, optionally vs Feast).",
        what="materialize the same views",
    )
    add_online_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (best is shown)")
    parser.add_argument("--feast-repeat", type=int, default=1, help="runs of Feast")
    parser.add_argument(
        "--keep-online", action="store_true", help="leave the materialized data in the stores"
    )
    args = parser.parse_args(argv)

    views = views_for()
    refs = [ref for view in views for ref in view.refs]
    features = [feature for view in views for feature, _ in view.features]
    with work_dir(args.keep) as work:
        setup = prepare(args, work)
        try:
            materialize_all(setup, args, {"ours": args.repeat, "feast": args.feast_repeat})
            rows = source_rows(setup.data_dir, views, setup.window)
            print_materialization(setup.engines, rows)
            done = [r for r in setup.engines if isinstance(r, EngineRun) and r.ok]
            if setup.target.kind == "redis":
                for run in done:
                    print(
                        f"  keys in {setup.target.describe(run.engine)} ({run.label}): "
                        f"{setup.target.count_keys(run.engine):,}"
                    )
            if len(done) == 2:
                keys = sample_keys(
                    setup.data_dir / load_generator().ENTITY_FILE, work / "keys.parquet", args.seed
                )
                outputs = lookup_sample(done, work, keys, refs, setup.window[1])
                if len(outputs) == 2:
                    compare_lookups(outputs["ours"], outputs["feast"], features)
        finally:
            if not args.keep_online:
                cleanup(setup.target, setup.engines)
    ours = setup.engines[0]
    return 0 if isinstance(ours, EngineRun) and ours.ok else 1


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
