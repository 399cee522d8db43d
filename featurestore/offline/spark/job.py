"""The Spark retrieval job: the training frame as a Spark plan, run when a format is asked for."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurestore.errors import RetrievalError
from featurestore.offline.base import RetrievalJob, training_frame_to_pandas
from featurestore.offline.entity_frame import ROW_ID
from featurestore.offline.spark.entity import SparkEntity, spark_safe

if TYPE_CHECKING:
    import pandas as pd


class SparkRetrievalJob(RetrievalJob):
    """A training frame: ``features`` (:data:`ROW_ID` and the feature columns, one row per
    entity row) joined back to the entity frame ``entity``.

    Each ``to_*`` call runs the plan again. With an in-memory entity frame only the feature
    columns are collected and set next to the input's own columns, in input order; with a Spark
    entity frame the whole result is a Spark DataFrame (:meth:`to_spark`), in its input order.
    """

    def __init__(
        self, entity: SparkEntity, features: DataFrame, feature_columns: tuple[str, ...]
    ) -> None:
        self._entity = entity
        self._features = features
        self._feature_columns = feature_columns

    def to_spark(self) -> DataFrame:
        """The result as a Spark DataFrame: entity columns, then features, in input order."""
        entity = self._entity.frame
        if entity is None:
            table = self._entity.table
            assert table is not None
            safe = pa.table({name: spark_safe(table.column(name)) for name in table.schema.names})
            entity = self._features.sparkSession.createDataFrame(safe)
        joined = entity.join(self._features, ROW_ID, "left").orderBy(F.col(ROW_ID))
        return joined.drop(ROW_ID)

    def to_arrow(self) -> pa.Table:
        """The result as a pyarrow Table, in entity-frame order."""
        try:
            if self._entity.table is None:
                return self.to_spark().toArrow()
            features = self._features.toArrow()
        except PySparkException as exc:
            raise RetrievalError(f"point-in-time retrieval failed on Spark: {exc}") from exc
        table = self._entity.table
        if features.num_rows != table.num_rows:  # every entity row comes back exactly once
            raise RetrievalError(
                f"point-in-time retrieval on Spark returned {features.num_rows} rows for "
                f"{table.num_rows} entity rows"
            )
        features = features.take(pc.sort_indices(features.column(ROW_ID)))
        result = table.drop_columns([ROW_ID])
        for name in self._feature_columns:
            result = result.append_column(features.schema.field(name), features.column(name))
        return result

    def to_pandas(self) -> pd.DataFrame:
        """The result as pandas, in entity-frame order; integer and Bool features in pandas'
        nullable dtypes, as on every engine."""
        return training_frame_to_pandas(self.to_arrow(), self._feature_columns)

    def to_polars(self) -> pl.DataFrame:
        """The result as a polars DataFrame, in entity-frame order."""
        return pl.DataFrame(self.to_arrow())

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the result to one Parquet file at ``path`` (collected on the driver; write a
        large result from :meth:`to_spark` with Spark's own writer instead)."""
        try:
            pq.write_table(self.to_arrow(), os.fspath(path))
        except OSError as exc:
            raise RetrievalError(
                f"writing the training frame to {os.fspath(path)} failed: {exc}"
            ) from exc

    def close(self) -> None:
        """Release the persisted copy of a Spark entity frame."""
        self._entity.release()
