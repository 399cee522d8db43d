"""The offline engine interface: point-in-time correct retrieval over a view's source.

The facade resolves feature references into :class:`FeatureRequest` objects (which view
definition, which features, under which output names); an engine turns an entity frame and those
requests into a :class:`RetrievalJob`. Every engine does retrieval and the latest rows per key
(:class:`OfflineEngine`); what only some engines can do is a capability mixin
(:class:`SupportsStatistics`, :class:`SupportsWindowReads`, :class:`SupportsKeyCounts`,
:class:`SupportsAggregations`, :class:`SupportsSourceLocations`) that callers check with
``isinstance``, raising :func:`missing_capability` (which names the engine and the operation)
when it is missing. Engines are listed in
:mod:`featurestore.offline.backends` and pass the contract tests of ``tests/offline_contract.py``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import EngineCapabilityError, RetrievalError
from featurestore.quality.profile import ColumnStats, TableProfile
from featurestore.types import ValueType

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

#: What ``entity_df`` may be: pandas, polars, pyarrow, or a Parquet path.
EntityFrameInput = Any


@dataclass(frozen=True)
class FeatureRequest:
    """Features of one view to join, and the output column name of each (same order).

    ``not_before_us`` (epoch µs, UTC) is the view's retention cut-off: source rows with an
    earlier event time are never candidates (``None``: no retention, no extra condition).
    """

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    not_before_us: int | None = None


@dataclass(frozen=True)
class SavedDataset:
    """A training frame saved with :meth:`RetrievalJob.save_dataset`, as the registry keeps it.

    ``views`` maps each view to the exact version joined; ``fingerprint`` is a SHA-256 of the
    entity frame (see :mod:`featurestore.governance.datasets`); ``location`` is the Parquet file.
    """

    name: str
    location: str
    fingerprint: str
    views: dict[str, int]
    rows: int
    created_at: datetime
    principal: str | None = None
    service: str | None = None
    columns: tuple[str, ...] = ()
    entity_columns: tuple[str, ...] = ()


class DatasetSaver(Protocol):
    """Saves a job's frame and records it: given to a job by the facade that made it, so the
    offline engine itself knows nothing of the registry."""

    def __call__(self, job: RetrievalJob, name: str, *, overwrite: bool) -> SavedDataset: ...


class RetrievalJob(ABC):
    """A training frame to be materialized in the format the caller wants."""

    _saver: DatasetSaver | None = None

    def attach_saver(self, saver: DatasetSaver) -> None:
        """Let :meth:`save_dataset` record the frame (the facade calls this)."""
        self._saver = saver

    def save_dataset(self, name: str, *, overwrite: bool = False) -> SavedDataset:
        """Write the frame under the store's data folder
        (``<data_path>/<project>/datasets/<name>.parquet``) and record it in the registry: the
        exact view versions, the entity frame's fingerprint, where it is, its rows, who saved
        it, and its lineage. A name already saved is an error unless ``overwrite=True``::

            job = store.get_historical_features(entity_df, features=["driver_stats:conv_rate"])
            saved = job.save_dataset("churn_training_2026_03")
            saved.views, saved.location        # {'driver_stats': 2}, '/repo/data/store/...'
        """
        if self._saver is None:
            raise RetrievalError(
                f"cannot save dataset {name!r}: only a job from "
                "FeatureStore.get_historical_features can be saved (it knows the registry that "
                "records the views and versions used)"
            )
        return self._saver(self, name, overwrite=overwrite)

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

    def to_batches(self, rows: int) -> pa.RecordBatchReader:
        """The result in record batches of at most ``rows`` rows, in entity-frame order.

        Engines that can stream override this; the default reads the whole table first."""
        table = self.to_arrow()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(rows))


def training_frame_to_pandas(table: pa.Table, feature_columns: Sequence[str]) -> pd.DataFrame:
    """``table`` as pandas, with integer and Bool features (``feature_columns``) in pandas'
    nullable dtypes (``Int64``, ``boolean``...): a missing value is ``<NA>`` and the column keeps
    its declared type instead of turning into float64; entity columns come back as they went in.
    """
    import pandas as pd
    import pyarrow as pa

    nullable_dtypes: dict[pa.DataType, Any] = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame: pd.DataFrame = table.to_pandas()
    for name in feature_columns:
        arrow_type = table.schema.field(name).type
        nullable = nullable_dtypes.get(arrow_type)
        if nullable is not None:
            frame[name] = table.column(name).to_pandas(types_mapper={arrow_type: nullable}.get)
    return frame


@dataclass(frozen=True)
class LatestWindow:
    """Which source rows are candidates for materialization; epoch µs (UTC), bounds inclusive.

    A row qualifies when ``start_us <= event_ts <= end_us`` (``start_us=None``: no lower bound)
    and, when ``changed_after = (event_us, created_us)`` is set, it is new since a watermark: its
    event time is after ``event_us`` or its created time is after ``created_us``
    (``created_us=None``: every row with a created time counts as new). For a source without a
    created column only event time can tell. ``not_before_us`` is the view's retention cut-off:
    rows with an earlier event time never qualify, whatever the other bounds say.
    """

    start_us: int | None
    end_us: int
    changed_after: tuple[int, int | None] | None = None
    not_before_us: int | None = None


class LatestRows(ABC):
    """The latest qualifying row per entity key of one view, ready to stream to an online store.

    ``keys`` rows in all (one per key), chosen among ``rows_read`` qualifying source rows, whose
    latest created timestamp was ``max_created_us`` (``None``: no created timestamps). Batches
    follow the online write conventions of :mod:`featurestore.online.base`. Close it (e.g. with
    ``contextlib.closing``) to release the engine's resources.

    ``durable`` (set by :meth:`SupportsEventReads.read_events`) maps each stream consumer
    (``<consumer>:<topic>``) to the largest stream position recorded in the files read (see
    :mod:`featurestore.offline.file_positions`): every streamed event up to it is in the read.
    """

    keys: int
    rows_read: int
    max_created_us: int | None
    durable: Mapping[str, str] = MappingProxyType({})

    @abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of bounded size; can be iterated once."""

    @abstractmethod
    def close(self) -> None:
        """Release the result."""


class OfflineEngine(ABC):
    """Builds point-in-time correct training frames and the latest rows to materialize.

    ``engine_type`` is the engine's name in :mod:`featurestore.offline.backends` (the
    ``offline_store.type`` that selects it), used in messages.
    """

    engine_type: ClassVar[str] = "unnamed"

    @abstractmethod
    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        requests: Sequence[FeatureRequest],
        *,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        """Join ``requests`` onto ``entity_df`` with the design's point-in-time semantics.

        With ``filter_by_created_timestamp`` a source row is a candidate only if its created
        timestamp is non-null and not later than the entity row's timestamp (it existed then);
        views whose source has no created column are unaffected.
        """

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
        reproducibly from ``seed``: the sample of the online consistency check, which every
        deployment can run, so every engine provides it."""

    def close(self) -> None:  # noqa: B027 - optional hook, engines without resources keep the default
        """Release connections and temporary files."""


class SupportsAggregations(ABC):  # noqa: B024 - a capability marker: the work is in retrieval
    """Capability: aggregated views (windowed :class:`~featurestore.Aggregation` features) in
    :meth:`OfflineEngine.get_historical_features`.

    An engine with it computes each aggregation at each entity row's instant exactly as
    :mod:`featurestore.aggregations.functions` defines it (window ``(t - W, t]``, nulls skipped,
    the empty-window values, the first/last order, event-id deduplication, the retention cut-off
    of the request), without joining every event of a key to every entity row; the contract
    tests of ``tests/contract_aggregations.py`` check it against a brute-force oracle. The
    facade refuses aggregated views on an engine without it.
    """


class SupportsKeyCounts(ABC):
    """Capability: counting one entity's rows in a view's own source files (erasure)."""

    @abstractmethod
    def count_entity_rows(self, view: FeatureView, key_values: Mapping[str, Any]) -> dict[str, int]:
        """Rows of the view's own source files (a push source's batch files, never the store's
        pushed data) whose join keys equal ``key_values`` (some or all of the view's join keys,
        typed values), by file; files without such rows are left out. Erasure lists them for
        their owners."""


class SupportsStatistics(ABC):
    """Capability: profiles of a view's rows in a window or of a saved training set (the
    quality layer's statistics, references and drift; see :mod:`featurestore.quality.profile`)."""

    @abstractmethod
    def view_statistics(
        self,
        view: FeatureView,
        *,
        start_us: int | None,
        end_us: int | None,
        not_before_us: int | None = None,
        features: Sequence[str] | None = None,
        reference: Mapping[str, ColumnStats] | None = None,
    ) -> TableProfile:
        """Profile the view's features (``features``: a subset, in that order) over its source
        rows with ``start_us <= event time <= end_us`` (epoch µs, UTC, inclusive; ``None``:
        unbounded), as the point-in-time join sees them: pushed offline rows included, rows with
        a null timestamp or join key and rows before ``not_before_us`` (retention) left out,
        values cast to their declared types. With ``reference`` (feature -> a reference
        column), also count the rows on its grid or categories (the ``probe_*`` fields)."""

    @abstractmethod
    def file_statistics(
        self,
        path: str,
        columns: Mapping[str, ValueType],
        *,
        reference: Mapping[str, ColumnStats] | None = None,
    ) -> TableProfile:
        """Profile ``columns`` (name -> declared type) of every row of one Parquet file (a saved
        training set), like :meth:`view_statistics`."""


class SupportsWindowReads(ABC):
    """Capability: streaming every row of a view's window (on-demand validation)."""

    @abstractmethod
    def read_window(
        self,
        view: FeatureView,
        *,
        start_us: int | None,
        end_us: int | None,
        not_before_us: int | None = None,
        batch_rows: int,
    ) -> LatestRows:
        """Every source row of the view in the window of
        :meth:`SupportsStatistics.view_statistics` (not only the latest per key), streamed in
        batches of at most ``batch_rows``: the join keys, then the event time
        (``timestamp[us, tz=UTC]``, named as the source's ``timestamp_field``), then every
        feature, in their declared types. ``keys`` and ``rows_read`` are both the row count."""


class SupportsEventReads(ABC):
    """Capability: streaming an aggregated view's events grouped by entity key (materializing
    its online aggregation state)."""

    @abstractmethod
    def read_events(
        self,
        view: FeatureView,
        *,
        after_us: int | None,
        end_us: int,
        not_before_us: int | None = None,
        batch_rows: int,
    ) -> LatestRows:
        """Every source row of ``view`` with ``after_us < event_ts <= end_us`` (None: no lower
        bound; rows before the retention cut-off ``not_before_us`` never), in batches of at
        most ``batch_rows``: the join keys, ``EVENT_TS``, ``CREATED_TS`` (int64 epoch µs; a
        null created time is the smallest value), ``__fs_seq`` (file order) and the view's
        columns, in their declared types; ordered by key, then event time, created time and
        file order. ``rows_read`` counts the rows, ``keys`` the distinct keys, and ``durable``
        gives the stream positions of exactly the files read
        (:meth:`~featurestore.offline.store_data.StoreData.durable_positions` of the listing
        the read used), so materialization keeps the streamed events the read lacks."""


class SupportsSourceLocations(ABC):
    """Capability: where a table source's data lives, so ``materialize --watch`` can watch it."""

    @abstractmethod
    def source_locations(self, view: FeatureView) -> list[str]:
        """The storage locations holding the rows of ``view``'s table source, as the catalog
        records them (local paths without ``file:``; other schemes, e.g. ``s3://``, kept).
        Every new version of the table writes files under them. Reads of ``view`` made
        afterwards see what was written there since, by this process or any other."""


def missing_capability(
    engine: OfflineEngine, capability: type, operation: str
) -> EngineCapabilityError:
    """The error to raise when ``engine`` is not an instance of the mixin ``capability``;
    ``operation`` is a phrase after "cannot", e.g. ``"compute statistics"``::

        if not isinstance(engine, SupportsStatistics):
            raise missing_capability(engine, SupportsStatistics, "compute statistics")
    """
    return EngineCapabilityError(
        f"offline engine {engine.engine_type!r} cannot {operation}: it lacks "
        f"{capability.__name__}; use an offline_store type that supports it (e.g. duckdb)"
    )


def require_aggregations(engine: OfflineEngine, requests: Sequence[FeatureRequest]) -> None:
    """Raise :func:`missing_capability` when a request reads an aggregated view and ``engine``
    lacks :class:`SupportsAggregations`."""
    aggregated = [r.view for r in requests if r.view.is_aggregated]
    if aggregated and not isinstance(engine, SupportsAggregations):
        raise missing_capability(engine, SupportsAggregations, f"aggregate {aggregated[0].label}")


def refuse_latest_of_aggregated(view: FeatureView) -> None:
    """Raise when ``view`` is aggregated: :meth:`OfflineEngine.latest_per_entity` has nothing
    to give it (its values are windows over events, not source rows)."""
    if view.is_aggregated:
        raise RetrievalError(
            f"{view.label} is aggregated: its latest rows are not its values, so it cannot "
            "be materialized row by row; retrieve it with get_historical_features"
        )
