"""The DuckDB retrieval job: one point-in-time query, run when a result format is asked for."""

from __future__ import annotations

import os
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa

from featurestore.errors import RetrievalError
from featurestore.offline.base import RetrievalJob, training_frame_to_pandas
from featurestore.offline.duckdb.pit_sql import string_literal


class DuckDBRetrievalJob(RetrievalJob):
    """A training frame defined by ``sql`` on a DuckDB connection of its own.

    Each ``to_*`` call runs the query again; ``to_parquet`` streams it to disk with DuckDB's
    ``COPY`` so the result never has to fit in memory. Rows come back in entity-frame order.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        sql: str,
        keep_alive: Any = None,
        feature_columns: tuple[str, ...] = (),
    ) -> None:
        self._connection = connection
        self._sql = sql
        self._feature_columns = feature_columns
        # DuckDB scans registered Arrow data in place; it must outlive the job.
        self._keep_alive = keep_alive

    @property
    def sql(self) -> str:
        """The query this job runs (for debugging and ``EXPLAIN``)."""
        return self._sql

    def to_arrow(self) -> pa.Table:
        """The result as a pyarrow Table, in entity-frame order."""
        try:
            table: pa.Table = self._connection.sql(self._sql).to_arrow_table()
        except duckdb.Error as exc:
            raise RetrievalError(f"point-in-time retrieval failed: {exc}") from exc
        return table

    def to_batches(self, rows: int) -> pa.RecordBatchReader:
        """The result streamed from DuckDB in batches of at most ``rows`` rows."""
        try:
            reader: pa.RecordBatchReader = self._connection.sql(self._sql).to_arrow_reader(rows)
        except duckdb.Error as exc:
            raise RetrievalError(f"point-in-time retrieval failed: {exc}") from exc
        return reader

    def to_pandas(self) -> pd.DataFrame:
        """The result as a pandas DataFrame, in entity-frame order.

        Integer and Bool features use pandas' nullable dtypes (``Int64``, ``boolean``...), so a
        missing value is ``<NA>`` and the column keeps its declared type instead of turning into
        float64; entity-frame columns come back as they went in.
        """
        return training_frame_to_pandas(self.to_arrow(), self._feature_columns)

    def to_polars(self) -> pl.DataFrame:
        """The result as a polars DataFrame, in entity-frame order."""
        return pl.DataFrame(self.to_arrow())

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Stream the result to a Parquet file at ``path`` without holding it all in memory."""
        target = string_literal(os.fspath(path))
        try:
            self._connection.execute(f"COPY ({self._sql}) TO {target} (FORMAT parquet)")
        except duckdb.Error as exc:
            raise RetrievalError(
                f"writing the training frame to {os.fspath(path)} failed: {exc}"
            ) from exc

    def close(self) -> None:
        """Release the job's DuckDB connection."""
        self._connection.close()
