"""Historical retrieval benchmark: a point-in-time join of 1M entity rows, optionally vs Feast.

    python bench/historical.py --size S                   # featurestore alone
    python bench/historical.py --size L --compare feast   # and Feast 0.67 on the same files
    python bench/historical.py --no-ttl --compare feast   # 1M entity rows x ~5M rows, no TTL
    python bench/historical.py --no-ttl --size L          # 1M entity rows x ~65M rows, no TTL
    python bench/historical.py --size L --layout key-sorted --compare feast   # files sorted by key
    python bench/historical.py --engine spark --size S --compare feast   # on Spark (spark_side.py)

The workload comes from ``repo/generate_data.py`` and is cached under ``bench/data/``. Our side
is the example repository (``repo/features.py`` copied into a temporary repository whose
``data/`` links to the cached files), applied, then queried for all 7 features of the two views.
Feast gets equivalent definitions (same TTLs, same created column) over the same Parquet files.

Each engine runs in a fresh process; the time is the retrieval alone (``get_historical_features``
plus materializing the result as pandas, or writing Parquet with ``--output parquet``), not the
apply and not reading the entity frame into pandas, which both engines get as the same input.
Peak memory is the child's ``ru_maxrss`` right after the retrieval. With ``--compare feast`` the
two outputs are compared cell by cell, aligned on a row id column carried through the join.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import spark_side
from common import (
    NO_TTL_DRIVERS,
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
from repos import build_feast_repo, build_our_repo, child_apply_feast, child_apply_ours
from spark_common import decode_conf

ROW_ID = "row_id"
FEAST_STORES = ("dask", "duckdb")
#: The child processes of ``--engine spark`` (see ``spark_side.py`` and ``feast_spark.py``).
SPARK_CHILDREN = ("ours-spark", "apply-feast-spark", "feast-spark")


# -- child processes -----------------------------------------------------------------------------


def _entity_frame(path: str) -> Any:
    """The entity frame as pandas, with a row id so outputs can be aligned to the input."""
    frame = pq.read_table(path).to_pandas()
    frame[ROW_ID] = np.arange(len(frame), dtype=np.int64)
    return frame


def child_retrieve_ours(repo: str, entity: str, out: str, refs: list[str], output: str) -> None:
    """Time our retrieval; write the result to ``out`` for the comparison."""
    import duckdb

    import featurestore
    from featurestore import FeatureStore

    entity_df = _entity_frame(entity)
    with FeatureStore(repo_path=repo) as store:
        # Resolve the registry before the clock starts, as a long-lived process would have.
        store.list_feature_views()
        with stopwatch() as elapsed:
            job = store.get_historical_features(entity_df=entity_df, features=refs)
            if output == "parquet":
                job.to_parquet(out)
                rows = pq.ParquetFile(out).metadata.num_rows
            else:
                result = job.to_pandas()
                rows = len(result)
        peak = peak_rss_mb()
    if output != "parquet":
        result.to_parquet(out)
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            "rows": rows,
            "engine": f"featurestore {featurestore.__version__}, duckdb {duckdb.__version__}",
        }
    )


def child_retrieve_feast(repo: str, entity: str, out: str, refs: list[str], output: str) -> None:
    """Time Feast's retrieval; write the result to ``out`` for the comparison."""
    import duckdb
    import feast

    entity_df = _entity_frame(entity)
    store = feast.FeatureStore(repo_path=repo)
    store.list_feature_views()
    with stopwatch() as elapsed:
        job = store.get_historical_features(entity_df=entity_df, features=refs)
        if output == "parquet":
            table = job.to_arrow()
            pq.write_table(table, out)
            rows = table.num_rows
        else:
            result = job.to_df()
            rows = len(result)
    peak = peak_rss_mb()
    if output != "parquet":
        result.to_parquet(out)
    store_type = store.config.offline_store.type
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            "rows": rows,
            "engine": f"feast {feast.__version__} ({store_type} offline store), duckdb {duckdb.__version__}",
        }
    )


def child_main(argv: list[str]) -> int:
    """Entry point of the child processes (``historical.py --child KIND ...``)."""
    parser = argparse.ArgumentParser(prog="historical.py --child")
    parser.add_argument(
        "kind",
        choices=["apply-ours", "ours", "apply-feast", "feast", *SPARK_CHILDREN],
    )
    parser.add_argument("--repo", required=True)
    parser.add_argument("--entity")
    parser.add_argument("--out")
    parser.add_argument("--data")
    parser.add_argument("--refs", default="")
    parser.add_argument("--output", default="pandas")
    parser.add_argument("--no-ttl", action="store_true")
    parser.add_argument("--master")
    parser.add_argument("--conf", default="{}")
    args = parser.parse_args(argv)
    refs = [r for r in args.refs.split(",") if r]
    if args.kind in SPARK_CHILDREN:
        return _spark_child(args, refs)
    if args.kind == "apply-ours":
        return guarded(lambda: child_apply_ours(args.repo))
    if args.kind == "ours":
        return guarded(
            lambda: child_retrieve_ours(args.repo, args.entity, args.out, refs, args.output)
        )
    if args.kind == "apply-feast":
        return guarded(lambda: child_apply_feast(args.repo, args.data, args.no_ttl))
    return guarded(
        lambda: child_retrieve_feast(args.repo, args.entity, args.out, refs, args.output)
    )


def _spark_child(args: argparse.Namespace, refs: list[str]) -> int:
    """The children of ``--engine spark``; each engine's module is imported only in its child."""
    conf = decode_conf(args.conf)
    if args.kind == "ours-spark":
        from spark_side import child_retrieve_ours

        return guarded(
            lambda: child_retrieve_ours(
                args.repo, _entity_frame(args.entity), args.out, refs, args.master, conf
            )
        )
    import feast_spark

    if args.kind == "apply-feast-spark":
        return guarded(lambda: feast_spark.child_apply(args.repo, args.data, args.no_ttl))
    return guarded(
        lambda: feast_spark.child_retrieve(
            args.repo, _entity_frame(args.entity), args.out, refs, args.master, conf
        )
    )


# -- comparing outputs ---------------------------------------------------------------------------


def _as_float(column: pa.ChunkedArray) -> np.ndarray:
    """Values as float64 with NaN for null, so ints, floats and nulls compare uniformly."""
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def compare_outputs(ours_path: Path, theirs_path: Path, features: Sequence[str]) -> dict[str, Any]:
    """Cell-by-cell comparison of two outputs aligned on the row id; prints and returns counts."""
    columns = [ROW_ID, *features]
    ours = pq.read_table(ours_path, columns=columns)
    theirs = pq.read_table(theirs_path, columns=columns)
    in_order = bool(np.array_equal(ours[ROW_ID].to_numpy(), np.arange(ours.num_rows)))
    ours = ours.sort_by(ROW_ID)
    theirs = theirs.sort_by(ROW_ID)
    report: dict[str, Any] = {
        "rows_ours": ours.num_rows,
        "rows_feast": theirs.num_rows,
        "ours_in_input_order": in_order,
        "mismatches": {},
        "nulls": {},
    }
    print("\ncomparison with Feast (cells that differ; null == null)")
    print(
        f"  rows: ours {ours.num_rows:,}, Feast {theirs.num_rows:,}; ours in input order: {in_order}"
    )
    if not np.array_equal(ours[ROW_ID].to_numpy(), theirs[ROW_ID].to_numpy()):
        common_ids = np.intersect1d(ours[ROW_ID].to_numpy(), theirs[ROW_ID].to_numpy())
        print(f"  row ids differ: comparing the {common_ids.size:,} rows both returned")
        keep = pa.array(common_ids)
        ours = ours.filter(pa.compute.is_in(ours[ROW_ID], value_set=keep))
        theirs = theirs.filter(pa.compute.is_in(theirs[ROW_ID], value_set=keep))
    for feature in features:
        a, b = _as_float(ours[feature]), _as_float(theirs[feature])
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        mismatches = int((~same).sum())
        report["mismatches"][feature] = mismatches
        report["nulls"][feature] = (int(np.isnan(a).sum()), int(np.isnan(b).sum()))
        print(
            f"  {feature:<22} {mismatches:>9,} mismatching   "
            f"nulls: ours {int(np.isnan(a).sum()):,}, Feast {int(np.isnan(b).sum()):,}"
        )
    return report


# -- the benchmark -------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Command line entry point (``argv`` without the program name)."""
    generator = load_generator()
    parser = bench_parser(
        "Point-in-time retrieval benchmark (featurestore, optionally vs Feast).",
        what="run the same retrieval",
    )
    parser.add_argument(
        "--no-ttl",
        action="store_true",
        help=f"the driver view without TTL; without --size 1M entity rows against ~5M driver rows "
        f"({NO_TTL_DRIVERS:,} drivers), with --size that size's data",
    )
    parser.add_argument(
        "--entity-rows", type=int, help="entity frame length (default 1M; XS: 1000)"
    )
    parser.add_argument(
        "--output",
        choices=["pandas", "parquet"],
        default="pandas",
        help="what the timed retrieval produces: a pandas frame (default) or a Parquet file",
    )
    parser.add_argument(
        "--feast-store",
        choices=FEAST_STORES,
        default="duckdb",
        help="Feast's offline store; duckdb needs a Python with feast[duckdb] (see --feast-python)",
    )
    parser.add_argument(
        "--layout",
        choices=generator.LAYOUTS,
        default=generator.LAYOUTS[0],
        help="order of the generated feature files: by event time (default) or by entity key",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine")
    parser.set_defaults(size=None)
    parser.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="our offline engine (default duckdb); spark compares with Feast's Spark offline "
        "store (--feast-python: an interpreter with feast[spark], see .venv-feast-spark)",
    )
    spark_side.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.engine == "spark" and args.output != "pandas":
        parser.error("--engine spark times the result as pandas only (--output pandas)")

    if args.no_ttl and args.size is None:
        name = "NT5M"
        workload = generator.Workload(
            drivers=NO_TTL_DRIVERS,
            customers=NO_TTL_DRIVERS,
            days=30,
            entity_rows=args.entity_rows or 1_000_000,
            layout=args.layout,
        )
    else:
        name = args.size or "S"
        workload = generator.workload_for(name, args.entity_rows, args.layout)
    if args.entity_rows is not None:
        name += f"-e{args.entity_rows}"
    if args.layout != generator.LAYOUTS[0]:
        # The layout is part of the cache key (the marker) and of the folder, so both coexist.
        name += f"-{args.layout}"
    data_dir = ensure_workload(name, workload, args.seed)
    views = views_for(args.no_ttl)
    refs = [ref for view in views for ref in view.refs]
    features = [feature for view in views for feature, _ in view.features]
    entity = str(data_dir / generator.ENTITY_FILE)
    cap_mb = args.memory_cap_gb * 1024
    print(
        f"workload {name}: {data_dir}; {workload.entity_rows:,} entity rows; "
        f"{len(refs)} features of {', '.join(v.name for v in views)}; "
        f"TTLs {', '.join(str(v.ttl) for v in views)}; output {args.output}; "
        f"layout {workload.layout}; {machine_summary()}"
    )

    me = str(Path(__file__).resolve())
    if args.engine == "spark":
        return spark_side.run_spark(
            args,
            script=me,
            name=name,
            data_dir=data_dir,
            views=views,
            entity=entity,
            entity_rows=workload.entity_rows,
            compare=compare_outputs,
        )
    with work_dir(args.keep) as work:
        ours_repo = build_our_repo(work / "ours", data_dir, views)
        applied = run_child(
            "featurestore apply", [me, "--child", "apply-ours", "--repo", str(ours_repo)]
        )
        ours_out = work / "ours.parquet"
        if applied.ok:
            ours = run_child(
                "featurestore (duckdb)",
                [me, "--child", "ours", "--repo", str(ours_repo), "--entity", entity,
                 "--out", str(ours_out), "--refs", ",".join(refs), "--output", args.output],
                memory_cap_mb=cap_mb,
                timeout=args.timeout,
            )  # fmt: skip
        else:
            ours = ChildResult(
                "featurestore (duckdb)", ok=False, error=f"apply failed: {applied.error}"
            )
        results = [ours]
        if args.compare == "feast":
            feast_python = args.feast_python or sys.executable
            feast_repo = build_feast_repo(work / "feast", args.feast_store)
            label = f"feast ({args.feast_store})"
            feast_applied = run_child(
                "feast apply",
                [me, "--child", "apply-feast", "--repo", str(feast_repo), "--data", str(data_dir)]
                + (["--no-ttl"] if args.no_ttl else []),
                python=feast_python,
            )
            feast_out = work / "feast.parquet"
            if feast_applied.ok:
                theirs = run_child(
                    label,
                    [me, "--child", "feast", "--repo", str(feast_repo), "--entity", entity,
                     "--out", str(feast_out), "--refs", ",".join(refs), "--output", args.output],
                    python=feast_python,
                    memory_cap_mb=cap_mb,
                    timeout=args.timeout,
                )  # fmt: skip
            else:
                theirs = ChildResult(label, ok=False, error=f"apply failed: {feast_applied.error}")
            results.append(theirs)
        title = (
            f"historical retrieval, {name}, {workload.entity_rows:,} entity rows, "
            f"output {args.output}, layout {workload.layout}"
        )
        print_results(title, results)
        for r in results:
            if r.ok:
                print(f"  {r.label}: {r.detail.get('engine')}; {r.detail.get('rows'):,} rows")
        if len(results) == 2 and all(r.ok for r in results):
            compare_outputs(ours_out, work / "feast.parquet", features)
    return 0 if results[0].ok else 1


if __name__ == "__main__":
    sys.exit(script_entry(main, child_main))
