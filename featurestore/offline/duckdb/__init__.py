"""The DuckDB offline engine over Parquet: the only package that imports ``duckdb``.

The facade never imports it directly; :mod:`featurestore.offline.backends` loads it when a
repository's ``offline_store`` has ``type: duckdb`` (the default). Its settings
(:mod:`featurestore.offline.duckdb.settings`) import without duckdb: the engine's names below
are imported on first use.
"""

from typing import TYPE_CHECKING

from featurestore.offline.lazy import lazy_exports

if TYPE_CHECKING:
    from featurestore.offline.duckdb.duckdb_engine import DuckDBEngine
    from featurestore.offline.duckdb.job import DuckDBRetrievalJob

__all__ = ["DuckDBEngine", "DuckDBRetrievalJob"]

__getattr__ = lazy_exports(
    __name__,
    {
        "DuckDBEngine": "featurestore.offline.duckdb.duckdb_engine",
        "DuckDBRetrievalJob": "featurestore.offline.duckdb.job",
    },
)
