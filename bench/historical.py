"""Historical retrieval benchmark: a point-in-time join of 1M entity rows, optionally vs Feast.

    python bench/historical.py --size S                   # featurestore alone
    python bench/historical.py --size L --compare feast   # and Feast 0.67 on the same files
    python bench/historical.py --no-ttl --compare feast   # 1M entity rows x ~5M rows, no TTL

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
import shutil
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import (
    REPO_DIR,
    ChildResult,
    emit_result,
    ensure_workload,
    load_generator,
    machine_summary,
    peak_rss_mb,
    print_results,
    run_child,
    stopwatch,
)

ROW_ID = "row_id"
FEAST_STORES = ("dask", "duckdb")
#: Drivers for the no-TTL case: 7,716 x 720 hours x 90% = ~5.0M feature rows.
NO_TTL_DRIVERS = 7_716


@dataclass(frozen=True)
class ViewSpec:
    """One feature view of the workload, described once for both engines."""

    name: str
    entity: str
    join_key: str
    file: str
    ttl: timedelta | None
    features: tuple[tuple[str, str], ...]  # (name, featurestore.types / feast.types name)

    @property
    def refs(self) -> list[str]:
        return [f"{self.name}:{feature}" for feature, _ in self.features]


DRIVER_FEATURES = (
    ("conv_rate", "Float32"),
    ("acc_rate", "Float32"),
    ("avg_daily_trips", "Int64"),
    ("trip_distance", "Float64"),
)
CUSTOMER_FEATURES = (
    ("current_balance", "Float32"),
    ("avg_passenger_count", "Float32"),
    ("lifetime_trip_count", "Int64"),
)


def views_for(no_ttl: bool) -> list[ViewSpec]:
    """The views to query: both example views, or the driver view without TTL."""
    driver = ViewSpec(
        "driver_hourly_stats",
        "driver",
        "driver_id",
        "driver_stats.parquet",
        None if no_ttl else timedelta(hours=2),
        DRIVER_FEATURES,
    )
    if no_ttl:
        return [driver]
    customer = ViewSpec(
        "customer_daily_profile",
        "customer",
        "customer_id",
        "customer_profile.parquet",
        timedelta(days=2),
        CUSTOMER_FEATURES,
    )
    return [driver, customer]


# -- building the two repositories ---------------------------------------------------------------


def build_our_repo(target: Path, data_dir: Path, views: Sequence[ViewSpec]) -> Path:
    """A featurestore repository in ``target`` whose ``data/`` links to the workload files."""
    target.mkdir(parents=True)
    (target / "data").mkdir()
    for view in views:
        (target / "data" / view.file).symlink_to(data_dir / view.file)
    shutil.copy(REPO_DIR / "featurestore.yaml", target / "featurestore.yaml")
    if len(views) == 2 and all(v.ttl is not None for v in views):
        # The standard case runs the example repository's own definitions.
        shutil.copy(REPO_DIR / "features.py", target / "features.py")
    else:
        (target / "features.py").write_text(_our_definitions(views))
    return target


def _our_definitions(views: Sequence[ViewSpec]) -> str:
    """Python source of featurestore definitions for ``views`` (used for the no-TTL case)."""
    types = sorted({dtype for view in views for _, dtype in view.features} | {"Int64"})
    lines = [
        "from datetime import timedelta",
        "",
        "from featurestore import Entity, FeatureView, Field, FileSource",
        f"from featurestore.types import {', '.join(types)}",
        "",
    ]
    for view in views:
        ttl = "None" if view.ttl is None else f"timedelta(seconds={view.ttl.total_seconds()})"
        fields = ", ".join(f'Field(name="{n}", dtype={t})' for n, t in view.features)
        lines += [
            f'{view.entity} = Entity(name="{view.entity}", join_keys=["{view.join_key}"], '
            "value_type=Int64)",
            f'{view.name} = FeatureView(name="{view.name}", entities=[{view.entity}], ttl={ttl},',
            f"    schema=[{fields}],",
            f'    source=FileSource(path="data/{view.file}", timestamp_field="event_timestamp",',
            '                      created_timestamp_column="created"))',
            "",
        ]
    return "\n".join(lines)


def build_feast_repo(target: Path, store: str) -> Path:
    """A Feast repository folder: only ``feature_store.yaml``; definitions are applied in code."""
    target.mkdir(parents=True)
    (target / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: bench
            registry: {target / "registry.db"}
            provider: local
            offline_store:
              type: {store}
            online_store:
              type: sqlite
              path: {target / "online.db"}
            entity_key_serialization_version: 3
            """
        )
    )
    return target


# -- child processes -----------------------------------------------------------------------------


def _entity_frame(path: str) -> Any:
    """The entity frame as pandas, with a row id so outputs can be aligned to the input."""
    frame = pq.read_table(path).to_pandas()
    frame[ROW_ID] = np.arange(len(frame), dtype=np.int64)
    return frame


def child_apply_ours(repo: str) -> None:
    """Apply the repository (as ``featurestore apply`` does); not timed."""
    from featurestore import FeatureStore  # imported here: a Feast child must not load it

    with stopwatch() as elapsed, FeatureStore(repo_path=repo) as store:
        store.apply()
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb()})


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


def _feast_objects(views: Sequence[ViewSpec], data_dir: Path) -> list[Any]:
    import feast
    import feast.types

    objects: list[Any] = []
    for view in views:
        entity = feast.Entity(
            name=view.entity, join_keys=[view.join_key], value_type=feast.ValueType.INT64
        )
        source = feast.FileSource(
            name=f"{view.name}_source",
            path=str(data_dir / view.file),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        schema = [feast.Field(name=view.join_key, dtype=feast.types.Int64)] + [
            feast.Field(name=name, dtype=getattr(feast.types, dtype))
            for name, dtype in view.features
        ]
        objects += [
            entity,
            feast.FeatureView(
                name=view.name,
                entities=[entity],
                # Feast spells "no TTL" as a zero timedelta.
                ttl=view.ttl if view.ttl is not None else timedelta(0),
                schema=schema,
                source=source,
                online=False,
            ),
        ]
    return objects


def child_apply_feast(repo: str, data_dir: str, no_ttl: bool) -> None:
    """Register the equivalent Feast definitions; not timed."""
    import feast

    store = feast.FeatureStore(repo_path=repo)
    with stopwatch() as elapsed:
        store.apply(_feast_objects(views_for(no_ttl), Path(data_dir)))
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb()})


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
    parser.add_argument("kind", choices=["apply-ours", "ours", "apply-feast", "feast"])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--entity")
    parser.add_argument("--out")
    parser.add_argument("--data")
    parser.add_argument("--refs", default="")
    parser.add_argument("--output", default="pandas")
    parser.add_argument("--no-ttl", action="store_true")
    args = parser.parse_args(argv)
    refs = [r for r in args.refs.split(",") if r]
    try:
        if args.kind == "apply-ours":
            child_apply_ours(args.repo)
        elif args.kind == "ours":
            child_retrieve_ours(args.repo, args.entity, args.out, refs, args.output)
        elif args.kind == "apply-feast":
            child_apply_feast(args.repo, args.data, args.no_ttl)
        else:
            child_retrieve_feast(args.repo, args.entity, args.out, refs, args.output)
    except (Exception, MemoryError) as exc:
        # Report the failure as this engine's result; the parent carries on.
        traceback.print_exc()
        emit_result({"error": f"{type(exc).__name__}: {exc}"[:500], "peak_mb": peak_rss_mb()})
        return 1
    return 0


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


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(
        description="Point-in-time retrieval benchmark (featurestore, optionally vs Feast)."
    )
    parser.add_argument("--size", default="S", choices=["XS", "S", "L"])
    parser.add_argument("--compare", choices=["feast"], help="also run Feast on the same workload")
    parser.add_argument(
        "--no-ttl",
        action="store_true",
        help=f"1M entity rows against ~5M driver rows ({NO_TTL_DRIVERS:,} drivers), view without TTL "
        "(--size is ignored)",
    )
    parser.add_argument(
        "--entity-rows", type=int, help="entity frame length (default 1M; XS: 1000)"
    )
    parser.add_argument("--seed", type=int, default=42)
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
    parser.add_argument("--feast-python", help="interpreter to run Feast with (default: this one)")
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=12.0,
        help="kill an engine whose memory passes this (the machine is shared); default 12",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    args = parser.parse_args(argv)

    generator = load_generator()
    if args.no_ttl:
        name = "NT5M"
        workload = generator.Workload(
            drivers=NO_TTL_DRIVERS,
            customers=NO_TTL_DRIVERS,
            days=30,
            entity_rows=args.entity_rows or 1_000_000,
        )
    else:
        name = args.size
        workload = generator.workload_for(args.size, args.entity_rows)
    if args.entity_rows is not None:
        name += f"-e{args.entity_rows}"
    data_dir = ensure_workload(name, workload, args.seed)
    views = views_for(args.no_ttl)
    refs = [ref for view in views for ref in view.refs]
    features = [feature for view in views for feature, _ in view.features]
    entity = str(data_dir / generator.ENTITY_FILE)
    cap_mb = args.memory_cap_gb * 1024
    print(
        f"workload {name}: {data_dir}; {workload.entity_rows:,} entity rows; "
        f"{len(refs)} features of {', '.join(v.name for v in views)}; "
        f"TTLs {', '.join(str(v.ttl) for v in views)}; output {args.output}; {machine_summary()}"
    )

    work = Path(tempfile.mkdtemp(prefix="featurestore-bench-"))
    me = str(Path(__file__).resolve())
    try:
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
        title = f"historical retrieval, {name}, {workload.entity_rows:,} entity rows, output {args.output}"
        print_results(title, results)
        for r in results:
            if r.ok:
                print(f"  {r.label}: {r.detail.get('engine')}; {r.detail.get('rows'):,} rows")
        if len(results) == 2 and all(r.ok for r in results):
            compare_outputs(ours_out, work / "feast.parquet", features)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if results[0].ok else 1


if __name__ == "__main__":
    sys.exit(main())
