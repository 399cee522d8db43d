"""Settings of the embedded SQLite online store (``online_store: {type: sqlite, path: ...}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from featurestore.config_types import FilePath
from featurestore.online.backends import OnlineStoreSettings
from featurestore.online.identity import sqlite_identity

if TYPE_CHECKING:
    from pathlib import Path

    from featurestore.config import RepoConfig


class SQLiteOnlineStoreConfig(OnlineStoreSettings):
    """``path`` is the database file, relative to the repository unless absolute."""

    type: Literal["sqlite"] = "sqlite"
    path: FilePath = "data/online.db"

    def file(self, config: RepoConfig) -> Path:
        """The database file, resolved against the repository."""
        path = config.resolve(self.path)
        assert path is not None  # resolve() returns None only for None
        return path

    def identity(self, config: RepoConfig) -> str:
        """``sqlite:`` and the resolved database file."""
        return sqlite_identity(self.file(config))
