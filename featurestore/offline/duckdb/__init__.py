"""The DuckDB offline engine over Parquet: the only package that imports ``duckdb``.

The facade never imports it directly; :mod:`featurestore.offline.backends` loads it when a
repository's ``offline_store`` has ``type: duckdb`` (the default).
"""

from featurestore.offline.duckdb.duckdb_engine import DuckDBEngine
from featurestore.offline.duckdb.job import DuckDBRetrievalJob

__all__ = ["DuckDBEngine", "DuckDBRetrievalJob"]
