"""The table of online stores: type name, settings model and a factory imported on first use.

``open_online_store`` and the ``online_store`` section of ``featurestore.yaml`` both read this
table, so adding a store means adding a row (and its module); nothing else names a backend.
A factory is a ``"module:function"`` string: the module (and the optional client it needs) is
imported only when a store of that type is opened, so ``import featurestore`` works without it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from featurestore.config_types import Duration, Section
from featurestore.errors import OnlineStoreError

if TYPE_CHECKING:
    from featurestore.config import RepoConfig
    from featurestore.online.base import OnlineStore


class OnlineStoreSettings(Section):
    """What every online store's settings have; each backend's model adds its own keys.

    ``expiry_grace`` is how long a row stays stored after its view's TTL has passed (default one
    day), so lookups can still report it as outside its max age before it disappears.
    """

    example = "{type: sqlite, path: data/online.db}"
    type: str
    expiry_grace: Duration = timedelta(days=1)

    def identity(self, config: RepoConfig) -> str:
        """Where this store keeps its rows (:attr:`OnlineStore.identity`), without opening it."""
        raise NotImplementedError


class _Factory(Protocol):
    def __call__(self, settings: OnlineStoreSettings, config: RepoConfig) -> OnlineStore: ...


@dataclass(frozen=True)
class OnlineBackend:
    """One row of the table: ``name`` is the ``type`` in ``featurestore.yaml``; ``factory`` is ``"module:function"``; ``extra`` is the pip extra
    holding the optional client its module imports (``None``: no optional client)."""

    name: str
    settings: type[OnlineStoreSettings]
    factory: str
    extra: str | None = None

    def open(self, settings: OnlineStoreSettings, config: RepoConfig) -> OnlineStore:
        """Import the backend's module and open the store ``settings`` describe."""
        module_name, function = self.factory.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            client = (exc.name or "").split(".")[0]
            if self.extra is None or client in {"", "featurestore"}:
                raise
            raise OnlineStoreError(
                f"online_store type {self.name} needs the {client} client: "
                f"pip install 'featurestore[{self.extra}]'"
            ) from None
        factory: _Factory = getattr(module, function)
        return factory(settings, config)


def _backends() -> dict[str, OnlineBackend]:
    # The settings models live in the backends' own modules (importable without any client).
    from featurestore.online.redis_settings import RedisOnlineStoreConfig
    from featurestore.online.sqlite_settings import SQLiteOnlineStoreConfig

    rows = [
        OnlineBackend(
            "sqlite", SQLiteOnlineStoreConfig, "featurestore.online.sqlite_store:open_store"
        ),
        OnlineBackend(
            "redis", RedisOnlineStoreConfig, "featurestore.online.redis_store:open_store", "redis"
        ),
    ]
    return {row.name: row for row in rows}


#: Every online store, by its ``type`` in ``featurestore.yaml``.
ONLINE_BACKENDS = _backends()
#: The online store a ``featurestore.yaml`` without ``online_store`` (or without its ``type``)
#: gets: the embedded one, so the quickstart needs no server.
DEFAULT_ONLINE_STORE = "sqlite"


def default_online_settings() -> OnlineStoreSettings:
    """The default online store's settings, every key at its default."""
    return ONLINE_BACKENDS[DEFAULT_ONLINE_STORE].settings(type=DEFAULT_ONLINE_STORE)


def backend(online_type: str) -> OnlineBackend:
    """The table row of ``online_type`` (an error naming the supported types otherwise)."""
    row = ONLINE_BACKENDS.get(online_type)
    if row is None:
        raise OnlineStoreError(
            f"online store type {online_type!r} is not supported; use "
            + " or ".join(ONLINE_BACKENDS)
        )
    return row
