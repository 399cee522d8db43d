"""``historical.py --engine spark``: our retrieval on the Spark engine, and with ``--compare
feast`` Feast's ``SparkOfflineStore`` (:mod:`feast_spark`) on the identical workload.

Both run in fresh child processes on the same local Spark (``--spark-master``, default
``local[2]``) with the same settings (:data:`spark_common.DEFAULT_CONF` plus ``--spark-conf``).
What is timed: ``get_historical_features`` plus the result as pandas, after the Spark session is
up (started before the clock in each child, with a one-row job; its start-up is printed apart).
Memory: the Python process's ``ru_maxrss`` and the driver JVM's peak (the sampled sum of the
``java`` processes' RSS, and their ``VmHWM``); in local mode the driver JVM also runs the tasks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import ChildResult, ViewSpec, run_child, work_dir
from repos import build_our_repo
from spark_common import DEFAULT_MASTER, encode_conf, parse_conf, time_spark_retrieval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--engine spark``."""
    parser.add_argument(
        "--spark-master",
        default=DEFAULT_MASTER,
        help=f"Spark master both engines run on (default {DEFAULT_MASTER})",
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        metavar="KEY=VALUE",
        help="a Spark setting for both engines (repeatable; overrides the defaults in "
        "bench/spark_common.py)",
    )


# -- our child -----------------------------------------------------------------------------------


def child_retrieve_ours(
    repo: str,
    entity_df: Any,
    out: str,
    refs: list[str],
    master: str,
    conf: dict[str, str],
) -> None:
    """Time our retrieval on the Spark engine; write the result to ``out`` for the comparison."""
    import featurestore
    from featurestore import FeatureStore

    with FeatureStore(repo_path=repo) as store:
        # Resolve the registry before the clock, as a long-lived process would.
        store.list_feature_views()
        time_spark_retrieval(
            lambda: store.get_historical_features(entity_df=entity_df, features=refs).to_pandas(),
            master,
            conf,
            out,
            f"featurestore {featurestore.__version__} (spark)",
        )


# -- the parent ----------------------------------------------------------------------------------


def _total_mb(r: ChildResult) -> float:
    return float(r.peak_mb or 0.0) + float(r.detail.get("jvm_peak_mb", 0.0))


def print_spark_results(title: str, results: Sequence[ChildResult]) -> None:
    """Time, session start, Python and JVM peaks, CPU; then Feast / ours."""
    print(f"\n{title}")
    print(
        f"  {'engine':<24} {'seconds':>8} {'session':>8} {'python MB':>10} {'JVM MB':>8} "
        f"{'JVM HWM':>8} {'total MB':>9} {'JVM cpu s':>10} {'py cpu s':>9}"
    )
    for r in results:
        if not r.ok:
            print(f"  {r.label:<24} {'FAILED':>8}  {r.error}")
            continue
        d = r.detail
        print(
            f"  {r.label:<24} {r.seconds:>8.2f} {d['session_seconds']:>8.2f} {r.peak_mb:>10.0f} "
            f"{d['jvm_peak_mb']:>8.0f} {d['jvm_hwm_mb']:>8.0f} {_total_mb(r):>9.0f} "
            f"{d['jvm_cpu_seconds']:>10.1f} {d['python_cpu_seconds']:>9.1f}"
        )
    ours = results[0]
    for other in results[1:]:
        if ours.ok and other.ok and ours.seconds and other.seconds:
            print(
                f"  {other.label} / {ours.label}: time x{other.seconds / ours.seconds:.2f}, "
                f"peak memory (Python + JVM) x{_total_mb(other) / _total_mb(ours):.2f}, "
                f"JVM x{other.detail['jvm_peak_mb'] / ours.detail['jvm_peak_mb']:.2f}, "
                f"Python x{(other.peak_mb or 0) / (ours.peak_mb or 1):.2f}"
            )
    for r in results:
        if r.ok:
            print(f"  {r.label}: {r.detail.get('engine')}; {r.detail.get('rows'):,} rows")


def run_spark(
    args: argparse.Namespace,
    *,
    script: str,
    name: str,
    data_dir: Path,
    views: Sequence[ViewSpec],
    entity: str,
    entity_rows: int,
    compare: Callable[[Path, Path, Sequence[str]], dict[str, Any]],
) -> int:
    """The Spark comparison; returns the exit status (non-zero if our side failed)."""
    from feast_spark import build_feast_spark_repo

    conf = parse_conf(args.spark_conf)
    refs = ",".join(ref for view in views for ref in view.refs)
    features = [feature for view in views for feature, _ in view.features]
    cap_mb = args.memory_cap_gb * 1024
    spark_args = ["--master", args.spark_master, "--conf", encode_conf(conf)]
    print(f"spark: master {args.spark_master}; conf {conf}")
    offline = {"type": "spark", "master": args.spark_master, "conf": conf}
    with work_dir(args.keep) as work:
        ours_repo = build_our_repo(work / "ours", data_dir, views, offline_store=offline)
        ours_out = work / "ours.parquet"
        label = "featurestore (spark)"
        applied = run_child(
            "featurestore apply", [script, "--child", "apply-ours", "--repo", str(ours_repo)]
        )
        if applied.ok:
            ours = run_child(
                label,
                [script, "--child", "ours-spark", "--repo", str(ours_repo), "--entity", entity,
                 "--out", str(ours_out), "--refs", refs, *spark_args],
                memory_cap_mb=cap_mb,
                timeout=args.timeout,
            )  # fmt: skip
        else:
            ours = ChildResult(label, ok=False, error=f"apply failed: {applied.error}")
        results = [ours]
        feast_out = work / "feast.parquet"
        if args.compare == "feast":
            feast_python = args.feast_python or sys.executable
            feast_repo = build_feast_spark_repo(work / "feast", args.spark_master, conf)
            label = "feast (spark)"
            feast_applied = run_child(
                "feast apply",
                [script, "--child", "apply-feast-spark", "--repo", str(feast_repo),
                 "--data", str(data_dir)] + (["--no-ttl"] if args.no_ttl else []),
                python=feast_python,
            )  # fmt: skip
            if feast_applied.ok:
                theirs = run_child(
                    label,
                    [script, "--child", "feast-spark", "--repo", str(feast_repo), "--entity",
                     entity, "--out", str(feast_out), "--refs", refs, *spark_args],
                    python=feast_python,
                    memory_cap_mb=cap_mb,
                    timeout=args.timeout,
                )  # fmt: skip
            else:
                theirs = ChildResult(label, ok=False, error=f"apply failed: {feast_applied.error}")
            results.append(theirs)
        print_spark_results(
            f"historical retrieval on Spark ({args.spark_master}), {name}, "
            f"{entity_rows:,} entity rows, output pandas",
            results,
        )
        if len(results) == 2 and all(r.ok for r in results):
            compare(ours_out, feast_out, features)
    return 0 if results[0].ok else 1
