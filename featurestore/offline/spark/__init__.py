"""The Spark offline engine: the only package that imports ``pyspark``.

The facade never imports it directly; :mod:`featurestore.offline.backends` loads it when a
repository's ``offline_store`` has ``type: spark`` (``pip install 'featurestore[spark]'``).
"""

from featurestore.offline.spark.engine import SparkEngine
from featurestore.offline.spark.job import SparkRetrievalJob

__all__ = ["SparkEngine", "SparkRetrievalJob"]
