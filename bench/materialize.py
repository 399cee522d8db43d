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
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from common import (
    ChildResult,
    OnlineTarget,
    ViewSpec,
    bench_parser,
    emit_result,
    ensure_workload,
    guarded,
    load_generator,
    machine_summary,
    peak_rss_mb,
    run_child,
    script_entry,
    start_redis_cluster,
    stopwatch,
    views_for,
    work_dir,
    workload_window,
)
from repos import (
    DEFINITION_STYLES,
    build_feast_repo,
    build_our_repo,
    child_apply_feast,
    child_apply_ours,
)

ME = str(Path(__file__).resolve())
ENGINES = ("ours", "feast")
#: By run key (:attr:`EngineRun.key`): ours per definition style, and Feast.
LABELS = {"ours": "featurestore", "ours-untyped": "fs untyped", "feast": "feast (duckdb)"}
#: Entity keys looked up through both SDKs after the runs.
SAMPLE_KEYS = 1_000
#: Status our SDK gives a value older than its view's TTL (Feast serves it as present).
OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


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


# -- preparing and running the engines -----------------------------------------------------------


@dataclass
class EngineRun:
    """One engine's applied repository, its interpreter, and its materialization runs."""

    engine: str
    repo: Path
    python: str
    runs: list[ChildResult] = field(default_factory=list)
    #: Ours only: entities declared with value_type ("typed") or without ("untyped").
    style: str = "typed"

    @property
    def key(self) -> str:
        """``ours``, ``ours-untyped`` or ``feast``: what results and labels are keyed by."""
        return self.engine if self.style == "typed" else f"{self.engine}-{self.style}"

    @property
    def label(self) -> str:
        return LABELS[self.key]

    def best(self) -> ChildResult:
        """The fastest successful run, or the last failure."""
        ok = [r for r in self.runs if r.ok]
        if not ok:
            return self.runs[-1]
        return min(ok, key=lambda r: r.seconds or math.inf)

    @property
    def ok(self) -> bool:
        return any(r.ok for r in self.runs)


def prepare_engine(
    engine: str,
    work: Path,
    data_dir: Path,
    target: OnlineTarget,
    python: str,
    ttl: timedelta | None = None,
    style: str = "typed",
) -> EngineRun | ChildResult:
    """Build and apply ``engine``'s repository over ``data_dir``; the failed apply otherwise.

    ``ttl`` replaces the views' TTLs (see :func:`common.views_for`); ``style`` is how our
    entities are written (see :data:`repos.DEFINITION_STYLES`).
    """
    views = views_for(ttl=ttl)
    label = LABELS[engine if style == "typed" else f"{engine}-{style}"]
    if engine == "ours":
        folder = work / ("ours" if style == "typed" else f"ours-{style}")
        repo = build_our_repo(folder, data_dir, views, online_store=target.ours(), style=style)
        argv = [ME, "--child", "apply-ours", "--repo", str(repo)]
    else:
        repo = build_feast_repo(work / "feast", "duckdb", online_store=target.feast())
        argv = [ME, "--child", "apply-feast", "--repo", str(repo), "--data", str(data_dir)]
        if ttl is not None:
            argv += ["--ttl-seconds", str(ttl.total_seconds())]
    applied = run_child(f"{label} apply", argv, python=python)
    if not applied.ok:
        return ChildResult(label, ok=False, error=f"apply failed: {applied.error}")
    return EngineRun(engine, repo, python, style=style)


def materialize_once(
    run: EngineRun,
    target: OnlineTarget,
    window: tuple[datetime, datetime],
    *,
    memory_cap_mb: float,
    timeout: float | None,
    flush: bool = True,
) -> ChildResult:
    """Empty the engine's online store (unless not ``flush``), then time one materialization
    of ``window`` in a child."""
    if flush:
        target.flush(run.engine)
    start, end = window
    result = run_child(
        run.label,
        [ME, "--child", run.engine, "--repo", str(run.repo),
         "--start", start.isoformat(), "--end", end.isoformat()],
        python=run.python,
        memory_cap_mb=memory_cap_mb,
        timeout=timeout,
    )  # fmt: skip
    if result.ok:
        result.detail["keys_in_store"] = target.count_keys(run.engine)
    run.runs.append(result)
    return result


def source_rows(
    data_dir: Path, views: Sequence[ViewSpec], window: tuple[datetime, datetime]
) -> int:
    """Source rows with an event time in ``window`` (both bounds inclusive), over all views."""
    start, end = window
    total = 0
    for view in views:
        dataset = ds.dataset(data_dir / view.file, format="parquet")
        column, kind = ds.field("event_timestamp"), dataset.schema.field("event_timestamp").type
        in_window = (column >= pa.scalar(start, kind)) & (column <= pa.scalar(end, kind))
        total += dataset.count_rows(filter=in_window)
    return total


# -- reporting -----------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> str:
    """``best (median, worst) over n`` for repeated timings."""
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return (
        f"best {min(values):.2f}, median {statistics.median(values):.2f}, "
        f"worst {max(values):.2f} over {len(values)} runs"
    )


def print_materialization(runs: Sequence[EngineRun | ChildResult], rows: int) -> None:
    """Per engine: seconds, peak MB, rows/s, keys written; every run; ratios Feast / ours."""
    print(f"\nmaterialization, {rows:,} source rows in the window")
    print(f"  {'engine':<18} {'seconds':>9} {'peak MB':>9} {'rows/s':>12} {'keys':>10}")
    for run in runs:
        if isinstance(run, ChildResult):
            print(f"  {run.label:<18} {'FAILED':>9}  {run.error}")
            continue
        best = run.best()
        if not best.ok:
            print(f"  {run.label:<18} {'FAILED':>9}  {best.error}")
            continue
        seconds, peak = best.seconds or math.nan, best.peak_mb or math.nan
        keys = best.detail.get("keys_in_store")
        if keys is None:
            keys = best.detail.get("keys")
        keys_text = "n/a" if keys is None else f"{keys:,}"
        print(
            f"  {run.label:<18} {seconds:>9.2f} {peak:>9.0f} "
            f"{rows / seconds:>12,.0f} {keys_text:>10}"
        )
    for run in runs:
        if isinstance(run, ChildResult):
            continue
        timings = [r.seconds for r in run.runs if r.ok and r.seconds is not None]
        peaks = [r.peak_mb for r in run.runs if r.ok and r.peak_mb is not None]
        failures = [r.error for r in run.runs if not r.ok]
        if timings:
            detail = run.best().detail
            reported = (
                f"; its report: {detail['rows_read']:,} rows read, {detail['written']:,} keys written"
                if "written" in detail
                else ""
            )
            print(
                f"  {run.label}: seconds {spread(timings)}; peak MB "
                f"{min(peaks):.0f}-{max(peaks):.0f}; {detail.get('engine')}{reported}"
            )
        for error in failures:
            print(f"  {run.label}: a run failed: {error}")
    if len(runs) != 2:
        return
    ours, theirs = runs
    if isinstance(ours, EngineRun) and isinstance(theirs, EngineRun) and ours.ok and theirs.ok:
        a, b = ours.best(), theirs.best()
        print(
            f"  {theirs.label} / {ours.label}: "
            f"time x{(b.seconds or math.nan) / (a.seconds or math.nan):.1f}, "
            f"peak memory x{(b.peak_mb or math.nan) / (a.peak_mb or math.nan):.2f}"
        )


# -- verification --------------------------------------------------------------------------------


def sample_keys(entity_file: Path, out: Path, seed: int, count: int = SAMPLE_KEYS) -> Path:
    """``count`` (driver_id, customer_id) pairs drawn from the entity frame with ``seed``.

    The frame includes ids that have no feature rows, so the sample has a few misses too.
    """
    table = pq.read_table(entity_file, columns=["driver_id", "customer_id"])
    rng = np.random.default_rng(seed)
    picked = rng.choice(table.num_rows, size=min(count, table.num_rows), replace=False)
    pq.write_table(table.take(pa.array(np.sort(picked))), out)
    return out


def lookup_sample(
    runs: Sequence[EngineRun], work: Path, keys: Path, refs: Sequence[str], end: datetime
) -> dict[str, Path]:
    """Each engine's lookup of the sample, in a child with its own SDK; the output files."""
    outputs: dict[str, Path] = {}
    for run in runs:
        out = work / f"lookup-{run.engine}.parquet"
        result = run_child(
            f"{run.label} lookup",
            [ME, "--child", f"lookup-{run.engine}", "--repo", str(run.repo), "--keys", str(keys),
             "--refs", ",".join(refs), "--out", str(out), "--end", end.isoformat()],
            python=run.python,
        )  # fmt: skip
        if result.ok:
            outputs[run.engine] = out
        else:
            print(f"  {run.label} lookup failed: {result.error}")
    return outputs


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def compare_lookups(ours_path: Path, feast_path: Path, features: Sequence[str]) -> int:
    """Value-by-value comparison of the two lookups (null == null); returns the mismatches.

    Ours is evaluated at the window's end (the consistency contract's instant). A value older
    than its view's TTL at that instant is null for us, with status ``OUTSIDE_MAX_AGE``, where
    Feast serves it as present (Feast does not check the TTL online): such cells are counted
    apart. Our lookup at the current time is summarized too (statuses only).
    """
    ours = pq.read_table(ours_path)
    theirs = pq.read_table(feast_path)
    print(f"\nlookup of {ours.num_rows:,} sampled entity keys through each SDK (null == null)")
    keys_equal = all(
        ours[k].equals(theirs[k].cast(ours[k].type)) for k in ("driver_id", "customer_id")
    )
    print(f"  same entity keys in the same order: {keys_equal}")
    print(
        f"  {'feature':<22} {'mismatch':>8} {'aged':>5} {'other':>5}   "
        f"{'nulls ours':>10} {'Feast':>6}   {OUTSIDE_MAX_AGE} now (ours)"
    )
    unexplained = 0
    for feature in features:
        a, b = _floats(ours[feature]), _floats(theirs[feature])
        bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        aged = bad & (ours[f"status:{feature}"].to_numpy(zero_copy_only=False) == OUTSIDE_MAX_AGE)
        other = np.flatnonzero(bad & ~aged)
        unexplained += other.size
        now_aged = int(
            (ours[f"status_now:{feature}"].to_numpy(zero_copy_only=False) == OUTSIDE_MAX_AGE).sum()
        )
        print(
            f"  {feature:<22} {int(bad.sum()):>8} {int(aged.sum()):>5} {other.size:>5}   "
            f"{int(np.isnan(a).sum()):>10} {int(np.isnan(b).sum()):>6}   {now_aged}"
        )
        for i in other[:5]:
            print(
                f"      driver_id={ours['driver_id'][i]} customer_id={ours['customer_id'][i]}: "
                f"ours {a[i]!r} ({ours[f'status:{feature}'][i]}), Feast {b[i]!r}"
            )
    print(
        "  aged: ours null as OUTSIDE_MAX_AGE at the window's end, Feast serves the stale value; "
        f"other: any other difference. {unexplained} other mismatching values in all"
    )
    return unexplained


# -- the benchmark -------------------------------------------------------------------------------


def add_online_arguments(
    parser: argparse.ArgumentParser, modes: Sequence[tuple[str, str]] = ()
) -> None:
    """Options shared with ``online.py``: the online store, the window, Feast's time limit.
    ``modes``: more ``--online`` choices of the calling script, as (name, help) pairs."""
    parser.add_argument(
        "--online",
        choices=["redis", "redis-cluster", "sqlite", *(name for name, _ in modes)],
        default="redis",
        help="where the online data goes (redis-cluster: a 6-node cluster of the run's own, "
        "ours only" + "".join(f"; {name}: {text}" for name, text in modes) + ")",
    )
    parser.add_argument(
        "--days", type=int, help="materialize only the last N days of the window (both engines)"
    )
    parser.add_argument(
        "--feast-timeout", type=float, default=1200.0, help="seconds per Feast run; default 20 min"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run of ours")


def add_definitions_argument(parser: argparse.ArgumentParser) -> None:
    """``--definitions``: run ours with typed entities, untyped ones, or both (the default)."""
    parser.add_argument(
        "--definitions",
        choices=[*DEFINITION_STYLES, "both"],
        default="both",
        help="our entities with value_type declared (typed), without it as Feast users write "
        "them (untyped: apply infers the key types from the sources), or both (default)",
    )


def definition_styles(args: argparse.Namespace) -> tuple[str, ...]:
    """The styles ``--definitions`` asks for (typed only when the script has no such option)."""
    chosen = getattr(args, "definitions", "typed")
    return DEFINITION_STYLES if chosen == "both" else (chosen,)


@dataclass
class Setup:
    """A prepared run: the workload, the window, the store location and both engines."""

    name: str
    data_dir: Path
    window: tuple[datetime, datetime]
    target: OnlineTarget
    engines: list[EngineRun | ChildResult]


def prepare(args: argparse.Namespace, work: Path, ttl: timedelta | None = None) -> Setup:
    """Ensure the workload, build and apply the engines' repositories (Feast's if comparing).

    ``ttl`` replaces the views' TTLs in both repositories (default: the example's).
    """
    generator = load_generator()
    workload = generator.workload_for(args.size)
    data_dir = ensure_workload(args.size, workload, args.seed)
    start, end = workload_window(workload)
    if args.days is not None:
        start = max(start, end - timedelta(days=args.days))
    # The generated period ends at a fixed instant, so by now its rows are older than the views'
    # TTLs: with the default expiry_grace (1 day past the TTL) our keys would expire as they are
    # written. Keep them a week past the run instead (Feast sets no expiry at all).
    grace = datetime.now(timezone.utc) - start + timedelta(days=7)
    grace_days = max(grace.days, 1)
    cluster = None
    if args.online == "redis-cluster":
        if args.compare:
            raise SystemExit("--online redis-cluster measures featurestore alone (no --compare)")
        cluster = start_redis_cluster(work / "redis-cluster")
    target = OnlineTarget(
        args.online, work, expiry_grace=timedelta(days=grace_days), cluster=cluster
    )
    print(
        f"workload {args.size}: {data_dir}; window {start.isoformat()} .. {end.isoformat()}; "
        f"online {args.online} (ours {target.describe('ours')}, expiry_grace "
        f"{grace_days} d"
        + (f", Feast {target.describe('feast')}" if args.compare else "")
        + f"); {machine_summary()}"
    )
    engines: list[EngineRun | ChildResult] = [
        prepare_engine("ours", work, data_dir, target, sys.executable, ttl, style)
        for style in definition_styles(args)
    ]
    if args.compare == "feast":
        python = args.feast_python or sys.executable
        engines.append(prepare_engine("feast", work, data_dir, target, python, ttl))
    return Setup(args.size, data_dir, (start, end), target, engines)


def materialize_all(setup: Setup, args: argparse.Namespace, repeats: dict[str, int]) -> None:
    """Materialize with each prepared engine ``repeats[engine]`` times."""
    cap_mb = args.memory_cap_gb * 1024
    for run in setup.engines:
        if isinstance(run, ChildResult):
            continue
        timeout = args.feast_timeout if run.engine == "feast" else args.timeout
        # Our definition styles share one online store (under projects of their own): a
        # style's first run must not empty what an earlier style materialized.
        shared = any(
            other is not run and other.runs
            for other in setup.engines
            if isinstance(other, EngineRun) and other.engine == run.engine
        )
        for attempt in range(repeats[run.engine]):
            result = materialize_once(
                run,
                setup.target,
                setup.window,
                memory_cap_mb=cap_mb,
                timeout=timeout,
                flush=attempt > 0 or not shared,
            )
            if not result.ok:
                break  # a run that dies once (out of memory, timeout) dies every time
    # The store keeps the last run's data; every run writes the same rows.


def cleanup(target: OnlineTarget, engines: Sequence[EngineRun | ChildResult]) -> None:
    """Empty the Redis databases this run used (and stop its own cluster)."""
    try:
        for run in engines:
            if isinstance(run, EngineRun):
                target.flush(run.engine)
    finally:
        target.stop()


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
