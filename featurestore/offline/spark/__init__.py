"""The Spark offline engine: the only package that imports ``pyspark``.

The facade never imports it directly; :mod:`featurestore.offline.backends` loads it when a
repository's ``offline_store`` has ``type: spark`` (``pip install 'featurestore[spark]'``). Its
settings (:mod:`featurestore.offline.spark.settings`) import without pyspark: the engine's names
below are imported on first use.
"""

from typing import TYPE_CHECKING

from featurestore.offline.lazy import lazy_exports

if TYPE_CHECKING:
    from featurestore.offline.spark.engine import SparkEngine
    from featurestore.offline.spark.job import SparkRetrievalJob

__all__ = ["SparkEngine", "SparkRetrievalJob"]

__getattr__ = lazy_exports(
    __name__,
    {
        "SparkEngine": "featurestore.offline.spark.engine",
        "SparkRetrievalJob": "featurestore.offline.spark.job",
    },
)
