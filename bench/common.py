"""Helpers shared by the benchmarks: workload caching, child processes, timing and reporting.

Every measured engine runs in its own fresh Python process (:func:`run_child`), so its peak
resident memory (``ru_maxrss``) belongs to that engine alone. A child reports one JSON object on
a line starting with :data:`RESULT_PREFIX`; a child that dies (out of memory, crash) is reported
as a failed result instead of failing the benchmark.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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
    result = load_generator().generate(out, workload, seed, log=log)
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
                    killed_for = f"killed at {rss_mb:,.0f} MB, over the {memory_cap_mb:,.0f} MB cap"
            if timeout is not None and time.monotonic() - started > timeout:
                killed_for = f"killed after the {timeout:.0f} s timeout"
            if killed_for is not None:
                _kill_tree(proc, watched)
                break
        proc.wait()
        out.seek(0)
        stdout = out.read()
    payload: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(f"  [{label}] {line}")
    if killed_for is not None:
        return ChildResult(label, ok=False, peak_mb=peak_seen_mb or None, error=killed_for)
    if proc.returncode != 0 or payload is None:
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} (out of memory?)"
        else:
            reason = f"exited with status {proc.returncode}"
        if payload is not None and payload.get("error"):
            reason += f": {payload['error']}"
        return ChildResult(label, ok=False, peak_mb=peak_seen_mb or None, error=reason)
    if payload.get("error"):
        return ChildResult(label, ok=False, peak_mb=payload.get("peak_mb"), error=payload["error"])
    return ChildResult(
        label,
        ok=True,
        seconds=payload["seconds"],
        peak_mb=payload["peak_mb"],
        detail={k: v for k, v in payload.items() if k not in {"seconds", "peak_mb"}},
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
