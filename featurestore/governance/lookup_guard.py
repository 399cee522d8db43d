"""The online lookup's access check and audit count, kept off the hot path's critical cost.

:class:`~featurestore.online.lookup.OnlineLookup` calls a :class:`LookupGuard` with each resolved
plan. The plan's resources (its views and features, and the feature service asked through) are
worked out once per plan; a grant is remembered per plan, principal and policy generation, so
an allowed lookup costs one dictionary lookup and an in-memory tally for the audit log. Denials
are not remembered: each one goes through :meth:`Guard.require`, which audits it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.on_demand import WriteTimeStorage
from featurestore.governance.access import Target, feature_targets, service_targets
from featurestore.governance.guard import Guard, PrincipalLike
from featurestore.online.lookup import LookupPlan

#: Plans remembered at most; past it the memory starts over (plans are few in practice).
_MAX_PLANS = 1024


@dataclass
class _PlanResources:
    plan: LookupPlan  # kept alive, so its id() cannot be reused while it is remembered
    targets: list[Target]
    views: tuple[str, ...]  # audit resources: one per view read
    grants: set[tuple[int, str, frozenset[str]]] = field(default_factory=set)


class LookupGuard:
    """``guard(plan, references, principal)``: AccessDeniedError unless ``read_online`` is
    allowed on everything the plan reads; counts the read for the audit log."""

    def __init__(
        self, guard: Guard, project: str, service: Callable[[str], FeatureService]
    ) -> None:
        self.guard = guard
        self.project = project
        self.service = service
        self._plans: dict[int, _PlanResources] = {}

    def __call__(
        self, plan: LookupPlan, references: Sequence[str] | str, principal: PrincipalLike
    ) -> None:
        guard = self.guard
        who = guard.principal(principal)
        resources = self._resources(plan, references)
        access = guard.access
        if access.enforced:
            grant = (access.generation, who.name, who.roles)
            if grant not in resources.grants:
                guard.require(who, "read_online", resources.targets)
                resources.grants.add(grant)
        guard.count_online_read(who, resources.views)

    def _resources(self, plan: LookupPlan, references: Sequence[str] | str) -> _PlanResources:
        known = self._plans.get(id(plan))
        if known is not None and known.plan is plan:
            return known
        targets = [
            target
            for read in plan.reads
            for target in feature_targets(
                self.project, read.namespace.view, read.features, governing=read.governing
            )
        ]
        for read in plan.reads:
            # A write-time view's stored values are made of its inputs: reading them needs
            # the right to read those too, as computing them at request time would.
            view = read.namespace.view
            if isinstance(view, WriteTimeStorage):
                for source, features in view.inputs:
                    targets += feature_targets(self.project, source, features)
        if isinstance(references, str):  # asked through a feature service: check it too
            targets += service_targets(self.project, self.service(references))[:1]
        views = tuple(
            dict.fromkeys(f"{r.namespace.view.kind}:{r.namespace.view.name}" for r in plan.reads)
        )
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        resources = self._plans[id(plan)] = _PlanResources(plan, targets, views)
        return resources
