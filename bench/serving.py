"""REST serving benchmark: throughput and latency of ``POST /get-online-features``; vs Feast.

    python bench/serving.py                                 # featurestore alone, size S, Redis
    python bench/serving.py --compare feast --feast-python .venv-feast/bin/python
    python bench/serving.py --compare feast --feast-python .venv-feast/bin/python --workers 2
    python bench/serving.py --definitions untyped           # entities without value_type only

Each engine first materializes the workload (``--size``, default S; ``--days N``: the last N
days) into its own online store, as ``materialize.py`` does: ours into Redis database 10, Feast
into database 11. Then ``featurestore serve`` and, with ``--compare feast``, ``feast serve`` run
on those stores with the same number of worker processes (``--workers``, default 1), and one
load client drives each in turn with the same request sequence: single-entity lookups of 7
features of the two views, in Feast's JSON shape, keys drawn with ``--seed``. Closed loop with
1 and 8 connections (``--connections``), ``--seconds`` timed per level after ``--warmup``
seconds of the same load; the levels alternate between the engines. Before any timing, the
first ``--check`` requests go to both servers and every feature value is compared, so the
numbers are those of real lookups. Ours runs once per definition style (``--definitions
typed|untyped|both``, default both): the example's entities with ``value_type=Int64`` and
without it (key types inferred at apply), each a repository and server of its own.

The client is ``loadgen.py`` (asyncio, every request timed; ``--client wrk`` for wrk, whose
percentiles are coordinated-omission corrected, see ``http_load.py``). Its own cost is measured
first against a trivial server and printed. With one worker, the server is pinned to one CPU and
the client to another (``--no-pin`` to let the scheduler place them).

The workload's rows end on 2026-10-01 and a REST lookup is evaluated at the current time, so
with the example's TTLs (2 h and 2 days) our service answers ``OUTSIDE_MAX_AGE`` with null
values. Both repositories therefore declare the two views with a TTL covering the data's age
(printed); ``--example-ttl`` keeps the example's TTLs instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import (
    ChildResult,
    bench_parser,
    load_generator,
    views_for,
    work_dir,
    workload_window,
)
from engine_runs import (
    LABELS,
    EngineRun,
    add_definitions_argument,
    add_online_arguments,
    cleanup,
    materialize_all,
    prepare,
)
from http_load import (
    LOADGEN,
    WRK_HINT,
    LoadResult,
    ServerProcess,
    Wrk,
    free_port,
    run_loadgen,
    write_bodies,
)
from serving_check import PATH, check_values, print_check, request_bodies
from serving_report import (
    Measurement,
    emit_measurements,
    print_calibration,
    print_measurements,
)

# -- servers -------------------------------------------------------------------------------------


def engine_server(
    run: EngineRun, work: Path, workers: int, cpus: Sequence[int] | None, args: argparse.Namespace
) -> ServerProcess:
    """The engine's server over its repository (not started yet: use it as a context)."""
    port = free_port()
    # absolute(), not resolve(): a virtualenv's python is a symlink out of the virtualenv.
    bin_dir = Path(run.python).absolute().parent
    host = ["--host", "127.0.0.1"]
    if run.engine == "ours":
        command = [str(bin_dir / "featurestore"), "--repo", str(run.repo), "serve", *host,
                   "--port", str(port), "--workers", str(workers)]  # fmt: skip
        env = None
    else:
        # Feast serves with gunicorn and uvicorn workers; its access log goes off, as ours is.
        command = [str(bin_dir / "feast"), "serve", *host, "--port", str(port),
                   "--workers", str(workers), "--no-access-log"]  # fmt: skip
        if args.feast_max_requests is not None:
            command += ["--max-requests", str(args.feast_max_requests)]
        env = {"FEAST_USAGE": "False"}
    return ServerProcess(
        run.label,
        command,
        port=port,
        log_path=work / f"{run.key}-server.log",
        cwd=run.repo,
        env=env,
        cpus=cpus,
    )


def server_version(run: EngineRun) -> str:
    """``featurestore X`` / ``feast X`` of the engine's interpreter."""
    module = "featurestore" if run.engine == "ours" else "feast"
    out = subprocess.run(
        [run.python, "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{module} {out.stdout.strip() or '?'}"


# -- measuring -----------------------------------------------------------------------------------


class LoadClient:
    """The chosen load generator, over the bodies file, pinned to ``cpus``."""

    def __init__(self, tool: str, work: Path, bodies: Path, cpus: Sequence[int] | None) -> None:
        self.tool = tool
        self.bodies = bodies
        self.cpus = cpus
        self.wrk = Wrk(Wrk.find() or "wrk", work, bodies) if tool == "wrk" else None

    def run(
        self,
        url: str,
        connections: int,
        warmup: float,
        seconds: float,
        watch_pid: int | None = None,
    ) -> LoadResult:
        """``warmup`` seconds of load, then ``seconds`` timed, with ``connections``."""
        if self.wrk is not None:
            return self.wrk.run(
                url,
                connections=connections,
                warmup=warmup,
                seconds=seconds,
                cpus=self.cpus,
                watch_pid=watch_pid,
            )
        return run_loadgen(
            url,
            self.bodies,
            connections=connections,
            warmup=warmup,
            seconds=seconds,
            cpus=self.cpus,
            watch_pid=watch_pid,
        )


def calibrate(
    client: LoadClient, work: Path, levels: Sequence[int], server_cpus: Sequence[int] | None
) -> list[LoadResult]:
    """The client alone: each level against a trivial server (a fixed 1 KB JSON answer, no
    framework), pinned where the real servers run. Its CPU per request is the client's cost."""
    port = free_port()
    command = [sys.executable, LOADGEN, "trivial-server", "--port", str(port)]
    results = []
    with ServerProcess(
        "trivial server", command, port=port, log_path=work / "trivial.log", cpus=server_cpus
    ) as server:
        server.wait_ready("/", 30)
        for connections in levels:
            results.append(client.run(server.base_url + "/", connections, 1.0, 3.0))
    return results


# -- the benchmark -------------------------------------------------------------------------------


def serving_ttl(window_start: datetime) -> timedelta:
    """A TTL under which every row of the window is still valid a week from now, in days."""
    age = datetime.now(timezone.utc) - window_start + timedelta(days=7)
    return timedelta(days=max(age.days, 1))


def cpu_plan(workers: int, no_pin: bool) -> tuple[list[int] | None, list[int] | None, str]:
    """CPUs for the server and for the client, and how to describe it.

    With one worker the server gets the last CPU and the client the first, so the client never
    takes the server's core (Redis, shared, runs where the scheduler puts it). With more
    workers than one the server needs every core, and nothing is pinned.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if no_pin or workers > 1 or len(cpus) < 2:
        return None, None, "not pinned"
    return [cpus[-1]], [cpus[0]], f"server pinned to CPU {cpus[-1]}, client to CPU {cpus[0]}"


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (``argv`` without the program name)."""
    parser = bench_parser(
        "REST serving throughput and latency (featurestore, optionally vs Feast's feature server).",
        what="serve the same lookups",
    )
    add_online_arguments(parser)
    add_definitions_argument(parser)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes, both")
    parser.add_argument(
        "--connections", type=_int_list, default=[1, 8], help="concurrency levels (default 1,8)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per level")
    parser.add_argument("--client", choices=["loadgen", "wrk"], default="loadgen")
    parser.add_argument(
        "--requests", type=int, default=10_000, help="distinct request bodies, sent in rotation"
    )
    parser.add_argument(
        "--check", type=int, default=200, help="requests checked on both servers before timing"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin server and client to different CPUs"
    )
    parser.add_argument(
        "--no-calibrate", action="store_true", help="skip the client's run on a trivial server"
    )
    parser.add_argument(
        "--example-ttl",
        action="store_true",
        help="keep the example's TTLs (ours then answers OUTSIDE_MAX_AGE with nulls)",
    )
    parser.add_argument(
        "--feast-max-requests",
        type=int,
        help="Feast's --max-requests (gunicorn recycles a worker after that many requests; "
        "default: Feast's own, 1000; 0 never)",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="seconds for a server to come up"
    )
    return parser.parse_args(argv)


def run_servers(
    runs: dict[str, EngineRun],
    work: Path,
    bodies: Sequence[bytes],
    features: Sequence[str],
    args: argparse.Namespace,
    client: LoadClient,
    server_cpus: Sequence[int] | None,
    measurements: list[Measurement],
) -> bool:
    """Start every engine's server, check their values, then measure each level in turn
    (appending to ``measurements``); the servers are stopped on the way out, whatever happens.
    False when a server failed or the values are not real."""
    with contextlib.ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        for engine, run in runs.items():
            server = stack.enter_context(engine_server(run, work, args.workers, server_cpus, args))
            server.wait_ready("/health", args.start_timeout)
            servers[engine] = server
        check = check_values(servers, bodies[: args.check], features)
        print_check(check)
        if not check.ok:
            if not args.example_ttl:
                print("  the servers do not return the same real values: not timing them")
                return False
            print("  (--example-ttl: ours answers OUTSIDE_MAX_AGE with nulls, Feast the values)")
        # Levels alternate between the engines, so drift on a shared machine hits both alike.
        for connections in args.connections:
            for engine, server in servers.items():
                load = client.run(
                    server.base_url + PATH,
                    connections,
                    args.warmup,
                    args.seconds,
                    watch_pid=server.pid,
                )
                measurements.append(Measurement(engine, args.workers, load, server.peak_rss_mb()))
                print(
                    f"  {LABELS[engine]}, {connections} connection(s): "
                    f"{load.throughput:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
                    f"p99 {load.p99_ms:.2f} ms",
                    flush=True,
                )
    return True


def main(argv: list[str]) -> int:
    """Command line entry point (``argv`` without the program name)."""
    args = parse_args(argv)
    if args.client == "wrk" and Wrk.find() is None:
        print(f"error: --client wrk: wrk is not on PATH; {WRK_HINT}", file=sys.stderr)
        return 2
    # A SIGTERM (a CI timeout, say) still runs the finally blocks: servers stopped, dbs flushed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workload = load_generator().workload_for(args.size)
    start, end = workload_window(workload)
    if args.days is not None:
        start = max(start, end - timedelta(days=args.days))
    ttl = None if args.example_ttl else serving_ttl(start)
    views = views_for(ttl=ttl)
    refs = [ref for view in views for ref in view.refs]
    features = [feature for view in views for feature, _ in view.features]
    server_cpus, client_cpus, pinning = cpu_plan(args.workers, args.no_pin)
    bodies = request_bodies(refs, args.requests, workload.drivers, workload.customers, args.seed)

    measurements: list[Measurement] = []
    versions: dict[str, str] = {}
    ok = False
    with work_dir(args.keep) as work:
        client = LoadClient(
            args.client, work, write_bodies(work / "bodies.jsonl", bodies), client_cpus
        )
        setup = prepare(args, work, ttl=ttl)
        print(
            "views' TTL: "
            + ("the example's (2 h, 2 days)" if ttl is None else f"{ttl.days} days (both views)")
        )
        try:
            materialize_all(setup, args, {"ours": 1, "feast": 1})
            runs: dict[str, EngineRun] = {}
            for run in setup.engines:
                if isinstance(run, ChildResult):
                    print(f"{run.label}: {run.error}")
                elif not run.best().ok:
                    print(f"{run.label}: materialization failed: {run.best().error}")
                else:
                    print(
                        f"{run.label}: materialized in {run.best().seconds:.1f} s, "
                        f"{setup.target.count_keys(run.engine):,} keys in its store"
                    )
                    runs[run.key] = run
                    versions[run.key] = server_version(run)
            if any(key != "feast" for key in runs):
                if not args.no_calibrate:
                    print_calibration(calibrate(client, work, args.connections, server_cpus))
                ok = run_servers(
                    runs, work, bodies, features, args, client, server_cpus, measurements
                )
        except RuntimeError as exc:  # a server that does not start, a client that fails
            print(f"error: {exc}", file=sys.stderr)
        finally:
            cleanup(setup.target, setup.engines)
    if measurements:
        setting = (
            f"workers={args.workers} each; client {args.client}, closed loop, "
            f"{args.seconds:.0f} s per level after {args.warmup:.0f} s warm-up, "
            f"{len(bodies):,} bodies in rotation; {pinning}; " + "; ".join(versions.values())
        )
        print_measurements(measurements, setting)
        emit_measurements(measurements, versions, pinning)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
