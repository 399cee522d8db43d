"""Settings of the DuckDB offline engine, importable without duckdb.

offline_store: {type: duckdb, memory_limit: 2GB, temp_directory: data/duckdb_tmp, threads: 2}
"""

from __future__ import annotations

from typing import Literal

from featurestore.config_types import PositiveInt, Size
from featurestore.offline.settings import OfflineStoreSettings

__all__ = ["DuckDBOfflineStoreConfig"]


class DuckDBOfflineStoreConfig(OfflineStoreSettings):
    """Settings of the DuckDB offline engine (``offline_store: {type: duckdb, ...}``).

    ``memory_limit`` and ``threads`` are DuckDB's settings (``None``: DuckDB's own); near its
    memory limit DuckDB spills to ``temp_directory``. ``data_path`` is the folder of data the
    store itself owns (rows pushed to the offline store), relative to the repository unless
    absolute; no feature view's source may read from it.
    """

    example = "{type: duckdb}"
    type: Literal["duckdb"] = "duckdb"
    memory_limit: Size | None = None
    threads: PositiveInt | None = None
