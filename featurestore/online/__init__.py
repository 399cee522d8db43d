"""Online stores: the latest feature row per entity key, for low-latency lookups.

Two stores implement :class:`OnlineStore`: Redis (production) and SQLite (embedded, no server).
``featurestore.yaml`` picks one::

    online_store: {type: redis, url: redis://localhost:6379/0, key_prefix: "fs:", expiry_grace: 1d}
    online_store: {type: redis, url: redis://127.0.0.1:7000, cluster: true}   # Redis Cluster
    online_store: {type: sqlite, path: data/online.db}

The stores are rows of :data:`featurestore.online.backends.ONLINE_BACKENDS` (type, settings
model, factory); a store's module, and any optional client it needs (Redis is the extra
``featurestore[redis]``), is imported only when that store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestore.online.backends import backend
from featurestore.online.base import (
    CREATED_TS,
    EVENT_TS,
    FOUND,
    Namespace,
    OnlineStore,
    SupportsRowDeletion,
    WriteResult,
)

if TYPE_CHECKING:
    from featurestore.config import RepoConfig

__all__ = [
    "CREATED_TS",
    "EVENT_TS",
    "FOUND",
    "Namespace",
    "OnlineStore",
    "SupportsRowDeletion",
    "WriteResult",
    "online_store_identity",
    "open_online_store",
]


def open_online_store(config: RepoConfig) -> OnlineStore:
    """Open the online store ``config`` names (connections are made lazily, on first use)."""
    online = config.online_store
    return backend(online.type).open(online, config)


def online_store_identity(config: RepoConfig) -> str:
    """The :attr:`OnlineStore.identity` of the store ``config`` names, without opening it (no
    connection, no optional client needed)."""
    return config.online_store.identity(config)
