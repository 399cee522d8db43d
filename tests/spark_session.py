"""The Spark test session: one ``local[2]`` SparkSession for a test module, started once.

Engines opened by the tests find it running and reuse it (Spark allows one SparkContext per
process); they never stop it. Without pyspark or Java the tests fail when ``CI`` is set and are
skipped loudly otherwise, as the other service-backed tests are.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Small shuffles and no UI: test data is tiny and the machine is shared.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "1g",
    "spark.sql.session.timeZone": "UTC",
}


#: py4j leaves its gateway sockets to the garbage collector; that is not the code under test.
PY4J_WARNINGS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning",
    "ignore::ResourceWarning",
)


def require_spark() -> None:
    """Return when pyspark and Java are there; fail in CI, skip loudly elsewhere."""
    reason = ""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (pip install 'featurestore[spark]')"
    if not reason and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "no java on PATH (Spark needs Java 17)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so Spark tests must run: {reason}")
        pytest.skip(f"SPARK TESTS SKIPPED: {reason}")


def start_session(master: str, warehouse: Path, extra: dict[str, str] | None = None) -> Any:
    """A SparkSession on ``master`` with the test settings and a warehouse folder."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName("featurestore-tests")
    settings = {**TEST_CONF, "spark.sql.warehouse.dir": str(warehouse), **(extra or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The module's local[2] session, stopped after the module."""
    require_spark()
    session = start_session("local[2]", tmp_path_factory.mktemp("warehouse"))
    yield session
    session.stop()
