"""The Spark engine on a real standalone cluster: a master and a worker started as separate
processes (``bin/spark-class`` of the pyspark install) on free loopback ports, torn down after.

A meaningful subset of the offline engine contract runs against ``master: spark://...``: the
latest rows per key, a few oracle scenarios (plain, filtered by created time, with retention)
and a handful of classic cases; the whole contract runs on ``local[2]`` in
``tests/test_offline_spark.py``. The module's session is the cluster's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from contract_pit_cases import PitCasesContract
from contract_stats import StatisticsContract
from offline_contract import OfflineEngineContract
from spark_session import PY4J_WARNINGS, require_spark, start_session

pytestmark = PY4J_WARNINGS

#: The classic cases kept on the cluster (every other one runs on local[2]).
KEPT_CASES = {
    "test_value_just_outside_ttl_is_null_and_exactly_at_the_edge_is_present",
    "test_later_created_timestamp_wins_an_event_time_tie",
    "test_input_order_duplicates_and_extra_columns_are_preserved",
    "test_all_result_formats_agree",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(_spark_class()), *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as answer:
            return int(json.load(answer).get("aliveworkers", 0))
    except OSError:
        return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``spark://127.0.0.1:P`` of a standalone master with one worker (1 core, 1 GB)."""
    require_spark()
    folder = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(_spark_class().parent.parent),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder),
        "PYSPARK_PYTHON": sys.executable,
    }
    master = _start(
        [
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        folder / "master.log",
        env,
    )
    url = f"spark://127.0.0.1:{port}"
    worker = _start(
        [
            "org.apache.spark.deploy.worker.Worker",
            url,
            "--cores",
            "1",
            "--memory",
            "1g",
            "--host",
            "127.0.0.1",
            "--webui-port",
            str(worker_ui),
            "--work-dir",
            str(folder / "work"),
        ],
        folder / "worker.log",
        env,
    )
    try:
        deadline = time.monotonic() + 180
        while _alive_workers(ui) < 1:
            if (
                time.monotonic() > deadline
                or master.poll() is not None
                or worker.poll() is not None
            ):
                logs = "\n".join(p.read_text()[-2000:] for p in folder.glob("*.log"))
                pytest.fail(f"the standalone Spark cluster did not come up:\n{logs}")
            time.sleep(1)
        yield url
    finally:
        _stop(worker)
        _stop(master)


@pytest.fixture(scope="module")
def cluster_session(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    session = start_session(
        cluster,
        tmp_path_factory.mktemp("warehouse"),
        {
            "spark.executor.memory": "512m",
            "spark.cores.max": "1",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        },
    )
    assert session.sparkContext.master == cluster
    yield session
    session.stop()


class TestSparkStandaloneCluster(OfflineEngineContract):
    """A subset of the contract (see the module's docstring) on the standalone cluster."""

    __test__ = True
    engine_type = "spark"

    @pytest.fixture(autouse=True)
    def _session(self, cluster_session: Any) -> None:
        """Engines opened by the contract reuse the cluster's session."""

    @pytest.mark.parametrize("seed", range(2))
    def test_engine_matches_oracle(self, tmp_path: Path, seed: int) -> None:
        super().test_engine_matches_oracle(tmp_path, seed)

    @pytest.mark.parametrize("seed", [1])
    def test_engine_matches_oracle_filtering_by_created_timestamp(
        self, tmp_path: Path, seed: int
    ) -> None:
        super().test_engine_matches_oracle_filtering_by_created_timestamp(tmp_path, seed)

    @pytest.mark.parametrize("seed", [0])
    def test_engine_matches_oracle_with_retention_cutoffs(self, tmp_path: Path, seed: int) -> None:
        super().test_engine_matches_oracle_with_retention_cutoffs(tmp_path, seed)

    test_filter_scenarios_exercise_the_filter = None  # pure oracle: runs once, on local[2]


# Leave out (pytest collects only callables) the cases run on local[2] only.
for _name in [*dir(PitCasesContract), *dir(StatisticsContract)]:
    if _name.startswith("test_") and _name not in KEPT_CASES:
        setattr(TestSparkStandaloneCluster, _name, None)
