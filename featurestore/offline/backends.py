"""The table of offline engines: which engine a repository's ``offline_store.type`` names.

Each row names the engine class as ``module:Class`` and is imported only when a store opens
that engine (as the online side loads redis only for a redis store), so an engine's own
package, and its client library, stay unimported until used::

    engine = open_offline_engine(load_config("repo"))   # offline_store: {type: duckdb}

No module outside an engine's package names the engine's library; the facade asks this table.
An engine class is built as ``Class(config)`` from the whole :class:`RepoConfig` and reads its
settings from ``config.offline_store`` (whose model the row names in ``config_model``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from featurestore.config import RepoConfig
from featurestore.errors import ConfigError, ExtraNotInstalledError, did_you_mean
from featurestore.offline.base import OfflineEngine

__all__ = [
    "OFFLINE_ENGINES",
    "OfflineBackend",
    "open_offline_engine",
    "registered_offline_engine",
]


@dataclass(frozen=True)
class OfflineBackend:
    """One row of the table: an engine's type name, its class and the model of its settings.

    ``factory`` and ``config_model`` are ``module:Class`` paths, imported only by :meth:`load`
    and :meth:`load_config_model`; ``extra`` is the package extra that installs the engine's
    client library (``None``: always installed).
    """

    type_name: str
    factory: str
    config_model: str
    extra: str | None = None

    def load(self) -> Callable[[RepoConfig], OfflineEngine]:
        """The engine class (built as ``Class(config)``), importing its package now."""
        loaded = _import(self.factory, self.extra, self.type_name)
        if not (isinstance(loaded, type) and issubclass(loaded, OfflineEngine)):
            raise ConfigError(
                f"offline engine {self.type_name!r}: {self.factory} is not an OfflineEngine"
            )
        # The abstract base has no constructor signature; every engine takes the RepoConfig.
        return cast(Callable[[RepoConfig], OfflineEngine], loaded)

    def load_config_model(self) -> type:
        """The class of the engine's ``offline_store`` settings."""
        loaded = _import(self.config_model, self.extra, self.type_name)
        if not isinstance(loaded, type):
            raise ConfigError(
                f"offline engine {self.type_name!r}: {self.config_model} is not a class"
            )
        return loaded


#: Every offline engine featurestore knows, by ``offline_store.type``.
OFFLINE_ENGINES: dict[str, OfflineBackend] = {
    "duckdb": OfflineBackend(
        type_name="duckdb",
        factory="featurestore.offline.duckdb:DuckDBEngine",
        config_model="featurestore.config:OfflineStoreConfig",
    ),
    "spark": OfflineBackend(
        type_name="spark",
        factory="featurestore.offline.spark:SparkEngine",
        config_model="featurestore.config:SparkOfflineStoreConfig",
        extra="spark",
    ),
}


def open_offline_engine(config: RepoConfig) -> OfflineEngine:
    """Build the engine ``config.offline_store.type`` names, loading its package now."""
    kind = config.offline_store.type
    backend = OFFLINE_ENGINES.get(kind)
    if backend is None:
        known = ", ".join(sorted(OFFLINE_ENGINES))
        raise ConfigError(
            f"offline_store type {kind!r} is not a known offline engine "
            f"(known: {known}){did_you_mean(kind, OFFLINE_ENGINES)}"
        )
    return backend.load()(config)


@contextmanager
def registered_offline_engine(backend: OfflineBackend) -> Iterator[OfflineBackend]:
    """Add ``backend`` to the table for the duration of a ``with`` block (tests, plugins
    trying an engine out); a type name already in the table is an error."""
    if backend.type_name in OFFLINE_ENGINES:
        raise ConfigError(f"offline engine {backend.type_name!r} is already in the table")
    OFFLINE_ENGINES[backend.type_name] = backend
    try:
        yield backend
    finally:
        del OFFLINE_ENGINES[backend.type_name]


def _import(path: str, extra: str | None, type_name: str) -> object:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        # Only a missing third-party client is the user's to install; our own bugs propagate.
        if extra is None or missing in {"", "featurestore"}:
            raise
        raise ExtraNotInstalledError(
            f"offline engine {type_name!r} needs {missing}: pip install 'featurestore[{extra}]'"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(
            f"offline engine {type_name!r}: {module_name} has no {attribute}"
        ) from None
