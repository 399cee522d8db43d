"""Settings of the Redis online store, importable without the redis client.

online_store: {type: redis, url: redis://localhost:6379/0, key_prefix: "fs:", expiry_grace: 1d}
online_store: {type: redis, url: redis://127.0.0.1:7000, cluster: true}   # Redis Cluster
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field

from featurestore.online.backends import OnlineStoreSettings
from featurestore.online.identity import DEFAULT_REDIS_PREFIX, redis_identity

if TYPE_CHECKING:
    from featurestore.config import RepoConfig

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def _url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"must be a redis://, rediss:// or unix:// URL such as {DEFAULT_REDIS_URL}, "
            f"got {value!r}"
        )
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return float(value)


def _acks(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, not {value!r}")
    return value


class RedisOnlineStoreConfig(OnlineStoreSettings):
    """``url`` of the server (a secret may sit in it: ``redis://:PASSWORD@host``), ``key_prefix``
    of every key, ``cluster: true`` for a Redis Cluster (``url`` is any node) and
    ``replica_acks``: how many replicas must confirm each write (``WAIT``; 0: none) and
    ``timeout``: seconds a request may wait for the server before it counts as unreachable."""

    example = "{type: redis, url: redis://localhost:6379/0}"
    type: Literal["redis"] = "redis"
    url: Annotated[str, BeforeValidator(_url)] = DEFAULT_REDIS_URL
    key_prefix: str = DEFAULT_REDIS_PREFIX
    cluster: Annotated[bool, BeforeValidator(_flag)] = False
    replica_acks: Annotated[int, BeforeValidator(_acks), Field(ge=0)] = 0
    timeout: Annotated[float, BeforeValidator(_seconds)] = 10.0

    def identity(self, config: RepoConfig) -> str:
        """The server, database and key prefix (no password)."""
        return redis_identity(self.url, self.key_prefix)
