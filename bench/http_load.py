"""HTTP servers under test and the two load generators of ``serving.py``.

A server runs in a session of its own (``start_new_session``), so stopping it signals its whole
process group: uvicorn's or gunicorn's workers go with it. Its CPU time and peak memory are
read from ``/proc`` over its process tree (psutil), so a multi-worker server counts in full.
Servers and clients can be pinned to CPUs (``sched_setaffinity`` in the child before it runs).

The default load generator is ``loadgen.py`` (a closed-loop asyncio client timing every request,
run in a child process). ``wrk`` (https://github.com/wg/wrk) is the other: C, one epoll thread,
closed loop, a Lua script rotating the bodies; its throughput is exact, but its latency
percentiles include its coordinated-omission correction (``stats_correct``: every answer slower
than twice the mean interval adds synthetic samples), so they are not the latencies it measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from common import BENCH_DIR, run_child

LOADGEN = str(BENCH_DIR / "loadgen.py")

#: How to get wrk, printed when it is missing.
WRK_HINT = (
    "install it with `apt-get install -y wrk` (Debian/Ubuntu), `dnf install wrk` (Fedora) or "
    "`brew install wrk` (macOS), or use the default client (--client loadgen)"
)
_RESULT_PREFIX = "WRK-RESULT "

# Bodies are read from a file (one JSON body per line) and pre-formatted once per thread; each
# call of request() sends the next one, from the first, so every run sends the same sequence.
# done() runs in wrk's main Lua state: the per-thread non-200 counts are fetched from the threads.
_WRK_SCRIPT = r"""
local threads = {}
local requests = {}
local count = 0
local next_index = 0
non200 = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(args[1]) do
    count = count + 1
    requests[count] = wrk.format("POST", args[2], headers, line)
  end
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local non200_total = 0
  for _, thread in ipairs(threads) do
    non200_total = non200_total + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "non200": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n',
    "WRK-RESULT ", summary.requests, summary.duration, non200_total, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def on_cpus(cpus: Sequence[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to ``cpus`` (None: no pinning)."""
    if not cpus:
        return None
    wanted = set(cpus)
    return lambda: os.sched_setaffinity(0, wanted)


def write_bodies(path: Path, bodies: Sequence[bytes]) -> Path:
    """The request bodies, one per line, as both load generators read them."""
    path.write_bytes(b"".join(body + b"\n" for body in bodies))
    return path


# -- servers -------------------------------------------------------------------------------------


class ServerProcess:
    """A server started in its own process group, stopped (with its workers) on exit."""

    def __init__(
        self,
        label: str,
        command: Sequence[str],
        *,
        port: int,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        cpus: Sequence[int] | None = None,
    ) -> None:
        self.label = label
        self.command = list(command)
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.cpus = cpus
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=None if self.env is None else {**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=on_cpus(self.cpus),
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_ready(self, path: str, timeout: float) -> None:
        """Poll ``GET path`` until it answers 200; RuntimeError (with the log's tail) if the
        server exits or ``timeout`` seconds pass first."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with status {self._proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    connection.request("GET", path)
                    if connection.getresponse().status == 200:
                        return
                finally:
                    connection.close()
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.label} did not answer GET {path} within {timeout:.0f} s:\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def peak_rss_mb(self) -> float:
        """Sum over the server's live processes of their peak resident memory (VmHWM), MiB."""
        total_kb = 0
        for process in _tree(self.pid):
            with contextlib.suppress(OSError, psutil.Error):
                status = Path(f"/proc/{process.pid}/status").read_text()
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        total_kb += int(line.split()[1])
        return total_kb / 1024

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL what is left after 15 s."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Workers may outlive a leader that exited on SIGTERM: make sure the group is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its descendants, reaped ones included
    (gunicorn's recycled workers)."""
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


# -- requests ------------------------------------------------------------------------------------


@contextlib.contextmanager
def json_client(port: int) -> Iterator[Any]:
    """``post(path, body) -> (status, parsed JSON)`` over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(path: str, body: bytes) -> tuple[int, Any]:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    try:
        yield post
    finally:
        connection.close()


# -- wrk -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """One load run against one server: counts, latency percentiles, and the client's CPU."""

    tool: str
    connections: int
    seconds: float
    requests: int
    non200: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    #: CPU time the client used (user + system), to show how much of the machine it took.
    client_cpu_seconds: float
    #: CPU time of the watched server's processes in the same window (None: not watched).
    server_cpu_seconds: float | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.non200 + self.socket_errors


def run_loadgen(
    url: str,
    bodies: Path,
    *,
    connections: int,
    warmup: float,
    seconds: float,
    cpus: Sequence[int] | None = None,
    watch_pid: int | None = None,
    headers: Sequence[str] = (),
) -> LoadResult:
    """``loadgen.py client`` in a child (pinned to the first of ``cpus``): a warm-up, then
    ``seconds`` timed on the same connections; the CPU of ``watch_pid``'s process tree is
    read at the window's start and end."""
    base, path = _split_url(url)
    argv = [LOADGEN, "client", "--port", base.rsplit(":", 1)[1], "--path", path,
            "--bodies", str(bodies), "--connections", str(connections),
            "--warmup", str(warmup), "--seconds", str(seconds)]  # fmt: skip
    if cpus:
        argv += ["--cpu", str(cpus[0])]
    if watch_pid is not None:
        argv += ["--watch-pid", str(watch_pid)]
    for header in headers:
        argv += ["--header", header]
    result = run_child("loadgen", argv, python=sys.executable, timeout=warmup + seconds + 90)
    if not result.ok:
        raise RuntimeError(f"the load client failed: {result.error}")
    d = result.detail
    return LoadResult(
        tool="loadgen",
        connections=connections,
        seconds=float(result.seconds or seconds),
        requests=d["requests"],
        non200=d["non200"],
        socket_errors=d["socket_errors"],
        p50_ms=d["p50_ms"],
        p90_ms=d["p90_ms"],
        p99_ms=d["p99_ms"],
        max_ms=d["max_ms"],
        mean_ms=d["mean_ms"],
        client_cpu_seconds=d["client_cpu_seconds"],
        server_cpu_seconds=d.get("server_cpu_seconds"),
    )


class Wrk:
    """Runs wrk with the rotating-body script over a bodies file (see :func:`write_bodies`)."""

    def __init__(self, executable: str, work: Path, bodies: Path) -> None:
        self.executable = executable
        self.script = work / "rotate_bodies.lua"
        self.script.write_text(_WRK_SCRIPT)
        self.bodies = bodies

    @staticmethod
    def find() -> str | None:
        """The wrk executable on PATH, if any."""
        return shutil.which("wrk")

    def run(
        self,
        url: str,
        *,
        connections: int,
        warmup: float,
        seconds: float,
        cpus: Sequence[int] | None = None,
        watch_pid: int | None = None,
    ) -> LoadResult:
        """A ``warmup`` run (discarded), then ``connections`` closed-loop connections from one
        wrk thread for ``seconds`` (and the CPU of ``watch_pid``'s tree meanwhile)."""
        if warmup > 0:
            self._run(url, connections, warmup, cpus)
        before = None if watch_pid is None else tree_cpu_seconds(watch_pid)
        result = self._run(url, connections, seconds, cpus)
        if watch_pid is None or before is None:
            return result
        return dataclasses.replace(result, server_cpu_seconds=tree_cpu_seconds(watch_pid) - before)

    def _run(
        self, url: str, connections: int, seconds: float, cpus: Sequence[int] | None
    ) -> LoadResult:
        base, path = _split_url(url)
        command = [self.executable, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                   "--timeout", "10s", "-s", str(self.script), base, "--", str(self.bodies), path]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
            preexec_fn=on_cpus(cpus),
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [ln for ln in finished.stdout.splitlines() if ln.startswith(_RESULT_PREFIX)]
        if finished.returncode != 0 or not lines:
            raise RuntimeError(
                f"wrk failed (status {finished.returncode}): "
                f"{finished.stderr.strip() or finished.stdout.strip()}"
            )
        raw = json.loads(lines[-1][len(_RESULT_PREFIX) :])
        return LoadResult(
            tool="wrk",
            connections=connections,
            seconds=raw["duration_us"] / 1e6,
            requests=raw["requests"],
            non200=raw["non200"],
            socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            mean_ms=raw["mean_us"] / 1000,
            client_cpu_seconds=(after.ru_utime - before.ru_utime)
            + (after.ru_stime - before.ru_stime),
        )


def _split_url(url: str) -> tuple[str, str]:
    """``http://host:port/path`` -> (``http://host:port``, ``/path``)."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}", slash + path
