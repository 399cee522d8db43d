"""What access control adds to a REST lookup: the serving benchmark's load, open vs guarded.

    python bench/access_overhead.py                 # size S, 3 rounds of 8 s per level
    python bench/access_overhead.py --size XS --rounds 2 --seconds 4

Two copies of our repository over the same workload (the serving benchmark's views and TTLs),
each materialized into Redis database 10 under its own key prefix and served by
``featurestore serve`` (one worker, pinned to one CPU, the client on the other):

* **open**: no policy, no key: the service is open, as in ``serving.py``;
* **guarded**: five policies (an admin role, an allow for the readers' role, a deny of
  ``pii``-tagged features, a deny on another view, a service-account allow) and an API key;
  every request carries ``Authorization: Bearer <token>``, so each lookup resolves the token,
  decides on every view and feature it reads (two views, seven features), and counts the read
  for the audit log.

Both get the same request sequence (single-entity lookups of seven features, ``serving.py``'s
bodies), with 1 and 8 connections; the rounds alternate which server goes first. The table shows
p50 and throughput per round and the overhead of the guarded server's p50 over the open one's
(the issue's bound: at most 5%).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from common import (
    ViewSpec,
    ensure_workload,
    load_generator,
    views_for,
    work_dir,
    workload_window,
)
from http_load import LoadResult, ServerProcess, free_port, run_loadgen, write_bodies
from repos import build_our_repo
from serving import cpu_plan, serving_ttl
from serving_check import request_bodies

REDIS_URL = "redis://127.0.0.1:6379/10"
POLICIES = """
from featurestore import Policy, Resource

admins = Policy(name="admins", roles=["admin"], actions=["admin"])
readers = Policy(name="readers", roles=["reader"], actions=["describe", "read_online", "read_offline"])
no_pii = Policy(name="no-pii", effect="deny", roles=["reader"], actions=["read_online", "read_offline"],
                resources=[Resource(kind="feature", tags={"pii": "true"})])
no_other = Policy(name="no-other", effect="deny", roles=["reader"], actions=["*"],
                  resources=[Resource(kind="feature_view", name="payments_*")])
ingest = Policy(name="ingest", principals=["ingestor"], actions=["write_online"],
                resources=[Resource(kind="feature_view", name="driver_*")])
"""


def prepare_repo(
    work: Path, name: str, data: Path, views: Sequence[ViewSpec], start: datetime, end: datetime
) -> tuple[Path, str | None]:
    """An applied, materialized repository; for ``guarded`` the policies and a reader's key."""
    from featurestore import FeatureStore  # the bench's parent process needs it only here
    from featurestore.governance.access import Principal

    online = {"type": "redis", "url": REDIS_URL, "key_prefix": f"fsacl-{name}:",
              "expiry_grace": "3650d"}  # fmt: skip
    repo = build_our_repo(work / name, data, views, online_store=online)
    if name == "guarded":
        (repo / "policies.py").write_text(POLICIES)
    root = Principal("bench-admin", frozenset({"admin"}))
    token = None
    with FeatureStore(repo, principal=root) as store:
        store.apply()
        store.materialize(start, end, progress=False)
        if name == "guarded":
            token, _ = store.create_key("bench", roles=["reader"], kind="service_account")
    return repo, token


def teardown(repo: Path) -> None:
    from featurestore import FeatureStore
    from featurestore.governance.access import Principal

    with FeatureStore(repo, principal=Principal("bench-admin", frozenset({"admin"}))) as store:
        store.teardown()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="S", choices=["XS", "S", "L"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args(argv)

    generator = load_generator()
    workload = generator.workload_for(args.size)
    data = ensure_workload(args.size, workload, args.seed)
    start, end = workload_window(workload)
    views = views_for(ttl=serving_ttl(start))
    refs = [ref for view in views for ref in view.refs]
    bodies = request_bodies(refs, args.requests, workload.drivers, workload.customers, args.seed)
    server_cpus, client_cpus, pinning = cpu_plan(1, False)
    results: dict[tuple[str, int], list[LoadResult]] = {}
    with work_dir(args.keep) as work, contextlib.ExitStack() as stack:
        body_file = write_bodies(work / "bodies.jsonl", bodies)
        servers: dict[str, tuple[ServerProcess, list[str]]] = {}
        repos = []
        try:
            for name in ("open", "guarded"):
                repo, token = prepare_repo(work, name, data, views, start, end)
                repos.append(repo)
                port = free_port()
                command = [str(Path(sys.executable).absolute().parent / "featurestore"),
                           "--repo", str(repo), "serve", "--port", str(port)]  # fmt: skip
                server = stack.enter_context(
                    ServerProcess(
                        name,
                        command,
                        port=port,
                        log_path=work / f"{name}.log",
                        cwd=repo,
                        cpus=server_cpus,
                    )
                )
                server.wait_ready("/health", 120)
                headers = [f"Authorization: Bearer {token}"] if token else []
                servers[name] = (server, headers)
            print(f"{args.size}: {len(bodies):,} bodies, 2 views, 7 features; {pinning}")
            for round_no in range(args.rounds):
                order = ["open", "guarded"] if round_no % 2 == 0 else ["guarded", "open"]
                for connections in (1, 8):
                    for name in order:
                        server, headers = servers[name]
                        result = run_loadgen(
                            server.base_url + "/get-online-features",
                            body_file,
                            connections=connections,
                            warmup=args.warmup,
                            seconds=args.seconds,
                            cpus=client_cpus,
                            watch_pid=server.pid,
                            headers=headers,
                        )
                        if result.non200:
                            raise RuntimeError(f"{name}: {result.non200} answers were not 200")
                        results.setdefault((name, connections), []).append(result)
                        print(
                            f"  round {round_no + 1}, {name:7s}, {connections} conn: "
                            f"p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms, "
                            f"{result.throughput:,.0f} req/s",
                            flush=True,
                        )
        finally:
            stack.close()
            for repo in repos:
                teardown(repo)
    print()
    print(
        "connections  open p50 (median of rounds)  guarded p50  overhead   open req/s  guarded req/s"
    )
    for connections in (1, 8):
        open_runs, guarded_runs = results[("open", connections)], results[("guarded", connections)]
        open_p50 = statistics.median(r.p50_ms for r in open_runs)
        guarded_p50 = statistics.median(r.p50_ms for r in guarded_runs)
        print(
            f"{connections:>11}  {open_p50:>25.3f} ms  {guarded_p50:>8.3f} ms  "
            f"{(guarded_p50 / open_p50 - 1) * 100:>+7.1f}%  "
            f"{statistics.median(r.throughput for r in open_runs):>11,.0f}  "
            f"{statistics.median(r.throughput for r in guarded_runs):>13,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
