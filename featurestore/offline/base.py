"""The offline engine interface: point-in-time correct retrieval over a view's source.

The facade resolves feature references into :class:`FeatureRequest` objects (which view
definition, which features, under which output names); an engine turns an entity frame and those
requests into a :class:`RetrievalJob`. Engines other than DuckDB (Spark, later) implement the same
interface and pass the same oracle tests.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurestore.definitions.feature_view import FeatureView

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

#: What ``entity_df`` may be: pandas, polars, pyarrow, or a Parquet path.
EntityFrameInput = Any


@dataclass(frozen=True)
class FeatureRequest:
    """Features of one view to join, and the output column name of each (same order)."""

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


class RetrievalJob(ABC):
    """A training frame to be materialized in the format the caller wants."""

    @abstractmethod
    def to_arrow(self) -> pa.Table:
        """The result as a pyarrow Table, in entity-frame order."""

    @abstractmethod
    def to_pandas(self) -> pd.DataFrame:
        """The result as a pandas DataFrame, in entity-frame order."""

    @abstractmethod
    def to_polars(self) -> pl.DataFrame:
        """The result as a polars DataFrame, in entity-frame order."""

    @abstractmethod
    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Stream the result to a Parquet file without holding it all in memory."""


class OfflineEngine(ABC):
    """Builds point-in-time correct training frames."""

    @abstractmethod
    def get_historical_features(
        self, entity_df: EntityFrameInput, requests: Sequence[FeatureRequest]
    ) -> RetrievalJob:
        """Join ``requests`` onto ``entity_df`` with the design's point-in-time semantics."""

    def close(self) -> None:  # noqa: B027 - optional hook, engines without resources keep the default
        """Release connections and temporary files."""
