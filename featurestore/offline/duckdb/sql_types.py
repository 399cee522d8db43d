"""DuckDB's SQL type of each featurestore value type (values are cast to it when read)."""

from __future__ import annotations

from featurestore.types import Array, ValueType

_SQL_TYPES = {
    "Int32": "INTEGER",
    "Int64": "BIGINT",
    "Float32": "FLOAT",
    "Float64": "DOUBLE",
    "String": "VARCHAR",
    "Bool": "BOOLEAN",
    "Bytes": "BLOB",
    "UnixTimestamp": "TIMESTAMPTZ",
}


def sql_type(dtype: ValueType) -> str:
    """The DuckDB SQL type of ``dtype``, e.g. ``BIGINT`` or ``VARCHAR[]`` for ``Array(String)``."""
    if isinstance(dtype, Array):
        return f"{sql_type(dtype.element)}[]"
    return _SQL_TYPES[dtype.name]
