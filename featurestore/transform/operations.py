"""The facade's part for on-demand views: finding them by reference, and who may read them.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`).
Their input features are joined or looked up like any requested feature, so the facade's access
check covers them; the on-demand view itself is a resource too (``on_demand_feature_view``).
Write-time views (``write_to_online_store=True``) are computed by :attr:`write_time`, which
every online write tells (:attr:`write_listener`), and looked up from their stored values.
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import FeatureReferenceError, ObjectNotFoundError
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import Target, definition_target, service_targets
from featurestore.governance.guard import PrincipalLike
from featurestore.online.base import WriteListener, WriteListeners
from featurestore.online.lookup import OnlineLookup
from featurestore.references import parse_reference
from featurestore.transform.offline import RetrievalPlan, plan_retrieval
from featurestore.transform.online import OnDemandLookup
from featurestore.transform.write_time import WriteTimeViews
from featurestore.types import ValueType

KIND = "on_demand_feature_view"


def request_types(store: OnDemandOperations, references: Sequence[str]) -> dict[str, ValueType]:
    """The declared type of every request field the on-demand views in ``references`` need
    (for parsing request values typed as text, e.g. by the CLI)."""
    types: dict[str, ValueType] = {}
    for ref in {(r.view, r.version) for r in map(parse_reference, references)}:
        found = store._on_demand_view(*ref)
        if found is not None:
            types.update({f.name: f.dtype for f in found[0].request_fields})
    return types


class OnDemandOperations(FacadeBase):
    """Looks on-demand views up for retrievals and lookups; computes write-time views."""

    _write_time: WriteTimeViews | None = None

    @property
    def write_time(self) -> WriteTimeViews:
        """The write-time on-demand views, computed after writes (opened on first use)."""
        if self._write_time is None:
            self._write_time = WriteTimeViews(
                self.registry, self.project, self.online, listener=self.freshness_log
            )
        return self._write_time

    @property
    def write_listener(self) -> WriteListener:
        """What every online write tells: the freshness log, then the write-time views."""
        return WriteListeners(self.freshness_log, self.write_time)

    def _with_write_time_sources(self, names: Sequence[str] | None) -> Sequence[str] | None:
        """``names`` (views to materialize) with each write-time view replaced by its source
        views, whose writes compute it."""
        if names is None or isinstance(names, str):
            return names
        views = self.write_time.views()
        expanded: list[str] = []
        for name in names:
            found = views.get(name)
            expanded += [view.name for view, _ in found.sources] if found else [name]
        return list(dict.fromkeys(expanded))

    def _request_time_view(
        self, name: str, version: int | None
    ) -> tuple[OnDemandFeatureView, int] | None:
        """:meth:`_on_demand_view` for lookups: None for a write-time view asked unpinned,
        whose stored values the inner lookup reads."""
        found = self._on_demand_view(name, version)
        if found is not None and self.write_time.stored(name, version) is not None:
            return None
        return found

    def _on_demand_view(
        self, name: str, version: int | None
    ) -> tuple[OnDemandFeatureView, int] | None:
        """The on-demand view ``name`` (at ``version``, default current), or None when ``name``
        names no on-demand view."""
        if KIND not in self.registry.kinds_named(self.project, name):
            return None
        try:
            if version is None:
                version = self.registry.current_version(self.project, KIND, name)
            view = self.registry.get(self.project, KIND, name, version)
        except ObjectNotFoundError as exc:
            raise FeatureReferenceError.from_not_found(exc) from None
        assert isinstance(view, OnDemandFeatureView)
        return view, version

    def _retrieval_plan(self, references: Sequence[str], full_feature_names: bool) -> RetrievalPlan:
        """The engine's requests for ``references``; on-demand views' inputs are joined too,
        and the views computed after the join (see :mod:`featurestore.transform.offline`)."""
        return plan_retrieval(
            references,
            self._view_lookup,
            self._on_demand_view,
            full_feature_names=full_feature_names,
        )

    def _view_lookup(self, name: str, version: int | None) -> FeatureView:
        raise NotImplementedError

    def _on_demand_targets(self, views: Sequence[OnDemandFeatureView]) -> list[Target]:
        """The resources an access check covers for these views (their current registration
        decides, as for pinned feature views)."""
        targets = []
        for view in views:
            try:
                current = self.registry.latest(self.project, KIND, view.name)
            except ObjectNotFoundError:
                current = view
            targets.append(definition_target(self.project, current))
        return targets

    def _on_demand_lookup(self, inner: OnlineLookup) -> OnDemandLookup:
        """Online lookups with on-demand views, in front of ``inner``."""
        return OnDemandLookup(
            inner, self.registry, self.project, self._request_time_view, self._authorize_on_demand
        )

    def _authorize_on_demand(
        self,
        views: Sequence[OnDemandFeatureView],
        principal: PrincipalLike,
        service: str | None = None,
    ) -> None:
        guard = self.guard
        if guard.access.enforced:
            targets = self._on_demand_targets(views)
            if service is not None:  # asked through a feature service: it is checked too
                found = self.registry.get(self.project, "feature_service", service)
                assert isinstance(found, FeatureService)
                targets += service_targets(self.project, found)[:1]
            guard.require(guard.principal(principal), "read_online", targets)
