"""A closed-loop HTTP/1.1 load client for ``serving.py``, and a trivial server to calibrate it.

    python bench/loadgen.py client --port 6566 --path /get-online-features \\
        --bodies bodies.jsonl --connections 8 --warmup 3 --seconds 10 --cpu 0
    python bench/loadgen.py trivial-server --port 7000 --cpu 1

The client keeps ``--connections`` keep-alive connections; each sends its next request as soon
as the previous answer is complete (closed loop). The bodies (one JSON document per line) are
sent in order, in rotation, by all connections together, so every run sends the same sequence.
Each request is timed on its own, from the write to the last byte of its answer
(``perf_counter_ns``), and the answers completing within the timed window, after the warm-up,
count. These are the latencies the client saw, with no coordinated-omission correction: wrk, by
contrast, adds synthetic samples for every answer slower than twice the mean interval.

The client is written on asyncio protocols (uvloop when installed) with no coroutine per
request: a request costs it some tens of microseconds of CPU, which ``serving.py`` measures
against the trivial server (a fixed answer of the size of a lookup's) and prints. A connection
the server closes is opened again (Feast's gunicorn recycles its workers); a request lost that
way counts as a socket error. The result is one ``BENCH-RESULT`` line (see ``common.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from common import emit_result, guarded, peak_rss_mb
from http_load import tree_cpu_seconds

#: The trivial server's answer: 1 KB of JSON, the size of a one-entity, 7-feature lookup's.
TRIVIAL_BODY = b'{"results":[' + b'{"values":[0.5]},' * 59 + b"{}]}"


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # plain asyncio works, at a higher CPU cost per request
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the client ----------------------------------------------------------------------------------


class _Load:
    """State shared by the connections: the request rotation, the window, the samples."""

    def __init__(
        self, requests: Sequence[bytes], window_start: int, window_end: int, connections: int
    ) -> None:
        self.requests = requests
        self.next_index = 0
        self.window_start = window_start
        self.window_end = window_end
        self.stopping = False
        self.latencies: list[int] = []
        self.non200 = 0
        self.socket_errors = 0
        self.open = connections
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.cpu_at_start = 0.0
        self.cpu_at_end = 0.0
        self.error: str | None = None

    def next_request(self) -> bytes:
        request = self.requests[self.next_index]
        self.next_index = (self.next_index + 1) % len(self.requests)
        return request

    def record(self, latency_ns: int, status: int, now: int) -> None:
        if self.window_start <= now <= self.window_end:
            self.latencies.append(latency_ns)
            if status != 200:
                self.non200 += 1

    def fail(self, message: str) -> None:
        self.error = message
        self.stopping = True
        if not self.done.done():
            self.done.set_result(None)

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, read the answer (by Content-Length), send the next."""

    def __init__(self, load: _Load, reconnect: Any) -> None:
        self.load = load
        self.reconnect = reconnect
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected = -1  # bytes of the current answer, once its head is parsed
        self.status = 0
        self.keep_alive = True
        self.started = 0
        self.in_flight = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if self.load.stopping:
            self.transport.close()
            return
        self.in_flight = True
        self.started = time.perf_counter_ns()
        self.transport.write(self.load.next_request())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.expected < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:  # chunked: not what either server sends; stop rather than guess
                self.load.fail("an answer without Content-Length (not supported)")
                return
            line_end = head.find(b"\r\n", at + 2)
            self.expected = end + 4 + int(head[at + 17 : line_end if line_end >= 0 else None])
            self.keep_alive = b"\r\nconnection: close" not in head
        if len(buffer) < self.expected:
            return
        now = time.perf_counter_ns()
        del buffer[: self.expected]
        self.expected = -1
        self.in_flight = False
        self.load.record(now - self.started, self.status, now)
        if self.keep_alive:
            self.send()
        else:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.load.socket_errors += 1
            self.in_flight = False
        if self.load.stopping:
            self.load.closed()
        else:
            self.reconnect()


async def run_client(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    connections: int,
    warmup: float,
    seconds: float,
    watch_pid: int | None = None,
    headers: Sequence[str] = (),
) -> dict[str, Any]:
    """Drive ``127.0.0.1:port`` for ``warmup + seconds``; the timed window's figures, with the
    CPU time of ``watch_pid``'s process tree (the server) over the same window."""
    loop = asyncio.get_running_loop()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{header}\r\n" for header in headers)
    requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    start = time.perf_counter_ns()
    window_start = start + int(warmup * 1e9)
    window_end = window_start + int(seconds * 1e9)
    load = _Load(requests, window_start, window_end, connections)

    def open_connection() -> None:
        task = loop.create_task(
            loop.create_connection(lambda: _Connection(load, open_connection), "127.0.0.1", port)
        )
        task.add_done_callback(_failed_connect)

    def _failed_connect(task: asyncio.Task[Any]) -> None:
        if task.exception() is not None:  # refused while a worker restarts: try again shortly
            load.socket_errors += 1
            loop.call_later(0.01, load.closed if load.stopping else open_connection)

    server_cpu = [0.0, 0.0]

    def begin_window() -> None:
        load.cpu_at_start = _cpu_seconds()
        if watch_pid is not None:
            server_cpu[0] = tree_cpu_seconds(watch_pid)

    def end_window() -> None:
        load.cpu_at_end = _cpu_seconds()
        load.stopping = True
        if watch_pid is not None:
            server_cpu[1] = tree_cpu_seconds(watch_pid)

    loop.call_at(loop.time() + warmup, begin_window)
    loop.call_at(loop.time() + warmup + seconds, end_window)
    for _ in range(connections):
        open_connection()
    # Connections close as their last answer arrives; one stuck on a dead server does not.
    await asyncio.wait([load.done], timeout=warmup + seconds + 30)
    if load.error is not None:
        raise RuntimeError(load.error)
    latencies = sorted(load.latencies)
    count = len(latencies)

    def quantile(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] / 1e6 if count else float("nan")

    return {
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        "connections": connections,
        "requests": count,
        "non200": load.non200,
        "socket_errors": load.socket_errors,
        "p50_ms": quantile(0.50),
        "p90_ms": quantile(0.90),
        "p99_ms": quantile(0.99),
        "max_ms": latencies[-1] / 1e6 if count else float("nan"),
        "mean_ms": sum(latencies) / count / 1e6 if count else float("nan"),
        "client_cpu_seconds": load.cpu_at_end - load.cpu_at_start,
        "server_cpu_seconds": server_cpu[1] - server_cpu[0] if watch_pid is not None else None,
    }


# -- the trivial server --------------------------------------------------------------------------


class _TrivialServer(asyncio.Protocol):
    """Answers every request with :data:`TRIVIAL_BODY`, as fast as Python parses HTTP."""

    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(TRIVIAL_BODY)).encode()
        + b"\r\n\r\n"
        + TRIVIAL_BODY
    )

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else None])
            if len(buffer) < end + 4 + length:
                return
            del buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(self.answer)


async def serve_trivial(port: int) -> None:
    """Serve :class:`_TrivialServer` on ``127.0.0.1:port`` until killed."""
    server = await asyncio.get_running_loop().create_server(_TrivialServer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``client ...`` (one measured run, a ``BENCH-RESULT`` line) or ``trivial-server ...``."""
    parser = argparse.ArgumentParser(prog="loadgen.py")
    parser.add_argument("mode", choices=["client", "trivial-server"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    parser.add_argument("--path", default="/")
    parser.add_argument("--bodies", help="a file of request bodies, one per line")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--watch-pid", type=int, help="report this process tree's CPU time")
    parser.add_argument(
        "--header", action="append", default=[], help="an extra request header, 'Name: value'"
    )
    args = parser.parse_args(argv)
    _pin(args.cpu)
    _event_loop_policy()
    if args.mode == "trivial-server":
        asyncio.run(serve_trivial(args.port))
        return 0
    bodies = Path(args.bodies).read_bytes().splitlines()

    def body() -> None:
        emit_result(
            asyncio.run(
                run_client(
                    args.port,
                    args.path,
                    bodies,
                    args.connections,
                    args.warmup,
                    args.seconds,
                    args.watch_pid,
                    args.header,
                )
            )
        )

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
