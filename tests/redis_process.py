"""One private ``redis-server`` for a test: on a free port, in the test's folder, durable (every
write is in its append-only file before it is acknowledged), so it can be paused (SIGSTOP: a
server that stops answering), resumed, killed -9 and started again on the same port with its data.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from redis_cluster import wait_for_ping


class RedisProcess:
    """A ``redis-server`` on 127.0.0.1:``port`` keeping its files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--dir", str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_ping(self.port)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (a crash, not a shutdown); :meth:`start` brings it back with its data."""
        self._signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def _signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        assert self.process.poll() is None
        self.process.send_signal(number)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
