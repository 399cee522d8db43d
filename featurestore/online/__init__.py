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
from featurestore.online.sqlite_store import SQLiteOnlineStore

__all__ = [
    "CREATED_TS",
    "EVENT_TS",
    "FOUND",
    "Namespace",
    "OnlineStore",
    "SupportsRowDeletion",
    "WriteResult",
    "open_online_store",
]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def open_online_store(config: RepoConfig) -> OnlineStore:
    """Open the online store ``config`` names (connections are made lazily, on first use)."""
    online = config.online_store
    if online.type == "sqlite":
        path = config.resolve(str(online.options.get("path", "data/online.db")))
        assert path is not None  # resolve() returns None only for None
        return SQLiteOnlineStore(path, expiry_grace=online.expiry_grace)
    if online.type == "redis":
        return _open_redis(online)
    raise OnlineStoreError(
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
    prefix = online.options.get("key_prefix")
    kind = RedisClusterOnlineStore if online.options.get("cluster") else RedisOnlineStore
    return kind(
        str(online.options.get("url", DEFAULT_REDIS_URL)),
        key_prefix=RedisOnlineStore.DEFAULT_PREFIX if prefix is None else str(prefix),
        expiry_grace=online.expiry_grace,
        replica_acks=int(online.options.get("replica_acks", 0)),
    )
