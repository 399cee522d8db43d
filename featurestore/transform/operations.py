"""The facade's part for on-demand views: finding them by reference, and who may read them.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`).
Their input features are joined or looked up like any requested feature, so the facade's access
check covers them; the on-demand view itself is a resource too (``on_demand_feature_view``).
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import FeatureReferenceError, ObjectNotFoundError
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import Target, definition_target
from featurestore.governance.guard import PrincipalLike
from featurestore.online.lookup import OnlineLookup
from featurestore.references import parse_reference
from featurestore.transform.offline import RetrievalPlan, plan_retrieval
from featurestore.transform.online import OnDemandLookup
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
    """Looks on-demand views up for retrievals and lookups."""

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
            inner, self.registry, self.project, self._on_demand_view, self._authorize_on_demand
        )

    def _authorize_on_demand(
        self, views: Sequence[OnDemandFeatureView], principal: PrincipalLike
    ) -> None:
        guard = self.guard
        if guard.access.enforced:
            guard.require(guard.principal(principal), "read_online", self._on_demand_targets(views))
