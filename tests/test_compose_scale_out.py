"""docker-compose.yml's ``scale-out`` profile, checked without a container engine (as
``test_compose`` checks the default services): its structure, then its commands run for real on
this machine with ports moved to free ones and names to 127.0.0.1.

* Spark: the master's and the worker's commands through ``bin/spark-class`` of the pyspark
  package this interpreter has (the image's ``/opt/spark``); the worker registers with the master
  (the master's UI JSON lists it ALIVE) and the master's healthcheck passes.
* Redis Cluster: the six nodes' commands with the mounted ``deploy/redis-cluster.conf``, then the
  one-shot ``redis-cluster-create`` script; every node says ``cluster_state:ok``, the Redis online
  store with ``cluster: true`` writes and reads a row through it, and a second run of the job
  changes nothing.

Every process is stopped at the end, whatever happens.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import tomllib
from api_server import free_port
from online_contract import NOW_US, batch, keys_table, view
from redis_cluster import free_cluster_ports
from test_compose import (
    ROOT,
    compose,
    healthcheck_argv,
    passes,
    require_binary,
    run_job,
    service,
    stop,
    with_options,
)

from featurestore.config import parse_config
from featurestore.online import FOUND, Namespace, open_online_store

PROFILE = "scale-out"
NODES = [f"redis-node-{n}" for n in range(1, 7)]
SPARK_HOME = "/opt/spark"  # the image's link to the pyspark package's folder


def profile_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose()["services"].items() if svc.get("profiles") is not None
    }


def mounted(name: str, inside: str) -> Path:
    """The file of this checkout that service ``name`` mounts at ``inside``."""
    for volume in service(name).get("volumes", []):
        source, target = volume.split(":")[:2]
        if target == inside:
            assert source.startswith("./"), volume
            return ROOT / source
    raise AssertionError(f"{name} mounts nothing at {inside}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each one (and its children) is stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in reversed(started):
        stop(process)


def start(
    argv: list[str], log: Path, started: list[subprocess.Popen[bytes]], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    started.append(process)
    return process


# -- structure ----------------------------------------------------------------------------------


def test_the_profile_adds_spark_and_a_redis_cluster_and_nothing_by_default() -> None:
    services = profile_services()
    assert set(services) == {"spark-master", "spark-worker", *NODES, "redis-cluster-create"}
    assert all(svc["profiles"] == [PROFILE] for svc in services.values())
    # `docker compose up` without the profile starts what it started before.
    default = set(compose()["services"]) - set(services)
    assert default == {"redis", "postgres", "materialize", "api"}
    healthy = {"condition": "service_healthy"}
    assert services["spark-worker"]["depends_on"] == {"spark-master": healthy}
    assert services["redis-cluster-create"]["depends_on"] == dict.fromkeys(NODES, healthy)
    assert services["redis-cluster-create"]["restart"] == "no"  # a job
    for name in ("spark-master", "spark-worker", *NODES):
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("spark-master", *NODES):
        assert {"interval", "timeout", "retries"} <= set(services[name]["healthcheck"]), name


def test_the_worker_joins_the_masters_address_and_the_job_names_every_node() -> None:
    master = service("spark-master")["command"]
    worker = service("spark-worker")["command"]
    assert master[:2] == [f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.master.Master"]
    assert worker[:2] == [f"{SPARK_HOME}/bin/spark-class", "org.apache.spark.deploy.worker.Worker"]
    host, port = master[master.index("--host") + 1], master[master.index("--port") + 1]
    assert worker[2] == f"spark://{host}:{port}"
    assert service("spark-master")["hostname"] == host
    for name in NODES:
        command = service(name)["command"]
        assert command[command.index("--cluster-announce-hostname") + 1] == name
    nodes = service("redis-cluster-create")["environment"]["REDIS_CLUSTER_NODES"].split()
    conf = mounted("redis-node-1", service("redis-node-1")["command"][1]).read_text()
    port = re.search(r"^port (\d+)$", conf, re.M)
    assert port is not None
    assert nodes == [f"{name}:{port.group(1)}" for name in NODES]


def test_the_spark_image_installs_the_spark_extras_pin() -> None:
    build = service("spark-master")["build"]
    assert build == service("spark-worker")["build"]
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    [pin] = [req for req in extras["spark"] if req.startswith("pyspark")]
    assert f"pip install {pin} " in dockerfile
    assert re.search(r"^FROM python:3\.11-", dockerfile, re.M)  # the featurestore image's Python
    assert f" {SPARK_HOME}\n" in dockerfile


# -- the commands, for real ---------------------------------------------------------------------


def spark_folder() -> Path:
    """The pyspark package's folder (``/opt/spark`` in the image); fail in CI without it."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set, so pyspark (the spark extra) must be installed")
        pytest.skip("COMPOSE SPARK TEST SKIPPED: pyspark is not installed (the spark extra)")
    return Path(spec.origin).parent


def master_state(ui_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=3) as response:
        state: dict[str, Any] = json.load(response)
    return state


def spark_env(name: str) -> dict[str, str]:
    return {**os.environ, **{k: str(v) for k, v in service(name)["environment"].items()}}


def test_spark_master_and_worker_commands_register_the_worker(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    require_binary("java")
    home = spark_folder()

    def on_host(argv: list[str]) -> list[str]:
        return [str(home) + arg[len(SPARK_HOME) :] if arg.startswith(SPARK_HOME) else arg
                for arg in argv]  # fmt: skip

    port, ui, worker_ui = free_port(), free_port(), free_port()
    master = with_options(
        on_host(service("spark-master")["command"]),
        {"--host": "127.0.0.1", "--port": str(port), "--webui-port": str(ui)},
    )
    start(master, tmp_path / "master.log", processes, spark_env("spark-master"))
    health = healthcheck_argv("spark-master")
    assert health[-1].count("127.0.0.1:8080/") == 1
    health[-1] = health[-1].replace("127.0.0.1:8080/", f"127.0.0.1:{ui}/")
    assert passes(health, within=120), (tmp_path / "master.log").read_text()

    worker = with_options(
        on_host(service("spark-worker")["command"]),
        {"--host": "127.0.0.1", "--webui-port": str(worker_ui), "--work-dir": str(tmp_path / "w")},
    )
    worker[2] = f"spark://127.0.0.1:{port}"
    start(worker, tmp_path / "worker.log", processes, spark_env("spark-worker"))
    deadline = time.monotonic() + 120
    while True:
        state = master_state(ui)
        alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
        if alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(alive) == 1, (tmp_path / "worker.log").read_text()
    cores = worker[worker.index("--cores") + 1]
    assert (alive[0]["host"], alive[0]["cores"]) == ("127.0.0.1", int(cores))
    assert state["url"] == f"spark://127.0.0.1:{port}"
    # The master lists the worker as soon as it registers it; the worker logs the master's reply
    # a moment later (seconds on a loaded machine).
    log = tmp_path / "worker.log"
    while "Successfully registered with master" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)


@pytest.mark.redis
def test_redis_cluster_nodes_and_the_create_job_form_a_cluster(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    binary = require_binary("redis-server")
    require_binary("redis-cli")
    ports = free_cluster_ports(len(NODES))
    for name, port in zip(NODES, ports, strict=True):
        command = service(name)["command"]
        assert command[0] == "redis-server"
        folder = tmp_path / name
        folder.mkdir()
        # The compose command with its mounted config; the port, interface, data folder and
        # announced endpoints (addresses: no names resolve here) are the test's.
        argv = [binary, str(mounted(name, command[1])), *command[2:]]
        argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        argv += ["--cluster-preferred-endpoint-type", "ip"]
        start(argv, folder / "redis.log", processes, dict(os.environ))
        check = healthcheck_argv(name)
        check[-1] = check[-1].replace("redis-cli ", f"redis-cli -h 127.0.0.1 -p {port} ")
        assert passes(check, within=20), (folder / "redis.log").read_text()

    job = service("redis-cluster-create")
    script = mounted("redis-cluster-create", job["command"][-1])
    env = {**os.environ, "REDIS_CLUSTER_NODES": " ".join(f"127.0.0.1:{p}" for p in ports)}
    argv = [*job["command"][:-1], str(script)]
    assert "Redis Cluster ready" in run_job(argv, env)
    # Every node converges on the same view through gossip, within seconds of the job's end.
    deadline = time.monotonic() + 30
    while True:
        infos, roles = [], []
        for port in ports:
            client = redis.Redis(port=port)
            infos.append(client.cluster("info"))
            roles.append(client.info("replication")["role"])
            client.close()
        settled = (
            all(
                info["cluster_state"] == "ok"
                and int(info["cluster_slots_assigned"]) == 16384
                and (int(info["cluster_known_nodes"]), int(info["cluster_size"])) == (6, 3)
                for info in infos
            )
            and sorted(roles) == ["master"] * 3 + ["slave"] * 3
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert settled, list(zip(ports, infos, roles, strict=True))
    # The online store of the profile's featurestore.yaml snippet, pointed at the nodes.
    config = parse_config(
        {
            "project": "p",
            "registry": "sqlite:///registry.db",
            "online_store": {
                "type": "redis",
                "url": f"redis://127.0.0.1:{ports[0]}",
                "cluster": True,
            },
        },
        tmp_path,
    )
    store = open_online_store(config)
    try:
        v = view()
        namespace = Namespace("compose", v, 1)
        store.write_batch(namespace, batch(v, {"driver_id": [1, 2]}, [NOW_US] * 2, rate=[0.5, 2.0]))
        read = store.read(namespace, keys_table(driver_id=[2, 1, 3]), ["rate"])
    finally:
        store.close()
    assert read.column(FOUND).to_pylist() == [True, True, False]
    assert read.column("rate").to_pylist() == [2.0, 0.5, None]
    # Run again (a second `docker compose up`): nothing to do.
    assert "already formed" in run_job(argv, env)
