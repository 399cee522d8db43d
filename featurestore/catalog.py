"""The facade's registry browsing: get, list, describe and history, each behind ``describe``.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`), so
the SDK, the CLI (``list``, ``describe``, ``history``) and the REST service's ``/v1`` routes show
a principal the same objects: those it may ``describe``. A single object it may not describe is
refused (and the refusal audited); a list leaves such objects out.

    store.list_feature_views()                          # what the store's principal may describe
    store.get_definition("feature_view", "driver_stats", version=1)
    store.history("driver_stats", principal="bob")
"""

from __future__ import annotations

from featurestore.definitions.base import Definition
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import Target, definition_target
from featurestore.governance.guard import PrincipalLike
from featurestore.registry import HistoryEntry


class CatalogOperations(FacadeBase):
    """Reading definitions from the registry, filtered by the caller's ``describe`` rights."""

    def get_definition(
        self,
        kind: str,
        name: str,
        version: int | None = None,
        *,
        principal: PrincipalLike = None,
    ) -> Definition:
        """The object of ``kind`` called ``name``, current or at ``version``; needs
        ``describe`` on it as its current metadata stands (a policy: on the project)."""
        obj = self.registry.get(self.project, kind, name, version)
        self._require_describe(obj, principal)
        return obj

    def get_entity(self, name: str, *, principal: PrincipalLike = None) -> Entity:
        entity = self.get_definition("entity", name, principal=principal)
        assert isinstance(entity, Entity)
        return entity

    def get_feature_view(
        self, name: str, version: int | None = None, *, principal: PrincipalLike = None
    ) -> FeatureView:
        """The view's current definition, or the one of ``version``."""
        view = self.get_definition("feature_view", name, version, principal=principal)
        assert isinstance(view, FeatureView)
        return view

    def get_on_demand_feature_view(
        self, name: str, version: int | None = None, *, principal: PrincipalLike = None
    ) -> OnDemandFeatureView:
        """The on-demand view's current definition (its code included), or that of
        ``version``; needs ``describe`` on it."""
        view = self.get_definition("on_demand_feature_view", name, version, principal=principal)
        assert isinstance(view, OnDemandFeatureView)
        return view

    def get_feature_service(self, name: str, *, principal: PrincipalLike = None) -> FeatureService:
        service = self.get_definition("feature_service", name, principal=principal)
        assert isinstance(service, FeatureService)
        return service

    def _require_describe(self, obj: Definition, principal: PrincipalLike) -> None:
        guard = self.guard
        guard.require(guard.principal(principal), "describe", [self._governed_target(obj)])

    def _governed_target(self, obj: Definition) -> Target:
        # Whatever version is read, the current registration's metadata decides.
        return definition_target(self.project, self.guard.governing(obj))

    def _feature_view(self, name: str, version: int | None = None) -> FeatureView:
        view = self.registry.get(self.project, "feature_view", name, version)
        assert isinstance(view, FeatureView)
        return view

    def _feature_service(self, name: str) -> FeatureService:
        service = self.registry.get(self.project, "feature_service", name)
        assert isinstance(service, FeatureService)
        return service

    def list_entities(self, *, principal: PrincipalLike = None) -> list[Entity]:
        """Registered entities the principal may describe."""
        return [o for o in self._describable("entity", principal) if isinstance(o, Entity)]

    def list_feature_views(self, *, principal: PrincipalLike = None) -> list[FeatureView]:
        """Registered feature views the principal may describe."""
        listed = self._describable("feature_view", principal)
        return [o for o in listed if isinstance(o, FeatureView)]

    def list_feature_services(self, *, principal: PrincipalLike = None) -> list[FeatureService]:
        """Registered feature services the principal may describe."""
        listed = self._describable("feature_service", principal)
        return [o for o in listed if isinstance(o, FeatureService)]

    def list_on_demand_feature_views(
        self, *, principal: PrincipalLike = None
    ) -> list[OnDemandFeatureView]:
        """Registered on-demand feature views the principal may describe."""
        listed = self._describable("on_demand_feature_view", principal)
        return [o for o in listed if isinstance(o, OnDemandFeatureView)]

    def _describable(self, kind: str, principal: PrincipalLike) -> list[Definition]:
        guard = self.guard
        who = guard.principal(principal)
        return [
            o
            for o in self.registry.list(self.project, kind)
            if guard.allowed(who, "describe", [definition_target(self.project, o)])
        ]

    def history(
        self, name: str, kind: str | None = None, *, principal: PrincipalLike = None
    ) -> list[HistoryEntry]:
        """Every version and metadata change of the object(s) called ``name``, oldest first.

        Objects the principal may not describe are left out; when that leaves nothing of what
        exists, the request is refused (AccessDeniedError, audited) rather than answered empty.
        """
        entries = self.registry.history(self.project, name, kind)
        guard = self.guard
        who = guard.principal(principal)
        targets = {
            k: self._governed_target(self.registry.latest(self.project, k, name))
            for k in dict.fromkeys(e.kind for e in entries)
        }
        shown = {k for k, target in targets.items() if guard.allowed(who, "describe", [target])}
        if targets and not shown:
            guard.require(who, "describe", list(targets.values()))
        return [e for e in entries if e.kind in shown]

    def history_page(
        self,
        name: str,
        kind: str,
        *,
        offset: int = 0,
        limit: int = 20,
        principal: PrincipalLike = None,
    ) -> tuple[list[HistoryEntry], int]:
        """A page of :meth:`history` for the ``kind`` object ``name``, newest first, and the
        number of entries in all; needs ``describe`` on it (ObjectNotFoundError if it never
        existed). Reads one page, however long the history is."""
        latest = self.registry.latest(self.project, kind, name)  # what governs every version
        guard = self.guard
        guard.require(
            guard.principal(principal), "describe", [definition_target(self.project, latest)]
        )
        return self.registry.history_page(self.project, name, kind, offset=offset, limit=limit)
