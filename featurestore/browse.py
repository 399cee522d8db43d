"""The facade's read-only views for people looking at the store (the web UI): which features of a
view a principal may see, how fresh a view is online, and who may read it.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`).
Each operation checks ``describe`` on the view first, as :mod:`featurestore.catalog` does.

    store.visible_features(view, principal="bob")     # ['conv_rate', 'trips']: not 'ssn'
    store.freshness("driver_stats")                   # watermark per version online
    store.readers("driver_stats", offset=0, limit=20) # the policies that decide reads, paged
    store.on_demand_readable(trip_fit, principal="bob")  # may bob see its values?

What "visible" means: a feature is shown to a principal who may ``describe`` it and read it
(``read_offline`` or ``read_online``). A feature the principal may read neither way is left out
of every page: its name, its schema line, its statistics, drift and validation checks.

An on-demand view's values (and statistics) are shown to a principal who may read them the way a
retrieval would be allowed: ``read_offline`` or ``read_online`` on the on-demand view and on every
input feature it reads. Its schema and code follow ``describe`` on the on-demand view itself.
"""

from __future__ import annotations

from typing import Any

from featurestore.catalog import CatalogOperations
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.definitions.policy import Policy
from featurestore.errors import ObjectNotFoundError
from featurestore.governance.access import Target, definition_target, feature_targets
from featurestore.governance.guard import PrincipalLike
from featurestore.online import online_store_identity

#: Actions that read feature values: a feature is visible to a principal allowed either one.
READ_ACTIONS = ("read_offline", "read_online")


class BrowseOperations(CatalogOperations):
    """Visibility of features, freshness and readers of a view (see the module docstring)."""

    def visible_features(
        self,
        view: FeatureView,
        *,
        principal: PrincipalLike = None,
        governing: FeatureView | None = None,
    ) -> list[str]:
        """The features of ``view`` (any version of it) the principal may describe and read,
        in schema order; no audit record (this filters a page, it refuses nothing).
        ``governing``: the view's current registration, when the caller has it already."""
        guard = self.guard
        if not guard.access.enforced:
            return list(view.feature_names)
        who = guard.principal(principal)
        if governing is None:
            governing = guard.governing(view)
        shown = []
        for name in view.feature_names:
            targets = feature_targets(self.project, view, [name], governing=governing)
            if guard.allowed(who, "describe", targets) and any(
                guard.allowed(who, action, targets) for action in READ_ACTIONS
            ):
                shown.append(name)
        return shown

    def freshness(self, name: str, *, principal: PrincipalLike = None) -> list[dict[str, Any]]:
        """How far each version of view ``name`` is materialized in the configured online
        store (its watermark: the newest event time and created time online), newest first."""
        self.get_feature_view(name, principal=principal)
        identity = online_store_identity(self.config)
        marks = self.registry.list_watermarks(self.project, online_store=identity)
        return [
            {
                "version": version,
                "end": mark.end.isoformat(),
                "created": None if mark.created is None else mark.created.isoformat(),
                "rows": mark.rows,
                "updated_at": mark.updated_at.isoformat(),
            }
            for (view, version), mark in sorted(marks.items(), reverse=True)
            if view == name
        ]

    def on_demand_readable(
        self, view: OnDemandFeatureView, *, principal: PrincipalLike = None
    ) -> bool:
        """Whether the principal may see the values of on-demand ``view``'s features: allowed
        ``describe`` on it and one read action on it and on every input feature (of the input
        views' current versions, which a retrieval reads); no audit record."""
        guard = self.guard
        if not guard.access.enforced:
            return True
        who = guard.principal(principal)
        own = definition_target(self.project, guard.governing(view))
        targets = [own]
        for name, fields in view.view_sources.items():
            try:
                source = self._feature_view(name)
            except ObjectNotFoundError:
                return False  # an input view deleted since: nothing can be read through it
            names = [f.name for f in fields]
            targets += feature_targets(self.project, source, names, governing=source)
        return guard.allowed(who, "describe", [own]) and any(
            guard.allowed(who, action, targets) for action in READ_ACTIONS
        )

    def readers(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        principal: PrincipalLike = None,
    ) -> dict[str, Any]:
        """Who may read view ``name``: the policies whose read rules select the view or one of
        its features (allow and deny, as declared), or ``open`` when the project has none;
        ``limit`` of them from ``offset`` (in policy order), with their ``total``."""
        view = self.get_feature_view(name, principal=principal)
        guard = self.guard
        if not guard.access.enforced:
            return {"open": True, "policies": [], "total": 0}
        targets = feature_targets(self.project, view, governing=guard.governing(view))
        visible = set(self.visible_features(view, principal=principal))
        found = []
        for policy in guard.access.policies():
            if not isinstance(policy, Policy) or not any(map(policy.covers, READ_ACTIONS)):
                continue
            selected = [t for t in targets if _selects(policy, t.chain())]
            if selected:
                found.append(
                    {
                        "policy": policy.name,
                        "effect": policy.effect,
                        "actions": sorted(a for a in READ_ACTIONS if policy.covers(a)),
                        "principals": sorted(policy.principals),
                        "roles": sorted(policy.roles),
                        "on": _scope(view, selected, targets[0], visible),
                    }
                )
        end = None if limit is None else offset + limit
        return {"open": False, "policies": found[offset:end], "total": len(found)}


def _selects(policy: Policy, chain: tuple[Target, ...]) -> bool:
    return any(
        resource.matches(node.kind, node.name, dict(node.tags))
        for node in chain
        for resource in policy.resources
    )


def _scope(
    view: FeatureView, selected: list[Target], view_target: Target, visible: set[str]
) -> str:
    """What a policy selects, named without the features the reader may not see."""
    if view_target in selected:
        return view_target.label
    names = [t.name.partition(":")[2] for t in selected]
    shown = [n for n in names if n in visible]
    hidden = len(names) - len(shown)
    parts = [f"feature {n}" for n in shown] + [f"{hidden} feature(s) hidden from you"] * bool(
        hidden
    )
    return f"{view.name}: " + ", ".join(parts)
