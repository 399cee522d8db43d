"""What ``serving.py`` prints: the load client's calibration, each engine's figures per
concurrency, the ratios against Feast and the issue's targets, and the ``BENCH-RESULT`` lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from common import (
    RESULT_PREFIX,
)
from engine_runs import (
    LABELS,
)
from http_load import (
    LoadResult,
)
from serving_check import PATH

#: Targets of the issue: at 8 connections at least 3x Feast's throughput with p99 <= 10 ms;
#: at 1 connection p99 <= 1 ms.
TARGET_RATIO, TARGET_P99_8_MS, TARGET_P99_1_MS = 3.0, 10.0, 1.0


@dataclass(frozen=True)
class Measurement:
    """One engine at one concurrency: the client's figures and the server's CPU and memory."""

    engine: str
    workers: int
    load: LoadResult
    server_peak_mb: float

    @property
    def server_cpu_share(self) -> float:
        """The server's CPU time over the window's wall time (1.0 = one core busy)."""
        return (self.load.server_cpu_seconds or math.nan) / self.load.seconds

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * (self.load.server_cpu_seconds or math.nan) / max(self.load.requests, 1)


def print_calibration(results: Sequence[LoadResult]) -> None:
    """What the client reaches, and costs, against the trivial server."""
    print("\nload client alone, against a trivial server (1 KB JSON answer, 3 s per level):")
    for r in results:
        print(
            f"  {r.connections} connection(s): {r.throughput:,.0f} req/s, p50 {r.p50_ms:.3f} ms, "
            f"p99 {r.p99_ms:.3f} ms; client CPU {1e6 * r.client_cpu_seconds / r.requests:.0f} "
            "us per request"
        )


def print_measurements(measurements: Sequence[Measurement], setting: str) -> None:
    """Per engine and concurrency: throughput, latency, errors, server memory and CPU."""
    print(f"\nPOST {PATH}, 1 entity, 2 views, 7 features; {setting}")
    print(
        f"  {'engine':<14} {'conns':>5} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'errors':>6} {'peak MB':>8} {'server CPU':>14} "
        f"{'client CPU':>10}"
    )
    for m in measurements:
        load = m.load
        print(
            f"  {LABELS[m.engine]:<14} {load.connections:>5} {load.requests:>9,} "
            f"{load.throughput:>8,.0f} {load.p50_ms:>7.2f} {load.p90_ms:>7.2f} "
            f"{load.p99_ms:>7.2f} {load.max_ms:>7.1f} {load.errors:>6} {m.server_peak_mb:>8.0f} "
            f"{m.server_cpu_share:>5.0%} {m.server_cpu_ms_per_request:>5.2f} ms "
            f"{load.client_cpu_seconds / load.seconds:>10.0%}"
        )
    print(
        "  peak MB: the server's processes' peak RSS (VmHWM, summed); server CPU: its CPU time "
        "over wall time (100% = one core) and per request; client CPU: over wall time"
    )
    by_key = {(m.engine, m.load.connections): m for m in measurements}
    mine = [key for key in dict.fromkeys(m.engine for m in measurements) if key != "feast"]
    for key in mine:
        for connections in sorted({m.load.connections for m in measurements}):
            ours, theirs = by_key.get((key, connections)), by_key.get(("feast", connections))
            if ours and theirs:
                print(
                    f"  {LABELS[key]} / Feast, {connections} connection(s): throughput "
                    f"x{_ratio(ours.load.throughput, theirs.load.throughput):.2f}, "
                    f"p50 x{_ratio(ours.load.p50_ms, theirs.load.p50_ms):.2f}, "
                    f"p99 x{_ratio(ours.load.p99_ms, theirs.load.p99_ms):.2f}"
                )
    for key in mine:
        print_targets(by_key, key)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def print_targets(by_key: dict[tuple[str, int], Measurement], key: str = "ours") -> None:
    """The issue's targets for our run ``key``, met or missed, where this run measured them."""
    ours8, feast8 = by_key.get((key, 8)), by_key.get(("feast", 8))
    ours1 = by_key.get((key, 1))
    if ours8 and feast8:
        ratio = _ratio(ours8.load.throughput, feast8.load.throughput)
        met = ratio >= TARGET_RATIO and ours8.load.p99_ms <= TARGET_P99_8_MS
        print(
            f"  {LABELS[key]} target, 8 connections: >= x{TARGET_RATIO:.0f} Feast's throughput with p99 <= "
            f"{TARGET_P99_8_MS:.0f} ms: {'met' if met else 'MISSED'} "
            f"(x{ratio:.2f}, p99 {ours8.load.p99_ms:.2f} ms)"
        )
    if ours1:
        met = ours1.load.p99_ms <= TARGET_P99_1_MS
        print(
            f"  {LABELS[key]} target, 1 connection: p99 <= {TARGET_P99_1_MS:.0f} ms: "
            f"{'met' if met else 'MISSED'} (p99 {ours1.load.p99_ms:.2f} ms)"
        )


def emit_measurements(
    measurements: Sequence[Measurement], versions: dict[str, str], pinning: str
) -> None:
    """One machine-readable ``BENCH-RESULT`` line per engine and concurrency."""
    for m in measurements:
        payload = {
            "bench": "serving",
            "engine": versions.get(m.engine, m.engine),
            "run": m.engine,  # ours, ours-untyped (entities without value_type) or feast
            "workers": m.workers,
            **asdict(m.load),
            "throughput": m.load.throughput,
            "errors": m.load.errors,
            "server_peak_mb": m.server_peak_mb,
            "pinning": pinning,
        }
        print(RESULT_PREFIX + json.dumps(payload))
