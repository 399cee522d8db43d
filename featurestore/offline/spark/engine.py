"""The Spark offline engine: point-in-time retrieval and materialization on a Spark cluster.

    offline_store: {type: spark, master: "spark://head:7077", conf: {spark.executor.memory: 4g}}

It reads Parquet :class:`~featurestore.definitions.FileSource` data (files, folders, globs) and
:class:`~featurestore.definitions.SparkSource` tables, with the design's semantics (see
:mod:`.pit`), computes windowed aggregations (:class:`SupportsAggregations`, see
:mod:`.aggregate`), has the key counts of erasure (:class:`SupportsKeyCounts`) and a table's
location for ``materialize --watch`` (:class:`SupportsSourceLocations`) and the events that
materialize an aggregated view's online state (:class:`SupportsEventReads`, see :mod:`.events`);
statistics, drift and window reads are DuckDB's only, and asking Spark for them is a clear
:class:`~featurestore.errors.EngineCapabilityError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_type

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import SparkSource
from featurestore.errors import RetrievalError
from featurestore.offline.base import (
    EntityFrameInput,
    FeatureRequest,
    LatestWindow,
    OfflineEngine,
    SupportsAggregations,
    SupportsEventReads,
    SupportsKeyCounts,
    SupportsSourceLocations,
    refuse_latest_of_aggregated,
)
from featurestore.offline.entity_frame import ROW_ID, check_join_keys, check_output_names
from featurestore.offline.spark.aggregate import aggregation_features
from featurestore.offline.spark.catalog import table_location, table_of
from featurestore.offline.spark.entity import SparkEntity, prepare_entity
from featurestore.offline.spark.events import SparkEventRows, events_frame
from featurestore.offline.spark.job import SparkRetrievalJob
from featurestore.offline.spark.latest import SparkLatestRows, latest_frame
from featurestore.offline.spark.pit import ENTITY_TS, view_features
from featurestore.offline.spark.scan import SparkSourceFrame, read_source
from featurestore.offline.spark.session import SessionHolder, key_type, quoted
from featurestore.offline.spark.settings import SparkOfflineStoreConfig
from featurestore.offline.store_data import StoreData


class SparkEngine(
    OfflineEngine,
    SupportsAggregations,
    SupportsEventReads,
    SupportsKeyCounts,
    SupportsSourceLocations,
):
    """Point-in-time correct retrieval with Spark; one SparkSession per engine, started on first
    use (or the one already running in the process), stopped by :meth:`close` if it started it."""

    engine_type = "spark"

    def __init__(self, config: RepoConfig) -> None:
        self._config = config
        self._data = StoreData(config)
        offline = config.offline_store
        if not isinstance(offline, SparkOfflineStoreConfig):  # e.g. tests switching type only
            offline = SparkOfflineStoreConfig(data_path=offline.data_path)
        self._sessions = SessionHolder(offline.master, offline.conf)
        #: Tables whose locations were asked for (watched): refreshed before each read.
        self._watched_tables: set[str] = set()

    @property
    def session(self) -> Any:
        """The engine's SparkSession (started now if needed)."""
        return self._sessions.get()

    def _source(self, view: FeatureView, *, own_files_only: bool = False) -> SparkSourceFrame:
        session = self._sessions.get()
        source = view.source
        if isinstance(source, SparkSource) and source.table in self._watched_tables:
            # Spark caches a table's file listing: files another process wrote would be unseen.
            session.catalog.refreshTable(source.table)
        return read_source(session, self._data, view, own_files_only=own_files_only)

    def source_locations(self, view: FeatureView) -> list[str]:
        """The catalog's location of the view's SparkSource table (see
        :mod:`featurestore.offline.spark.catalog`); reads of its table refresh Spark's cached
        file listing from now on."""
        location = table_location(self._sessions.get(), view)
        self._watched_tables.add(table_of(view))
        return [location]

    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        requests: Sequence[FeatureRequest],
        *,
        filter_by_created_timestamp: bool = False,
    ) -> SparkRetrievalJob:
        """Join ``requests`` onto ``entity_df`` (pandas, polars, Arrow, a Parquet path or a Spark
        DataFrame); see :mod:`featurestore.offline.spark.pit`, and
        :mod:`featurestore.offline.spark.aggregate` for aggregated views."""
        session = self._sessions.get()
        entity = prepare_entity(session, entity_df, requests)
        check_output_names(entity.normalized, requests)
        sources = {r.view.name: self._source(r.view) for r in requests}
        check_join_keys(
            entity.normalized,
            requests,
            {name: _key_arrow_types(source) for name, source in sources.items()},
        )
        features = entity.keys.select(ROW_ID)
        for request in requests:
            source = sources[request.view.name]
            features_of = aggregation_features if request.view.is_aggregated else view_features
            found = features_of(
                _entity_keys(entity, source),
                source,
                request,
                min_ts_us=entity.min_ts_us,
                max_ts_us=entity.max_ts_us,
                filter_by_created_timestamp=filter_by_created_timestamp,
            )
            features = features.join(found, ROW_ID, "left")
        outputs = tuple(name for r in requests for name in r.output_names)
        return SparkRetrievalJob(entity, features, outputs)

    def latest_per_entity(
        self, view: FeatureView, window: LatestWindow, *, batch_rows: int
    ) -> SparkLatestRows:
        """The latest row per key in ``window``; see :mod:`featurestore.offline.spark.latest`."""
        refuse_latest_of_aggregated(view)
        frame = latest_frame(self._source(view), window)
        return SparkLatestRows(frame, tuple(view.join_keys), batch_rows)

    def read_events(
        self,
        view: FeatureView,
        *,
        after_us: int | None,
        end_us: int,
        not_before_us: int | None = None,
        batch_rows: int,
    ) -> SparkEventRows:
        """An aggregated view's events by key; see :mod:`featurestore.offline.spark.events`."""
        source = self._source(view)
        rows = SparkEventRows(
            events_frame(source, after_us, end_us, not_before_us), view, batch_rows
        )
        rows.durable = self._data.durable_positions(view, source.files)
        return rows

    def sample_entity_keys(self, view: FeatureView, sample: int, seed: int) -> pa.Table:
        """Up to ``sample`` distinct key tuples, ordered by a seeded hash (then the keys)."""
        if not view.join_keys:  # a global view has one "key": the empty one
            return pa.table({"__fs_rows": pa.nulls(1)}).select([])
        frame = self._source(view).frame
        keys = view.join_keys
        columns = [F.col(quoted(view.source.source_column(k))).alias(k) for k in keys]
        present = F.lit(True)
        for key in keys:
            present &= F.col(quoted(key)).isNotNull()
        ordered = (
            frame.select(*columns)
            .where(present)
            .distinct()
            .orderBy(F.xxhash64(*[F.col(quoted(k)) for k in keys], F.lit(seed)), *keys)
            .limit(int(sample))
        )
        return _collect(ordered, f"sampling keys of {view.label}")

    def count_entity_rows(self, view: FeatureView, key_values: Mapping[str, Any]) -> dict[str, int]:
        """Rows of the view's own source (files, or a SparkSource's table) whose keys equal
        ``key_values``, by file (by ``table <name>`` for a table that is not file-based)."""
        source = self._source(view, own_files_only=True)
        condition = F.lit(True)
        for key, value in key_values.items():
            column = F.col(quoted(view.source.source_column(key)))
            cast = key_type(view.join_key_types.get(key))
            condition &= (column if cast is None else column.cast(cast)) == F.lit(value)
        counted = source.frame.where(condition).groupBy("__fs_file").count()
        rows = _collect(counted, f"searching the source of {view.label} for {dict(key_values)}")
        table = view.source.table if isinstance(view.source, SparkSource) else None
        found: dict[str, int] = {}
        for file, count in zip(
            rows["__fs_file"].to_pylist(), rows["count"].to_pylist(), strict=True
        ):
            found[f"table {table}" if table is not None and not file else file] = count
        return dict(sorted(found.items()))

    def close(self) -> None:
        """Stop the SparkSession if this engine started it."""
        self._sessions.stop()


def _entity_keys(entity: SparkEntity, source: SparkSourceFrame) -> DataFrame:
    """The entity keys frame with the view's keys cast for comparison as ``__fs_k{i}``."""
    view = source.view
    columns = [F.col(ROW_ID), F.col(ENTITY_TS)]
    names = set(entity.keys.columns)
    for i, (key, dtype) in enumerate(view.join_key_types.items()):
        cast = key_type(dtype)
        if cast is None:  # undeclared: compare in the source column's own type
            source_type = source.column_type(view.source.source_column(key))
            cast = None if source_type is None else source_type.simpleString()
        column = F.col(quoted(key)) if key in names else F.lit(None)
        columns.append((column if cast is None else column.cast(cast)).alias(f"__fs_k{i}"))
    return entity.keys.select(*columns)


def _key_arrow_types(source: SparkSourceFrame) -> dict[str, pa.DataType]:
    view = source.view
    types: dict[str, pa.DataType] = {}
    for key in view.join_keys:
        dtype = source.column_type(view.source.source_column(key))
        if dtype is not None:
            types[key] = to_arrow_type(dtype)
    return types


def _collect(frame: DataFrame, what: str) -> pa.Table:
    try:
        return frame.toArrow()
    except PySparkException as exc:
        raise RetrievalError(f"{what} failed on Spark: {exc}") from exc
