"""The engine's SparkSession and the Spark expressions every query shares (types, epoch µs).

Spark allows one SparkContext per process, so the engine reuses a session that is already running
(a notebook's, a test module's) and starts one from ``offline_store.master`` / ``conf`` otherwise;
only a session it started is stopped when the engine closes. Either way the session computes in
UTC (``spark.sql.session.timeZone``) and reads nanosecond Parquet timestamps, which Spark cannot
represent, as integers the engine converts (``spark.sql.legacy.parquet.nanosAsLong``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from pyspark import SparkContext
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    IntegralType,
    LongType,
    TimestampNTZType,
    TimestampType,
)

from featurestore.errors import RetrievalError
from featurestore.types import Array, UnixTimestamp, ValueType

#: Settings the engine needs in every session it uses (set at run time on a reused session).
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
#: Defaults for a session the engine starts; ``offline_store.conf`` overrides them.
START_DEFAULTS = {"spark.ui.showConsoleProgress": "false"}

_SPARK_TYPES = {
    "Int32": "int",
    "Int64": "bigint",
    "Float32": "float",
    "Float64": "double",
    "String": "string",
    "Bool": "boolean",
    "Bytes": "binary",
    "UnixTimestamp": "timestamp",
}


class SessionHolder:
    """One SparkSession per engine: created on first use, reused, stopped by :meth:`stop` if the
    engine started it."""

    def __init__(self, master: str, conf: Mapping[str, str]) -> None:
        self.master = master
        self.conf = dict(conf)
        self._session: SparkSession | None = None
        self._owned = False
        self._lock = threading.Lock()

    def get(self) -> SparkSession:
        with self._lock:
            if self._session is None:
                self._session = self._open()
            return self._session

    def _open(self) -> SparkSession:
        running = SparkContext._active_spark_context is not None
        builder = SparkSession.builder.appName("featurestore")
        if not running:
            builder = builder.master(self.master)
            for key, value in {**START_DEFAULTS, **self.conf, **SESSION_SETTINGS}.items():
                builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # Py4J and JVM start-up errors have no common base class
            raise RetrievalError(
                f"starting Spark (master {self.master!r}) failed: {exc}; check that Java 17 is "
                "installed and the master is reachable"
            ) from exc
        for key, value in SESSION_SETTINGS.items():
            session.conf.set(key, value)
        self._owned = not running
        return session

    def stop(self) -> None:
        with self._lock:
            if self._session is not None and self._owned:
                self._session.stop()
            self._session = None


def spark_type(dtype: ValueType) -> str:
    """The Spark SQL type of ``dtype``, e.g. ``bigint`` or ``array<string>``."""
    if isinstance(dtype, Array):
        return f"array<{spark_type(dtype.element)}>"
    return _SPARK_TYPES[dtype.name]


def key_type(dtype: ValueType | None) -> str | None:
    """The type both sides of a join key are cast to (integers widened, as DuckDB does)."""
    if dtype is None:
        return None
    return "bigint" if dtype.name in {"Int32", "Int64"} else spark_type(dtype)


def quoted(name: str) -> str:
    """A column name for Spark SQL expressions, in backticks."""
    return "`" + name.replace("`", "``") + "`"


def epoch_micros(name: str, dtype: DataType, owner: str) -> Column:
    """The column ``name`` as epoch µs (UTC); naive timestamps are UTC wall time, integers are
    the nanoseconds of a Parquet ``TIMESTAMP(NANOS)`` (see the module's docstring)."""
    column = F.col(quoted(name))
    if isinstance(dtype, TimestampType):
        return F.unix_micros(column)
    if isinstance(dtype, TimestampNTZType | DateType):
        return F.unix_micros(column.cast("timestamp"))
    if isinstance(dtype, LongType):
        return F.expr(f"{quoted(name)} div 1000")
    raise RetrievalError(f"{owner}: column {name!r} is {dtype.simpleString()}, not a timestamp")


def convert_value(value: Column, dtype: ValueType, source: DataType | None) -> Column:
    """A winning value cast to its declared type (integer sources of a timestamp feature hold
    epoch seconds, as on DuckDB)."""
    if dtype == UnixTimestamp and isinstance(source, IntegralType):
        return F.timestamp_seconds(value)
    return value.cast(spark_type(dtype))
