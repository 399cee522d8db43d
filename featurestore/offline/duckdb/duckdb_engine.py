"""The DuckDB offline engine: point-in-time retrieval over Parquet sources.

    engine = DuckDBEngine(load_config("repo"))
    job = engine.get_historical_features(entity_df, [FeatureRequest(view, ("conv_rate",), ("conv_rate",))])
    job.to_pandas()

The engine owns one in-memory DuckDB database configured from ``offline_store`` in
``featurestore.yaml`` (``memory_limit``, ``temp_directory``, ``threads``); each job runs on a
connection of its own to that database. DuckDB never installs extensions at run time: Parquet and
the time-zone functions are built into the wheel.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import duckdb
import pyarrow as pa

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import QualityError, RetrievalError
from featurestore.offline.base import (
    EntityFrameInput,
    FeatureRequest,
    LatestRows,
    LatestWindow,
    OfflineEngine,
    SupportsAggregations,
    SupportsEventReads,
    SupportsKeyCounts,
    SupportsStatistics,
    SupportsWindowReads,
    refuse_latest_of_aggregated,
)
from featurestore.offline.duckdb.agg_instants import register_instants, values_sql
from featurestore.offline.duckdb.agg_sql import retrieval_ctes
from featurestore.offline.duckdb.duckdb_stats import ProfileOptions, profile_relation
from featurestore.offline.duckdb.events_sql import events_count_sql, events_sql
from featurestore.offline.duckdb.job import DuckDBRetrievalJob
from featurestore.offline.duckdb.latest_sql import (
    CANDIDATES_COLUMN,
    MAX_CREATED_COLUMN,
    build_key_sample_sql,
    build_latest_sql,
)
from featurestore.offline.duckdb.pit_sql import (
    ENTITY_TS,
    ROW_ID,
    EntityRelation,
    ViewSource,
    build_retrieval_sql,
    density_sql,
    key_sql_type,
    near_window_us,
    quote,
    string_literal,
)
from featurestore.offline.duckdb.settings import DuckDBOfflineStoreConfig
from featurestore.offline.duckdb.stats_sql import (
    StatsColumn,
    file_relation_sql,
    file_value_sql,
    table_relation_sql,
    view_relation_sql,
    view_value_sql,
    window_count_sql,
    window_rows_sql,
)
from featurestore.offline.entity_frame import (
    EntityFrame,
    check_join_keys,
    check_output_names,
    load_entity_frame,
)
from featurestore.offline.source_schema import source_arrow_types, validate_view_source
from featurestore.offline.store_data import StoreData
from featurestore.quality.profile import ColumnStats, TableProfile
from featurestore.types import ValueType


class DuckDBEngine(
    OfflineEngine,
    SupportsAggregations,
    SupportsStatistics,
    SupportsWindowReads,
    SupportsEventReads,
    SupportsKeyCounts,
):
    """Point-in-time correct retrieval with DuckDB over the views' Parquet sources; it has
    every capability of :mod:`featurestore.offline.base`."""

    engine_type = "duckdb"

    def __init__(self, config: RepoConfig) -> None:
        self._config = config
        self._data = StoreData(config)
        self._database = duckdb.connect(":memory:", config=self._settings(config))
        # TimeZone belongs to the ICU extension, so it is set after connecting, not in `config`.
        self._database.execute("SET GLOBAL TimeZone = 'UTC'")
        self._counter = itertools.count()
        self._lock = threading.Lock()
        #: Sampling of large tables in statistics (lowered by tests to exercise the sampled path).
        self.profile_options = ProfileOptions()
        #: The near window of views without TTL; ``None`` measures it per request (tests fix it
        #: to exercise either stage of the plan alone).
        self.near_window_us: int | None = None

    @staticmethod
    def _settings(config: RepoConfig) -> dict[str, Any]:
        settings: dict[str, Any] = {
            # Everything needed (parquet, icu) is statically linked: never reach for the network.
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        }
        offline = config.offline_store
        if not isinstance(offline, DuckDBOfflineStoreConfig):  # settings of another engine
            offline = DuckDBOfflineStoreConfig(data_path=offline.data_path)
        if offline.memory_limit is not None:
            settings["memory_limit"] = offline.memory_limit
        if offline.threads is not None:
            settings["threads"] = offline.threads
        temp_directory = config.resolve(offline.temp_directory)
        if temp_directory is not None:
            temp_directory.mkdir(parents=True, exist_ok=True)
            settings["temp_directory"] = str(temp_directory)
        return settings

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the engine's database, with the session time zone set to UTC."""
        with self._lock:
            connection = self._database.cursor()
        connection.execute("SET TimeZone = 'UTC'")
        return connection

    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        requests: Sequence[FeatureRequest],
        *,
        filter_by_created_timestamp: bool = False,
    ) -> DuckDBRetrievalJob:
        """Join ``requests`` onto ``entity_df``; see :mod:`featurestore.offline.duckdb.pit_sql`."""
        frame = load_entity_frame(entity_df)
        check_output_names(frame, requests)
        repo = self._config.repo_path
        for request in requests:
            validate_view_source(request.view, repo)
        check_join_keys(
            frame, requests, {r.view.name: source_arrow_types(r.view, repo) for r in requests}
        )
        connection = self.connection()
        # DuckDB turns an ASOF join whose left side it estimates below this many rows into a
        # nested loop over the right side; it estimates the far stage's entity rows (what an anti
        # join leaves) at ~1 row, whatever their number, so the loop must stay off.
        connection.execute("SET asof_loop_join_threshold = 0")
        try:
            entity = self._register_entity(connection, frame)
            sources = [
                self._with_density(connection, self._view_source(connection, request), entity)
                for request in requests
            ]
        except duckdb.Error as exc:
            connection.close()
            raise RetrievalError(f"preparing the point-in-time retrieval failed: {exc}") from exc
        return DuckDBRetrievalJob(
            connection,
            build_retrieval_sql(
                entity,
                sources,
                filter_by_created_timestamp=filter_by_created_timestamp,
                ctes_for=retrieval_ctes,
            ),
            keep_alive=frame,
            feature_columns=tuple(name for r in requests for name in r.output_names),
        )

    def _register_entity(
        self, connection: duckdb.DuckDBPyConnection, frame: EntityFrame
    ) -> EntityRelation:
        name = f"__fs_entity_{next(self._counter)}"
        ts = f"epoch_us(CAST({quote(frame.timestamp_column)} AS TIMESTAMPTZ))"
        if frame.table is not None:
            connection.register(f"{name}_input", frame.table)
            select = f"SELECT *, {ts} AS {ENTITY_TS} FROM {name}_input"
        else:
            files = ", ".join(string_literal(f) for f in frame.parquet_files)
            scan = f"read_parquet([{files}], file_row_number = true)"
            # Input order across several files is the order of the list (sorted paths), then
            # row order.
            position = (
                "file_row_number"
                if len(frame.parquet_files) == 1
                else "row_number() OVER (ORDER BY file_index, file_row_number) - 1"
            )
            select = f"SELECT *, {position} AS {ROW_ID}, {ts} AS {ENTITY_TS} FROM {scan}"
        connection.execute(f"CREATE TEMP VIEW {name} AS {select}")
        bounds = connection.execute(
            f"SELECT min({ENTITY_TS}), max({ENTITY_TS}) FROM {name}"
        ).fetchone()
        low, high = bounds if bounds is not None else (None, None)
        return EntityRelation(relation=name, columns=frame.columns, min_ts_us=low, max_ts_us=high)

    def _view_source(
        self, connection: duckdb.DuckDBPyConnection, request: FeatureRequest
    ) -> ViewSource:
        files = tuple(self._data.view_files(request.view))
        listed = ", ".join(string_literal(f) for f in files)
        union = ", union_by_name = true" if len(files) > 1 else ""
        described = connection.execute(
            f"DESCRIBE SELECT * FROM read_parquet([{listed}]{union})"
        ).fetchall()
        return ViewSource(
            request=request, files=files, column_types={row[0]: row[1] for row in described}
        )

    def _with_density(
        self, connection: duckdb.DuckDBPyConnection, source: ViewSource, entity: EntityRelation
    ) -> ViewSource:
        """A view without TTL gets the near window of its join plan (see :func:`plan_of`),
        measured on its source unless :attr:`near_window_us` fixes it."""
        view = source.request.view
        if view.ttl is not None or view.is_aggregated:  # no near/far plan for either
            return source
        window = self.near_window_us
        if window is None:
            [(rows, keys, span)] = connection.execute(
                density_sql(source, entity.max_ts_us)
            ).fetchall()
            window = near_window_us(int(rows), int(keys), int(span))
        return replace(source, near_window_us=window)

    def latest_per_entity(
        self, view: FeatureView, window: LatestWindow, *, batch_rows: int
    ) -> DuckDBLatestRows:
        """The latest row per key in ``window``; see :mod:`featurestore.offline.duckdb.latest_sql`.

        The result is computed once into a temporary table (DuckDB spills it to disk past its
        memory limit), counted, then streamed from there in batches of ``batch_rows``.
        """
        refuse_latest_of_aggregated(view)
        validate_view_source(view, self._config.repo_path)
        features = tuple(view.feature_names)
        request = FeatureRequest(view, features, features, not_before_us=window.not_before_us)
        connection = self.connection()
        table = f"__fs_latest_{next(self._counter)}"
        try:
            source = self._view_source(connection, request)
            connection.execute(f"CREATE TEMP TABLE {table} AS {build_latest_sql(source, window)}")
            [counted] = connection.execute(
                f"SELECT count(*), coalesce(sum({CANDIDATES_COLUMN}), 0)::BIGINT, "
                f"max({MAX_CREATED_COLUMN}) FROM {table}"
            ).fetchall()
            reader = connection.sql(
                f"SELECT * EXCLUDE ({CANDIDATES_COLUMN}, {MAX_CREATED_COLUMN}) FROM {table}"
            ).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            connection.close()
            raise RetrievalError(
                f"computing the latest rows of {view.label} failed: {exc}"
            ) from exc
        return DuckDBLatestRows(connection, reader, counted)

    def sample_entity_keys(self, view: FeatureView, sample: int, seed: int) -> pa.Table:
        """Distinct key tuples of the view's source; see :func:`build_key_sample_sql`."""
        if not view.join_keys:  # a global view has one "key": the empty one
            return pa.table({"__fs_rows": pa.nulls(1)}).select([])
        sql = build_key_sample_sql(view, self._data.view_files(view), sample, seed)
        connection = self.connection()
        try:
            table: pa.Table = connection.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise RetrievalError(f"sampling keys of {view.label} failed: {exc}") from exc
        finally:
            connection.close()
        return table

    def count_entity_rows(self, view: FeatureView, key_values: Mapping[str, Any]) -> dict[str, int]:
        """One grouped count over the source's files; keys compare as typed values (cast to
        the declared key type, as the point-in-time join compares them)."""
        files = view.source.files(self._config.repo_path)
        conditions = []
        for key in key_values:
            column = quote(view.source.source_column(key))
            cast = key_sql_type(view.join_key_types.get(key))
            conditions.append(f"{column if cast is None else f'CAST({column} AS {cast})'} = ?")
        listed = ", ".join(string_literal(f) for f in files)
        sql = (
            f"SELECT filename, count(*) FROM read_parquet([{listed}], filename = true, "
            f"union_by_name = true) WHERE {' AND '.join(conditions) or 'true'} GROUP BY filename"
        )
        connection = self.connection()
        try:
            rows = connection.execute(sql, list(key_values.values())).fetchall()
        except duckdb.Error as exc:
            raise RetrievalError(
                f"searching the source of {view.label} for {dict(key_values)} failed: {exc}"
            ) from exc
        finally:
            connection.close()
        return {str(name): int(count) for name, count in sorted(rows)}

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
        """Profile the view's rows in the window; see :mod:`featurestore.offline.duckdb.duckdb_stats`."""
        started = time.perf_counter()
        chosen = tuple(view.feature_names if features is None else features)
        unknown = [f for f in chosen if f not in view.feature_names]
        if unknown:
            raise QualityError(
                f"statistics of {view.label}: no feature {unknown[0]!r}; "
                f"it has {view.feature_names}"
            )
        validate_view_source(view, self._config.repo_path)
        request = FeatureRequest(view, chosen, chosen, not_before_us=not_before_us)
        connection = self.connection()
        try:
            source = self._view_source(connection, request)
            if view.is_aggregated:
                # Its values at each instant of the window (see .agg_instants), kept once.
                table = self._aggregated_values(connection, source, start_us, end_us)
                columns = [StatsColumn(f, view.feature(f).dtype, quote(f)) for f in chosen]
                relation = table_relation_sql(table, columns)
            else:
                columns = [
                    StatsColumn(
                        f, view.feature(f).dtype, view_value_sql(source, i, view.feature(f).dtype)
                    )
                    for i, f in enumerate(chosen)
                ]
                relation = view_relation_sql(source, columns, start_us, end_us)
            profile = profile_relation(
                connection, relation, columns, reference=reference, options=self.profile_options
            )
        except duckdb.Error as exc:
            raise QualityError(f"computing statistics of {view.label} failed: {exc}") from exc
        finally:
            connection.close()
        return replace(profile, seconds=time.perf_counter() - started)

    def file_statistics(
        self,
        path: str,
        columns: Mapping[str, ValueType],
        *,
        reference: Mapping[str, ColumnStats] | None = None,
    ) -> TableProfile:
        """Profile columns of one Parquet file; see :mod:`featurestore.offline.duckdb.duckdb_stats`."""
        started = time.perf_counter()
        connection = self.connection()
        try:
            described = connection.execute(
                f"DESCRIBE SELECT * FROM read_parquet({string_literal(path)})"
            ).fetchall()
            types = {str(row[0]): str(row[1]) for row in described}
            missing = [c for c in columns if c not in types]
            if missing:
                raise QualityError(
                    f"statistics of {path}: no column {missing[0]!r} in the file (it has "
                    f"{sorted(types)}); profile only the columns it holds"
                )
            stats_columns = [
                StatsColumn(name, dtype, file_value_sql(name, dtype, types[name]))
                for name, dtype in columns.items()
            ]
            relation = file_relation_sql(path, stats_columns)
            profile = profile_relation(
                connection,
                relation,
                stats_columns,
                reference=reference,
                options=self.profile_options,
            )
        except duckdb.Error as exc:
            raise QualityError(
                f"computing statistics of {path} failed: {exc}; check that it is a readable "
                "Parquet file"
            ) from exc
        finally:
            connection.close()
        return replace(profile, seconds=time.perf_counter() - started)

    def read_window(
        self,
        view: FeatureView,
        *,
        start_us: int | None,
        end_us: int | None,
        not_before_us: int | None = None,
        batch_rows: int,
    ) -> DuckDBLatestRows:
        """Every row of the window, counted first, then streamed straight from the scan."""
        validate_view_source(view, self._config.repo_path)
        features = tuple(view.feature_names)
        request = FeatureRequest(view, features, features, not_before_us=not_before_us)
        connection = self.connection()
        try:
            source = self._view_source(connection, request)
            if view.is_aggregated:
                # Its values at each instant of the window (see .agg_instants).
                table = self._aggregated_values(connection, source, start_us, end_us)
                [(rows,)] = connection.execute(f"SELECT count(*) FROM {table}").fetchall()
                max_created = None
                rows_sql = f"SELECT * EXCLUDE ({ROW_ID}) FROM {table} ORDER BY {ROW_ID}"
            else:
                [(rows, max_created)] = connection.execute(
                    window_count_sql(source, start_us, end_us)
                ).fetchall()
                rows_sql = window_rows_sql(source, start_us, end_us)
            reader = connection.sql(rows_sql).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            connection.close()
            raise RetrievalError(f"reading the rows of {view.label} failed: {exc}") from exc
        return DuckDBLatestRows(connection, reader, (rows, rows, max_created))

    def _aggregated_values(
        self,
        connection: duckdb.DuckDBPyConnection,
        source: ViewSource,
        start_us: int | None,
        end_us: int | None,
    ) -> str:
        """A temporary table of an aggregated view's requested values at every instant of the
        window (:mod:`.agg_instants`): ``ROW_ID``, the keys, the event time, the features."""
        name = f"__fs_instants_{next(self._counter)}"
        instants = register_instants(connection, source, start_us, end_us, name)
        connection.execute(f"CREATE TEMP TABLE {name}_values AS {values_sql(instants, source)}")
        return f"{name}_values"

    def read_events(
        self,
        view: FeatureView,
        *,
        after_us: int | None,
        end_us: int,
        not_before_us: int | None = None,
        batch_rows: int,
    ) -> DuckDBLatestRows:
        """An aggregated view's events by key (see :mod:`.events_sql`), counted, then streamed
        (DuckDB sorts them, spilling to disk past its memory limit)."""
        validate_view_source(view, self._config.repo_path)
        columns = tuple(c.name for c in view.columns)
        request = FeatureRequest(view, columns, columns, not_before_us=not_before_us)
        connection = self.connection()
        try:
            source = self._view_source(connection, request)
            [counted] = connection.execute(events_count_sql(source, after_us, end_us)).fetchall()
            reader = connection.sql(events_sql(source, after_us, end_us)).to_arrow_reader(
                batch_rows
            )
        except duckdb.Error as exc:
            connection.close()
            raise RetrievalError(f"reading the events of {view.label} failed: {exc}") from exc
        rows = DuckDBLatestRows(connection, reader, (counted[1], counted[0], None))
        rows.durable = self._data.durable_positions(view, source.files)
        return rows

    def close(self) -> None:
        """Close the engine's database; jobs still open keep it alive until they close."""
        self._database.close()


class DuckDBLatestRows(LatestRows):
    """A materialization result held in a temporary DuckDB table, streamed in batches."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        reader: pa.RecordBatchReader,
        counted: tuple[Any, ...],
    ) -> None:
        self._connection = connection
        self._reader = reader
        self.keys = int(counted[0])
        self.rows_read = int(counted[1])
        self.max_created_us = None if counted[2] is None else int(counted[2])

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._reader
        except duckdb.Error as exc:
            raise RetrievalError(f"streaming the latest rows failed: {exc}") from exc

    def close(self) -> None:
        # Closing the connection drops its temporary table.
        self._reader.close()
        self._connection.close()
