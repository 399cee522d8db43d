"""Setting up a benchmark's engines over the cached workload, shared by ``materialize.py``,
``online.py`` and ``serving.py``: the ``--online`` / ``--definitions`` options, the repositories
of each engine (applied in children of ``materialize.py``), their materialization runs into the
run's online store, and the clean-up afterwards.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import (
    ChildResult,
    OnlineTarget,
    ensure_workload,
    load_generator,
    machine_summary,
    run_child,
    start_redis_cluster,
    views_for,
    workload_window,
)
from repos import (
    DEFINITION_STYLES,
    build_feast_repo,
    build_our_repo,
)

#: The script whose ``--child`` entry applies and materializes (see materialize.child_main).
MATERIALIZE = str(Path(__file__).resolve().with_name("materialize.py"))
ENGINES = ("ours", "feast")
#: By run key (:attr:`EngineRun.key`): ours per definition style, and Feast.
LABELS = {"ours": "featurestore", "ours-untyped": "fs untyped", "feast": "feast (duckdb)"}


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
        argv = [MATERIALIZE, "--child", "apply-ours", "--repo", str(repo)]
    else:
        repo = build_feast_repo(work / "feast", "duckdb", online_store=target.feast())
        argv = [MATERIALIZE, "--child", "apply-feast", "--repo", str(repo), "--data", str(data_dir)]
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
        [MATERIALIZE, "--child", run.engine, "--repo", str(run.repo),
         "--start", start.isoformat(), "--end", end.isoformat()],
        python=run.python,
        memory_cap_mb=memory_cap_mb,
        timeout=timeout,
    )  # fmt: skip
    if result.ok:
        result.detail["keys_in_store"] = target.count_keys(run.engine)
    run.runs.append(result)
    return result


# -- the options and the run -------------------------------------------------------------------------------


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
