"""The Spark engine: the whole offline engine contract on ``local[2]``, plus what only Spark has
(SparkSource tables, ``to_spark()``, a Spark DataFrame as entity_df, materialization through the
facade, the capability errors)."""

from __future__ import annotations

from typing import Any

import pytest
from offline_contract import OfflineEngineContract
from spark_session import PY4J_WARNINGS, spark  # noqa: F401 - the module's session fixture

pytestmark = PY4J_WARNINGS


class TestSparkEngine(OfflineEngineContract):
    """Every contract test, on Spark local[2] (statistics are skipped: Spark lacks them)."""

    __test__ = True
    engine_type = "spark"

    @pytest.fixture(autouse=True)
    def _session(self, spark: Any) -> None:  # noqa: F811
        """Engines opened by the contract reuse the module's running session."""
