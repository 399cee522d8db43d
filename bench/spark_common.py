"""What both Spark children of ``historical.py --engine spark`` share: the Spark settings, the
session start and the memory of the driver JVM.

Both engines run on the same local Spark (``--spark-master``, default ``local[2]``) with the same
settings (:data:`DEFAULT_CONF`, changed with ``--spark-conf KEY=VALUE``). PySpark starts the
driver JVM as a child process of the Python process (``spark-submit`` then ``java``), so the
child's own ``ru_maxrss`` does not include it: :class:`JvmMonitor` samples the resident memory
of the ``java`` processes below this one, and reads the kernel's high-water mark (``VmHWM``) of
each at the end as a cross-check. This module imports neither engine, only PySpark and psutil.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import emit_result, peak_rss_mb, stopwatch

#: The Spark settings both engines run with, unless ``--spark-conf`` overrides one.
#: - the UI and the console progress bars off: nobody looks at them, they cost listeners;
#: - the driver on loopback (the machine's name resolves to it anyway);
#: - 8 shuffle partitions instead of 200: 2 cores, a few million rows;
#: - an 8 GB driver heap (local mode: the driver is the executor): with 4 GB Feast's store ran
#:   out of heap collecting the S result to pandas (ours did not need it);
#: - UTC session time zone, so timestamps mean the same on both sides;
#: - Arrow for pandas <-> Spark (the 1M-row entity frame in, the result out), as both engines'
#:   documentation recommends.
DEFAULT_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "8g",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
DEFAULT_MASTER = "local[2]"


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """:data:`DEFAULT_CONF` updated with ``KEY=VALUE`` pairs from the command line."""
    conf = dict(DEFAULT_CONF)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--spark-conf {pair!r}: expected KEY=VALUE")
        conf[key.strip()] = value.strip()
    return conf


def encode_conf(conf: dict[str, str]) -> str:
    """The settings as one command-line argument for a child."""
    return json.dumps(conf, sort_keys=True)


def decode_conf(text: str) -> dict[str, str]:
    """Inverse of :func:`encode_conf`."""
    return {str(k): str(v) for k, v in json.loads(text).items()}


def start_session(master: str, conf: dict[str, str]) -> Any:
    """Start (or get) the process's Spark session with ``master`` and ``conf``, and run one tiny
    job, so the JVM is up before the clock starts (a long-lived process has its session).

    Both engines take the active session: ours through its engine, Feast's
    ``get_spark_session_or_start_new_with_repoconfig`` through ``SparkSession.getActiveSession``.
    """
    from pyspark.sql import SparkSession

    # The machine's name resolves to loopback: say so before the JVM starts, as spark.driver.*
    # come too late for its first warning.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName("featurestore-bench")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.range(1).count()
    return session


def spark_version() -> str:
    import pyspark

    return str(pyspark.__version__)


class JvmMonitor:
    """Peak resident memory and CPU time of the ``java`` processes below this process.

    A thread samples the sum of their RSS every ``interval`` seconds (the peak of the sum is the
    figure reported); :meth:`stop` also reads each one's ``VmHWM`` (its own exact peak, since it
    started) and its CPU seconds.
    """

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jvm-monitor", daemon=True)
        self.peak_mb = 0.0
        self.samples = 0
        self._cpu_mark: dict[int, float] = {}

    def __enter__(self) -> JvmMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _javas(self) -> list[Any]:
        found = []
        with contextlib.suppress(self._psutil.Error):
            for child in self._me.children(recursive=True):
                with contextlib.suppress(self._psutil.Error):
                    if child.name() == "java":
                        found.append(child)
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for java in self._javas():
                with contextlib.suppress(self._psutil.Error):
                    total += java.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.samples += 1
            self._stop.wait(self._interval)

    def _cpu_seconds(self) -> dict[int, float]:
        seconds = {}
        for java in self._javas():
            with contextlib.suppress(self._psutil.Error):
                times = java.cpu_times()
                seconds[java.pid] = times.user + times.system
        return seconds

    def mark_cpu(self) -> None:
        """Remember the JVM's CPU time now: :meth:`report` gives the CPU used since."""
        self._cpu_mark = self._cpu_seconds()

    def report(self) -> dict[str, float]:
        """The figures so far: sampled peak, the sum of ``VmHWM`` and CPU since :meth:`mark_cpu`."""
        hwm_kb = 0
        for java in self._javas():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{java.pid}/status").read_text()
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        hwm_kb += int(line.split()[1])
        cpu_now = self._cpu_seconds()
        cpu = sum(cpu_now[pid] - self._cpu_mark.get(pid, 0.0) for pid in cpu_now)
        return {
            "jvm_peak_mb": self.peak_mb,
            "jvm_hwm_mb": hwm_kb / 1024,
            "jvm_cpu_seconds": cpu,
            "jvm_samples": float(self.samples),
        }


def python_cpu_seconds() -> float:
    """CPU seconds (user + system) of this Python process so far."""
    times = os.times()
    return float(times.user + times.system)


def time_spark_retrieval(
    retrieve: Callable[[], Any], master: str, conf: dict[str, str], out: str, engine: str
) -> None:
    """The timed part of both children: start Spark before the clock (as a long-lived process
    would have it), time ``retrieve()`` (a pandas frame), write it to ``out`` for the comparison
    and emit the figures, the driver JVM's included. ``engine`` names the side; the PySpark
    version is added."""
    with JvmMonitor() as jvm:
        with stopwatch() as startup:
            start_session(master, conf)
        jvm.mark_cpu()
        cpu_before = python_cpu_seconds()
        with stopwatch() as elapsed:
            result = retrieve()
        python_cpu = python_cpu_seconds() - cpu_before
        peak = peak_rss_mb()
        figures = jvm.report()
    result.to_parquet(out)
    emit_result(
        {
            "seconds": elapsed[0],
            "peak_mb": peak,
            "session_seconds": startup[0],
            "python_cpu_seconds": python_cpu,
            **figures,
            "rows": len(result),
            "engine": f"{engine}, pyspark {spark_version()}",
        }
    )
