"""Offline retrieval: the engine interface, its capabilities and the table of engines.

Each engine lives in a package of its own (DuckDB's in :mod:`featurestore.offline.duckdb`) and is
loaded by :mod:`featurestore.offline.backends` only when a repository uses it.
"""

from featurestore.offline.base import EntityFrameInput, FeatureRequest, OfflineEngine, RetrievalJob
from featurestore.offline.source_schema import validate_view_source

__all__ = [
    "EntityFrameInput",
    "FeatureRequest",
    "OfflineEngine",
    "RetrievalJob",
    "validate_view_source",
]
