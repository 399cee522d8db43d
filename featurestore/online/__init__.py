"""Online stores: the latest feature row per entity key, for low-latency lookups.

Two stores implement :class:`OnlineStore`: Redis (production) and SQLite (embedded, no server).
``featurestore.yaml`` picks one::

    online_store: {type: redis, url: redis://localhost:6379/0, key_prefix: "fs:", expiry_grace: 1d}
    online_store: {type: redis, url: redis://127.0.0.1:7000, cluster: true}   # Redis Cluster
    online_store: {type: sqlite, path: data/online.db}

Redis is an optional extra (``pip install 'featurestore[redis]'``): its module is imported only
when a Redis store is opened, so ``import featurestore`` works without it.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.config import OnlineStoreConfig, RepoConfig
from featurestore.errors import OnlineStoreError
from featurestore.online.base import (
    CREATED_TS,
    EVENT_TS,
    FOUND,
    Namespace,
    OnlineStore,
    SupportsRowDeletion,
    WriteResult,
)
from featurestore.online.identity import DEFAULT_REDIS_PREFIX, redis_identity, sqlite_identity
from featurestore.online.sqlite_store import SQLiteOnlineStore

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

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def open_online_store(config: RepoConfig) -> OnlineStore:
    """Open the online store ``config`` names (connections are made lazily, on first use)."""
    online = config.online_store
    if online.type == "sqlite":
        return SQLiteOnlineStore(_sqlite_path(config), expiry_grace=online.expiry_grace)
    if online.type == "redis":
        return _open_redis(online)
    raise _unsupported(online)


def online_store_identity(config: RepoConfig) -> str:
    """The :attr:`OnlineStore.identity` of the store ``config`` names, without opening it (no
    connection, no optional client needed)."""
    online = config.online_store
    if online.type == "sqlite":
        return sqlite_identity(_sqlite_path(config))
    if online.type == "redis":
        return redis_identity(_redis_url(online), _redis_prefix(online))
    raise _unsupported(online)


def _sqlite_path(config: RepoConfig) -> Path:
    path = config.resolve(str(config.online_store.options.get("path", "data/online.db")))
    assert path is not None  # resolve() returns None only for None
    return path


def _redis_url(online: OnlineStoreConfig) -> str:
    return str(online.options.get("url", DEFAULT_REDIS_URL))


def _redis_prefix(online: OnlineStoreConfig) -> str:
    prefix = online.options.get("key_prefix")
    return DEFAULT_REDIS_PREFIX if prefix is None else str(prefix)


def _unsupported(online: OnlineStoreConfig) -> OnlineStoreError:
    return OnlineStoreError(
        f"online store type {online.type!r} is not supported; use sqlite or redis"
    )


def _open_redis(online: OnlineStoreConfig) -> OnlineStore:
    # Imported here, not at the top: redis is an optional extra that only this store needs.
    try:
        from featurestore.online.redis_cluster import RedisClusterOnlineStore
        from featurestore.online.redis_store import RedisOnlineStore
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in {"redis", "hiredis"}:
            raise
        raise OnlineStoreError(
            "online_store type redis needs the redis client: pip install 'featurestore[redis]'"
        ) from None
    kind = RedisClusterOnlineStore if online.options.get("cluster") else RedisOnlineStore
    return kind(
        _redis_url(online),
        key_prefix=_redis_prefix(online),
        expiry_grace=online.expiry_grace,
        replica_acks=int(online.options.get("replica_acks", 0)),
    )
