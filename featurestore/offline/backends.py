"""The table of offline engines: which engine a repository's ``offline_store.type`` names.

Each row names the engine class as a ``module:Class`` path, imported only when a store opens
that engine (as the online side loads redis only for a redis store), and the model of the
engine's settings, which imports without the engine's library::

    engine = open_offline_engine(load_config("repo"))   # offline_store: {type: duckdb}

No module outside an engine's package names the engine or its library: the facade asks this
table, and ``featurestore.yaml``'s ``offline_store`` section is validated with the model of the
row its ``type`` names (read when the file is, see :func:`featurestore.config.config_file_model`).
An engine class is built as ``Class(config)`` from the whole :class:`RepoConfig` and reads its
settings from ``config.offline_store``.

Adding an engine is its package (``featurestore/offline/<type>/``: ``settings.py`` with the
model, the engine and a lazy ``__init__.py``), one row here and its contract test subclass.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from featurestore.errors import ConfigError, ExtraNotInstalledError, did_you_mean
from featurestore.offline.base import OfflineEngine
from featurestore.offline.duckdb.settings import DuckDBOfflineStoreConfig
from featurestore.offline.settings import OfflineStoreSettings
from featurestore.offline.spark.settings import SparkOfflineStoreConfig

if TYPE_CHECKING:
    from featurestore.config import RepoConfig

__all__ = [
    "DEFAULT_OFFLINE_ENGINE",
    "OFFLINE_ENGINES",
    "OfflineBackend",
    "default_offline_settings",
    "open_offline_engine",
    "registered_offline_engine",
]


@dataclass(frozen=True)
class OfflineBackend:
    """One row of the table: an engine's type name, its class and the model of its settings.

    ``factory`` is a ``module:Class`` path, imported only by :meth:`load`; ``settings`` is the
    engine's ``offline_store`` model (its ``type`` a ``Literal`` of ``type_name``); ``extra`` is
    the package extra that installs the engine's client library (``None``: always installed).
    """

    type_name: str
    factory: str
    settings: type[OfflineStoreSettings]
    extra: str | None = None

    def load(self) -> Callable[[RepoConfig], OfflineEngine]:
        """The engine class (built as ``Class(config)``), importing its package now."""
        loaded = _import(self.factory, self.extra, self.type_name)
        if not (isinstance(loaded, type) and issubclass(loaded, OfflineEngine)):
            raise ConfigError(
                f"offline engine {self.type_name!r}: {self.factory} is not an OfflineEngine"
            )
        # The abstract base has no constructor signature; every engine takes the RepoConfig.
        return cast("Callable[[RepoConfig], OfflineEngine]", loaded)


#: Every offline engine featurestore knows, by ``offline_store.type``.
OFFLINE_ENGINES: dict[str, OfflineBackend] = {
    "duckdb": OfflineBackend(
        type_name="duckdb",
        factory="featurestore.offline.duckdb:DuckDBEngine",
        settings=DuckDBOfflineStoreConfig,
    ),
    "spark": OfflineBackend(
        type_name="spark",
        factory="featurestore.offline.spark:SparkEngine",
        settings=SparkOfflineStoreConfig,
        extra="spark",
    ),
}
#: The engine of a ``featurestore.yaml`` without ``offline_store`` (or without its ``type``).
DEFAULT_OFFLINE_ENGINE = "duckdb"


def default_offline_settings() -> OfflineStoreSettings:
    """The default engine's settings, every key at its default."""
    return OFFLINE_ENGINES[DEFAULT_OFFLINE_ENGINE].settings(type=DEFAULT_OFFLINE_ENGINE)


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
        # A package's lazy export (see featurestore.offline.lazy) imports the engine's module,
        # and so its client library, here.
        return getattr(module, attribute)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        # Only a missing third-party client is the user's to install; our own bugs propagate.
        if extra is None or missing in {"", "featurestore"}:
            raise
        raise ExtraNotInstalledError(
            f"offline engine {type_name!r} needs {missing}: pip install 'featurestore[{extra}]'"
        ) from None
    except AttributeError as exc:
        if exc.name != attribute:  # raised while importing the engine: a bug to see as it is
            raise
        raise ConfigError(
            f"offline engine {type_name!r}: {module_name} has no {attribute}"
        ) from None
