"""A real Redis Cluster for the tests: 3 masters and 3 replicas started from ``redis-server``.

Each node runs with ``--cluster-enabled yes`` in a temporary folder on a free port (its cluster
bus port, port + 10000, free too); ``redis-cli --cluster create ... --cluster-replicas 1`` joins
them. :meth:`RedisClusterProcesses.stop` kills every node; the folder goes with the test's tmp dir.
No pytest here: ``bench/online.py --online redis-cluster`` starts its cluster with it too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster bus ports (port + 10000) are free as well."""
    ports: list[int] = []
    candidate = 20000 + os.getpid() % 20000
    while len(ports) < count:
        candidate += 1
        if candidate + 10000 > 65535:
            candidate = 20001
        if _port_free(candidate) and _port_free(candidate + 10000):
            ports.append(candidate)
    return ports


@dataclass
class RedisClusterProcesses:
    """The nodes' processes and ports; ``url`` names the first node."""

    folder: Path
    ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start_node(self, port: int) -> None:
        node_dir = self.folder / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--appendonly", "no",
                "--save", "",
                "--dir", str(node_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_ping(port)

    def create(self) -> None:
        for port in self.ports:
            self.start_node(port)
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )  # fmt: skip
        self.wait_until_healthy()

    def wait_until_healthy(self, timeout: float = 60.0) -> None:
        """Return once every live node says ``cluster_state:ok`` and all 16384 slots are served."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(self._node_ok(port) for port in self.live_ports()):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis Cluster on {self.ports} did not become healthy")
            time.sleep(0.2)

    def _node_ok(self, port: int) -> bool:
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            info = client.cluster("info")
        finally:
            client.close()
        return bool(info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384)

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.processes.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the nodes that are masters now."""
        client = RedisCluster(host="127.0.0.1", port=self.live_ports()[0])
        try:
            return sorted(node.port for node in client.get_primaries())
        finally:
            client.close()

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash, not a shutdown)."""
        proc = self.processes[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def wait_for_ping(port: int, timeout: float = 20.0) -> None:
    """Return once the redis-server on ``port`` answers PING (``timeout`` seconds at most)."""
    deadline = time.monotonic() + timeout
    while True:
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()
