"""Which online store a configuration names: a stable text without secrets.

Materialization watermarks are recorded per identity (see
:attr:`featurestore.online.OnlineStore.identity`). Computed from the location alone, without
connecting or importing a client, so the registry side can ask for it cheaply::

    sqlite_identity("data/online.db")              # 'sqlite:/abs/repo/data/online.db'
    redis_identity("redis://:pw@cache:6379/2", "fs:")  # 'redis://cache:6379/2 prefix fs:'
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

#: The key prefix of a Redis store whose configuration names none.
DEFAULT_REDIS_PREFIX = "fs:"


def sqlite_identity(path: str | Path) -> str:
    """``sqlite:`` and the resolved path: the same file reached through another relative path
    or a symlink is the same store."""
    return f"sqlite:{Path(path).resolve()}"


def redis_identity(url: str, key_prefix: str) -> str:
    """The server, database and key prefix a Redis URL names, without credentials or options
    that do not change where rows live: ``redis://host:port/db prefix P`` (``rediss`` for TLS is
    the same server, so the same store; a unix socket is ``redis+unix:/path/db prefix P``)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    database = database or (query.get("db") or ["0"])[0]
    if parts.scheme == "unix":
        return f"redis+unix:{parts.path}/{database} prefix {key_prefix}"
    host = (parts.hostname or "localhost").lower()
    return f"redis://{host}:{parts.port or 6379}/{database} prefix {key_prefix}"
