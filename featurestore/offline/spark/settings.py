"""Settings of the Spark offline engine, importable without pyspark.

offline_store: {type: spark, master: "spark://head:7077", conf: {spark.executor.memory: 4g}}
"""

from __future__ import annotations

from typing import Literal

from featurestore.config_types import NonEmpty
from featurestore.offline.settings import OfflineStoreSettings

__all__ = ["SparkOfflineStoreConfig"]


class SparkOfflineStoreConfig(OfflineStoreSettings):
    """Settings of the Spark offline engine (``offline_store: {type: spark, master, conf}``).

    ``master`` is any Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``,
    ``k8s://https://host:443``); ``conf`` holds Spark settings as strings
    (``{spark.executor.memory: 4g}``). ``data_path`` and ``temp_directory`` mean what they mean
    for DuckDB (the store's own data, the materializer's spool folder).
    """

    example = "{type: spark, master: 'local[2]'}"
    type: Literal["spark"] = "spark"
    master: NonEmpty = "local[2]"
    conf: dict[str, str] = {}
