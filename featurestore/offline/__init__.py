"""Offline retrieval: the engine interface and the DuckDB engine over Parquet."""

from featurestore.offline.base import EntityFrameInput, FeatureRequest, OfflineEngine, RetrievalJob
from featurestore.offline.duckdb_engine import DuckDBEngine
from featurestore.offline.job import DuckDBRetrievalJob
from featurestore.offline.source_schema import validate_view_source

__all__ = [
    "DuckDBEngine",
    "DuckDBRetrievalJob",
    "EntityFrameInput",
    "FeatureRequest",
    "OfflineEngine",
    "RetrievalJob",
    "validate_view_source",
]
