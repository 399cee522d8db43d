"""Helpers shared by the benchmarks: workload caching, child processes, timing and reporting.

Every measured engine runs in its own fresh Python process (:func:`run_child`), so its peak
resident memory (``ru_maxrss``) belongs to that engine alone. A child reports one JSON object on
a line starting with :data:`RESULT_PREFIX`; a child that dies (out of memory, crash) is reported
as a failed result instead of failing the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

try:
    import psutil
except ImportError:  # only the memory watchdog needs it; the `bench` extra installs it
    psutil = None

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
REPO_DIR = ROOT / "repo"
DATA_ROOT = BENCH_DIR / "data"
RESULT_PREFIX = "BENCH-RESULT "
MARKER = "workload.json"


def load_generator() -> ModuleType:
    """Import ``repo/generate_data.py`` (the example repository is not a package)."""
    module = sys.modules.get("featurestore_example_generate_data")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(
        "featurestore_example_generate_data", REPO_DIR / "generate_data.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before executing so dataclasses can resolve the module's annotations.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ensure_workload(
    name: str, workload: Any, seed: int, log: Callable[[str], None] = print
) -> Path:
    """The folder holding ``workload`` generated with ``seed``; generated on first use only.

    The cache lives in ``bench/data/<name>-<seed>/`` and is valid when its ``workload.json``
    marker (written last) describes the same workload and seed.
    """
    out = DATA_ROOT / f"{name}-{seed}"
    marker = out / MARKER
    wanted = {"workload": asdict(workload), "seed": seed}
    if marker.is_file():
        stored = json.loads(marker.read_text())
        if {"workload": stored.get("workload"), "seed": stored.get("seed")} == wanted:
            log(f"reusing cached workload {out} ({stored['driver_rows']:,} driver rows)")
            return out
        log(f"cached workload in {out} differs from the one asked for: regenerating")
        marker.unlink()
    generator = load_generator()
    # The fixed end keeps a seed's workload the same files on every day (the example data ends now).
    result = generator.generate(out, workload, seed, log=log, end=generator.END)
    marker.write_text(
        json.dumps(
            {
                **wanted,
                "driver_rows": result.driver_rows,
                "customer_rows": result.customer_rows,
                "entity_rows": result.entity_rows,
            },
            indent=2,
        )
    )
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Measure the wall-clock seconds of a block: ``with stopwatch() as t: ...; t[0]``."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started


def emit_result(payload: dict[str, Any]) -> None:
    """Called by a child process: hand its measurements to the parent."""
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


@dataclass
class ChildResult:
    """What one measured child process reported, or why it failed."""

    label: str
    ok: bool
    seconds: float | None = None
    peak_mb: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: Wall-clock seconds of the whole child process, as the parent saw it.
    wall_seconds: float | None = None


def run_child(
    label: str,
    argv: Sequence[str],
    *,
    python: str | None = None,
    memory_cap_mb: float | None = None,
    timeout: float | None = None,
) -> ChildResult:
    """Run ``python argv...`` in a fresh process and collect its result line.

    The child's stderr passes through (progress, warnings); stdout is scanned for the result.
    With ``memory_cap_mb`` (and psutil installed) a child whose resident memory, with its own
    children, passes the cap is killed: the machine is shared, and an engine that runs away
    must not take the other processes down with it.
    """
    command = [python or sys.executable, *argv]
    started = time.monotonic()
    killed_for: str | None = None
    peak_seen_mb = 0.0
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=None, text=True)
        watched = _watch(proc.pid) if memory_cap_mb is not None else None
        while proc.poll() is None:
            time.sleep(0.2)
            if watched is not None:
                rss_mb = _tree_rss_mb(watched)
                peak_seen_mb = max(peak_seen_mb, rss_mb)
                if memory_cap_mb is not None and rss_mb > memory_cap_mb:
                    killed_for = (
                        f"killed at {rss_mb / 1024:.1f} GB after {time.monotonic() - started:.0f} s "
                        f"(over the {memory_cap_mb / 1024:.1f} GB cap)"
                    )
            if timeout is not None and time.monotonic() - started > timeout:
                killed_for = (
                    f"killed after the {timeout:.0f} s timeout (at {peak_seen_mb / 1024:.1f} GB)"
                )
            if killed_for is not None:
                _kill_tree(proc, watched)
                break
        proc.wait()
        wall = time.monotonic() - started
        out.seek(0)
        stdout = out.read()
    payload: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(f"  [{label}] {line}")
    if killed_for is not None:
        return ChildResult(
            label, ok=False, peak_mb=peak_seen_mb or None, error=killed_for, wall_seconds=wall
        )
    if proc.returncode != 0 or payload is None:
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} (out of memory?) after {wall:.0f} s"
            if peak_seen_mb:
                reason += f", at {peak_seen_mb / 1024:.1f} GB"
        else:
            reason = f"exited with status {proc.returncode}"
        if payload is not None and payload.get("error"):
            reason += f": {payload['error']}"
        return ChildResult(
            label, ok=False, peak_mb=peak_seen_mb or None, error=reason, wall_seconds=wall
        )
    if payload.get("error"):
        return ChildResult(
            label,
            ok=False,
            peak_mb=payload.get("peak_mb"),
            error=payload["error"],
            wall_seconds=wall,
        )
    return ChildResult(
        label,
        ok=True,
        seconds=payload["seconds"],
        peak_mb=payload["peak_mb"],
        detail={k: v for k, v in payload.items() if k not in {"seconds", "peak_mb"}},
        wall_seconds=wall,
    )


def _watch(pid: int) -> Any:
    if psutil is None:
        return None
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _tree_rss_mb(process: Any) -> float:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return float(total) / 2**20


def _kill_tree(proc: subprocess.Popen[str], watched: Any) -> None:
    """Kill the child and any processes it started (dask workers, for instance)."""
    children = []
    if watched is not None:
        with contextlib.suppress(psutil.Error):
            children = watched.children(recursive=True)
    proc.kill()
    for child in children:
        # It may have exited meanwhile.
        with contextlib.suppress(psutil.Error):
            child.kill()


def print_results(title: str, results: Sequence[ChildResult]) -> None:
    """A small table: engine, seconds, peak MiB, and the ratio to the first (our) engine."""
    print(f"\n{title}")
    print(f"  {'engine':<28} {'seconds':>9} {'peak MB':>9}")
    for r in results:
        if r.ok:
            print(f"  {r.label:<28} {r.seconds:>9.2f} {r.peak_mb:>9.0f}")
        else:
            print(f"  {r.label:<28} {'FAILED':>9} {'':>9}  {r.error}")
    ours = results[0]
    for other in results[1:]:
        if ours.ok and other.ok and ours.seconds and ours.peak_mb:
            assert other.seconds is not None
            assert other.peak_mb is not None
            print(
                f"  {other.label} / {ours.label}: time x{other.seconds / ours.seconds:.2f}, "
                f"peak memory x{other.peak_mb / ours.peak_mb:.2f}"
            )


def machine_summary() -> str:
    """One line describing where the numbers were taken."""
    cores = os.cpu_count()
    memory = "? GiB" if psutil is None else f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {cores} cores, {memory}"
    )


# -- the workload's feature views, described once for both engines -------------------------------


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
#: Drivers for the no-TTL case: 7,716 x 720 hours x 90% = ~5.0M feature rows.
NO_TTL_DRIVERS = 7_716


def views_for(no_ttl: bool = False, ttl: timedelta | None = None) -> list[ViewSpec]:
    """The views of the example repository, or (``no_ttl``) the driver view without TTL alone.

    ``ttl`` replaces the TTL of both views: ``serving.py`` widens it to cover the data's age,
    because its REST lookups are evaluated at the current time, long after the workload's end.
    """
    driver = ViewSpec(
        "driver_hourly_stats",
        "driver",
        "driver_id",
        "driver_stats.parquet",
        None if no_ttl else ttl or timedelta(hours=2),
        DRIVER_FEATURES,
    )
    if no_ttl:
        return [driver]
    customer = ViewSpec(
        "customer_daily_profile",
        "customer",
        "customer_id",
        "customer_profile.parquet",
        ttl or timedelta(days=2),
        CUSTOMER_FEATURES,
    )
    return [driver, customer]


def workload_window(workload: Any) -> tuple[datetime, datetime]:
    """The generated period of ``workload``: ``[end - days, end]``, every source row inside."""
    end = load_generator().END
    return end - timedelta(days=workload.days), end


def guarded(body: Callable[[], None]) -> int:
    """Run a child's work; on failure print the traceback and report it as the child's result.

    The parent then shows the error as that engine's result and carries on.
    """
    try:
        body()
    except (Exception, MemoryError) as exc:
        traceback.print_exc()
        emit_result({"error": f"{type(exc).__name__}: {exc}"[:500], "peak_mb": peak_rss_mb()})
        return 1
    return 0


def bench_parser(description: str, *, what: str) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--size`` and the options of a comparison with Feast."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", default="S", choices=["XS", "S", "L"])
    parser.add_argument("--compare", choices=["feast"], help=f"also {what} with Feast")
    parser.add_argument("--feast-python", help="interpreter to run Feast with (default: this one)")
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=12.0,
        help="kill an engine whose memory passes this (the machine is shared); default 12",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    return parser


def script_entry(main: Callable[[list[str]], int], child_main: Callable[[list[str]], int]) -> int:
    """Run a benchmark script: ``--child ...`` is one of its measured child processes."""
    argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    return main(argv)


@contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    """A temporary folder for the run's repositories, removed afterwards unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix="featurestore-bench-"))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- online stores -------------------------------------------------------------------------------

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
#: Redis databases of the benchmarks (the server is shared): ours, and Feast's.
OUR_REDIS_DB = 10
FEAST_REDIS_DB = 11


def start_redis_cluster(folder: Path) -> Any:
    """A 3-master, 3-replica Redis Cluster of the run's own, started from ``redis-server`` with
    the launcher the tests use (``tests/redis_cluster.py``); ``.stop()`` kills it."""
    spec = importlib.util.spec_from_file_location(
        "redis_cluster", Path(__file__).resolve().parent.parent / "tests" / "redis_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["redis_cluster"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    cluster = module.RedisClusterProcesses(folder, module.free_cluster_ports(6))
    try:
        cluster.create()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass(frozen=True)
class OnlineTarget:
    """Where each engine's online store lives for one run: a Redis database, a Redis Cluster of
    the run's own, or a SQLite file."""

    kind: str  # "redis", "redis-cluster" or "sqlite"
    work: Path
    #: Our ``expiry_grace`` (how long a row outlives its view's TTL); None: the default.
    expiry_grace: timedelta | None = None
    #: The cluster's processes (``kind == "redis-cluster"``), stopped by :meth:`stop`.
    cluster: Any = None

    def stop(self) -> None:
        """Stop the run's own Redis Cluster, if any."""
        if self.cluster is not None:
            self.cluster.stop()

    def ours(self) -> dict[str, Any]:
        """Our ``online_store`` setting."""
        config: dict[str, Any]
        if self.kind == "redis-cluster":
            config = {"type": "redis", "url": self.cluster.url, "cluster": True}
        elif self.kind == "redis":
            config = {"type": "redis", "url": f"redis://{REDIS_HOST}:{REDIS_PORT}/{OUR_REDIS_DB}"}
        else:
            config = {"type": "sqlite", "path": str(self.work / "ours-online.db")}
        if self.expiry_grace is not None:
            config["expiry_grace"] = int(self.expiry_grace.total_seconds())
        return config

    def feast(self) -> dict[str, Any]:
        """Feast's ``online_store`` setting."""
        if self.kind == "redis":
            return {
                "type": "redis",
                "connection_string": f"{REDIS_HOST}:{REDIS_PORT},db={FEAST_REDIS_DB}",
            }
        return {"type": "sqlite", "path": str(self.work / "feast-online.db")}

    def describe(self, engine: str) -> str:
        """Human-readable location of ``engine``'s ("ours" / "feast") online data."""
        if self.kind == "redis-cluster":
            return f"Redis Cluster {self.cluster.url} (3 masters, 3 replicas)"
        if self.kind == "redis":
            db = OUR_REDIS_DB if engine == "ours" else FEAST_REDIS_DB
            return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        return str(self.work / f"{engine}-online.db")

    def _redis(self, engine: str) -> Any:
        import redis

        db = OUR_REDIS_DB if engine == "ours" else FEAST_REDIS_DB
        return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)

    def _cluster_client(self) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(self.cluster.url)

    def flush(self, engine: str) -> None:
        """Empty ``engine``'s online data (FLUSHDB of its own Redis database only; the run's own
        cluster holds only ours)."""
        if self.kind == "redis-cluster":
            client = self._cluster_client()
            client.flushall(target_nodes=client.PRIMARIES)
            client.close()
            return
        if self.kind == "redis":
            client = self._redis(engine)
            client.flushdb()
            client.close()
            return
        # Empty the tables but keep them: Feast creates its tables at apply time only.
        for table, db in self._sqlite_tables(engine):
            db.execute(f'DELETE FROM "{table}"')

    def _sqlite_tables(self, engine: str) -> Iterator[tuple[str, Any]]:
        """Each table of ``engine``'s SQLite file with an open connection (committed after)."""
        import sqlite3

        path = self.work / f"{engine}-online.db"
        if not path.exists():
            return
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            for (table,) in names:
                yield table, db

    def count_keys(self, engine: str) -> int:
        """Keys in ``engine``'s Redis database, or rows in all tables of its SQLite file."""
        if self.kind == "sqlite":
            return sum(
                int(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
                for table, db in self._sqlite_tables(engine)
            )
        if self.kind == "redis-cluster":
            cluster = self._cluster_client()
            try:
                return int(cluster.dbsize(target_nodes=cluster.PRIMARIES))
            finally:
                cluster.close()
        client = self._redis(engine)
        try:
            return int(client.dbsize())
        finally:
            client.close()
