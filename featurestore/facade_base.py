"""What the facade's operation mixins rely on: the parts :class:`~featurestore.FeatureStore`
opens (registry, stores, guard, lineage, retention).

The facade is one class, :class:`~featurestore.FeatureStore`; groups of its operations live in
their own modules as mixins (:mod:`featurestore.catalog`,
:mod:`featurestore.governance.operations`, :mod:`featurestore.quality.operations`) so that no file grows past what a reader can hold. Each
mixin derives from :class:`FacadeBase`, whose properties the facade overrides.
"""

from __future__ import annotations

from featurestore.config import RepoConfig
from featurestore.governance.access import Principal
from featurestore.governance.guard import Guard, PrincipalLike
from featurestore.governance.lineage_hooks import LineageHooks
from featurestore.governance.retention import RetentionRules
from featurestore.offline.base import OfflineEngine
from featurestore.online import OnlineStore
from featurestore.online.base import WriteListener
from featurestore.online.freshness import FreshnessLog
from featurestore.push import Pusher
from featurestore.push.online_write import WriteValidation
from featurestore.push.pusher import PushValidation
from featurestore.registry import Registry


class FacadeBase:
    """The parts of the facade its mixins use; :class:`~featurestore.FeatureStore` provides
    each one (these raise only if a mixin is used on its own)."""

    config: RepoConfig

    @property
    def project(self) -> str:
        raise NotImplementedError

    @property
    def registry(self) -> Registry:
        raise NotImplementedError

    @property
    def guard(self) -> Guard:
        raise NotImplementedError

    @property
    def principal(self) -> Principal:
        raise NotImplementedError

    @property
    def offline(self) -> OfflineEngine:
        raise NotImplementedError

    @property
    def online(self) -> OnlineStore:
        raise NotImplementedError

    @property
    def lineage(self) -> LineageHooks:
        raise NotImplementedError

    @property
    def retention(self) -> RetentionRules:
        raise NotImplementedError

    def _flush_held_records(self) -> None:
        """Write what the facade holds in memory for the registry (the quality layer's batched
        push validations), so that a run over the registry (erasure) sees it; nothing here."""

    @property
    def pusher(self) -> Pusher:
        raise NotImplementedError

    @property
    def freshness_log(self) -> FreshnessLog:
        raise NotImplementedError

    @property
    def write_listener(self) -> WriteListener:
        """What every online write tells once durable (freshness, write-time views)."""
        raise NotImplementedError

    def _write_validation(self, principal: PrincipalLike) -> WriteValidation:
        raise NotImplementedError

    def _push_validation(self, principal: PrincipalLike) -> PushValidation:
        raise NotImplementedError
