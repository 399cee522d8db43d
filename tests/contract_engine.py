"""What every part of the offline engine contract builds on: the engine under test.

A concrete contract class (see ``tests/offline_contract.py``) sets ``engine_type`` to a row of
:mod:`featurestore.offline.backends`; tests open their engine with :meth:`open_engine`, through
the same table the facade uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, TypeVar

import pytest

from featurestore.config import RepoConfig
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import OfflineEngine

C = TypeVar("C")


class EngineContractBase:
    """The engine under test, by its ``offline_store.type``."""

    __test__ = False
    engine_type: ClassVar[str]

    def open_engine(self, config: RepoConfig) -> OfflineEngine:
        """The engine of this contract over ``config`` (its other offline settings kept)."""
        offline = config.offline_store.model_copy(update={"type": self.engine_type})
        return open_offline_engine(replace(config, offline_store=offline))

    def capable(self, engine: OfflineEngine, capability: type[C]) -> C:
        """``engine`` as ``capability``; the test is skipped for an engine without it."""
        if not isinstance(engine, capability):
            pytest.skip(f"offline engine {self.engine_type!r} lacks {capability.__name__}")
        return engine
