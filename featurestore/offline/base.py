"""The offline engine interface: point-in-time correct retrieval over a view's source.

The facade resolves feature references into :class:`FeatureRequest` objects (which view
definition, which features, under which output names); an engine turns an entity frame and those
requests into a :class:`RetrievalJob`. Engines other than DuckDB (Spark, later) implement the same
interface and pass the same oracle tests.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
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


@dataclass(frozen=True)
class LatestWindow:
    """Which source rows are candidates for materialization; epoch µs (UTC), bounds inclusive.

    A row qualifies when ``start_us <= event_ts <= end_us`` (``start_us=None``: no lower bound)
    and, when ``changed_after = (event_us, created_us)`` is set, it is new since a watermark: its
    event time is after ``event_us`` or its created time is after ``created_us``
    (``created_us=None``: every row with a created time counts as new). For a source without a
    created column only event time can tell.
    """

    start_us: int | None
    end_us: int
    changed_after: tuple[int, int | None] | None = None


class LatestRows(ABC):
    """The latest qualifying row per entity key of one view, ready to stream to an online store.

    ``keys`` rows in all (one per key), chosen among ``rows_read`` qualifying source rows, whose
    latest created timestamp was ``max_created_us`` (``None``: no created timestamps). Batches
    follow the online write conventions of :mod:`featurestore.online.base`. Close it (e.g. with
    ``contextlib.closing``) to release the engine's resources.
    """

    keys: int
    rows_read: int
    max_created_us: int | None

    @abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of bounded size; can be iterated once."""

    @abstractmethod
    def close(self) -> None:
        """Release the result."""


class OfflineEngine(ABC):
    """Builds point-in-time correct training frames and the latest rows to materialize."""

    @abstractmethod
    def get_historical_features(
        self, entity_df: EntityFrameInput, requests: Sequence[FeatureRequest]
    ) -> RetrievalJob:
        """Join ``requests`` onto ``entity_df`` with the design's point-in-time semantics."""

    @abstractmethod
    def latest_per_entity(
        self, view: FeatureView, window: LatestWindow, *, batch_rows: int
    ) -> LatestRows:
        """Per entity key, the view's latest source row in ``window`` (with the join's tie-break).

        Every feature of the view is included, cast to its declared type.
        """

    @abstractmethod
    def sample_entity_keys(self, view: FeatureView, sample: int, seed: int) -> pa.Table:
        """Up to ``sample`` distinct non-null join-key tuples of the view's source, chosen
        reproducibly from ``seed`` (the consistency check's sample)."""

    def close(self) -> None:  # noqa: B027 - optional hook, engines without resources keep the default
        """Release connections and temporary files."""
