"""Access decisions: may this principal do this action on these resources, and which policy says so.

The rules, for one principal, one action and one resource:

* no policy in the project: everything is allowed (the store is open, as before policies);
* otherwise the policies that apply (to the principal's name or one of its roles, and to the
  action, ``admin`` covering all) and select the resource or one of its parents (a feature's
  view, then the project) are collected; **any deny wins**, else any allow allows, else the
  action is **denied by default**.

Asking for several resources at once (a feature service: the service, its views and each of
their features) is allowed only when every one is. Decisions are cached per registry state (a
policy apply reaches a running service within ``freshness_interval``).

    access = AccessController(registry, "demo")
    decision = access.decide(Principal("ana", frozenset({"analyst"})), "read_online", target)
    decision.allowed, decision.reason
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from featurestore.definitions.base import Definition
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.definitions.policy import Policy
from featurestore.errors import AccessDeniedError, DefinitionError
from featurestore.registry.base import ApplyCheck, Registry
from featurestore.registry.freshness import FreshnessGate
from featurestore.registry.plan import ObjectChange, Plan

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """Who asks: a user or a service account, with roles."""

    name: str
    roles: frozenset[str] = frozenset()
    kind: str = "user"

    def __str__(self) -> str:
        roles = f" (roles {sorted(self.roles)})" if self.roles else ""
        return f"{self.kind} {self.name!r}{roles}"


@dataclass(frozen=True)
class Target:
    """A resource an action is about, with the resources that contain it."""

    kind: str
    name: str
    tags: tuple[tuple[str, str], ...] = ()
    parents: tuple[Target, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    def chain(self) -> tuple[Target, ...]:
        return (self, *self.parents)


@dataclass(frozen=True)
class Decision:
    """The answer for one principal, action and resource, and why."""

    allowed: bool
    principal: str
    action: str
    target: Target
    policy: str | None
    reason: str


class AccessController:
    """Decides on one project's policies, read from the registry (cached per registry state)."""

    def __init__(
        self, registry: Registry, project: str, *, freshness_interval: float = 1.0
    ) -> None:
        self.registry = registry
        self.project = project
        self._gate = FreshnessGate(registry, project, interval=freshness_interval)
        self._policies: list[Policy] = []
        #: Bumped whenever the policies are reloaded: callers key their own caches on it.
        self.generation = 0
        self._decisions: dict[tuple[str, frozenset[str], str, Target], Decision] = {}
        self._lock = threading.Lock()

    def policies(self) -> list[Policy]:
        """The project's current policies."""
        if self._gate.changed():
            policies = [
                p for p in self.registry.list(self.project, "policy") if isinstance(p, Policy)
            ]
            with self._lock:
                self._policies = policies
                self._decisions = {}
                self.generation += 1
        return self._policies

    @property
    def enforced(self) -> bool:
        """Whether any policy exists (without one, everything is allowed)."""
        return bool(self.policies())

    def decide(self, principal: Principal, action: str, target: Target) -> Decision:
        policies = self.policies()
        key = (principal.name, principal.roles, action, target)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        decision = _decide(policies, principal, action, target, self.project)
        self._decisions[key] = decision
        return decision

    def check(self, principal: Principal, action: str, targets: Iterable[Target]) -> list[Decision]:
        """A decision per target (every one must be allowed for the request to be)."""
        return [self.decide(principal, action, target) for target in targets]

    def require(self, principal: Principal, action: str, targets: Iterable[Target]) -> None:
        """Raise :class:`AccessDeniedError` naming the first denied resource and the reason."""
        for decision in self.check(principal, action, targets):
            if not decision.allowed:
                raise AccessDeniedError(decision)


def _decide(
    policies: Sequence[Policy], principal: Principal, action: str, target: Target, project: str
) -> Decision:
    def answer(allowed: bool, policy: str | None, reason: str) -> Decision:
        return Decision(allowed, principal.name, action, target, policy, reason)

    if not policies:
        return answer(True, None, f"project {project!r} has no policies: access is open")
    allows: list[Policy] = []
    for policy in policies:
        if not (policy.covers(action) and policy.applies_to(principal.name, principal.roles)):
            continue
        hit = _selected(policy, target)
        if hit is None:
            continue
        if policy.effect == "deny":
            via = "" if hit is target else f" (via {hit.kind} {hit.name!r})"
            return answer(
                False, policy.name, f"policy {policy.name!r} denies {action} on {target.label}{via}"
            )
        allows.append(policy)
    if allows:
        return answer(True, allows[0].name, f"policy {allows[0].name!r} allows {action}")
    return answer(
        False,
        None,
        f"no policy allows {action} on {target.label} for {principal}: denied by default",
    )


def _selected(policy: Policy, target: Target) -> Target | None:
    """The first of the target and its parents that one of the policy's resources selects."""
    for node in target.chain():
        tags = dict(node.tags)
        if any(r.matches(node.kind, node.name, tags) for r in policy.resources):
            return node
    return None


# -- targets ---------------------------------------------------------------------------------------


def project_target(project: str) -> Target:
    return Target("project", project)


def _tags(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))


def entity_target(project: str, entity: Entity) -> Target:
    return Target("entity", entity.name, _tags(entity.tags), (project_target(project),))


def view_target(project: str, view: FeatureView | OnDemandFeatureView) -> Target:
    """The view as a resource, of its own kind (a write-time view's storage is the on-demand
    view)."""
    return Target(view.kind, view.name, _tags(view.tags), (project_target(project),))


def feature_targets(
    project: str,
    view: FeatureView | OnDemandFeatureView,
    features: Sequence[str] | None = None,
    *,
    governing: FeatureView | OnDemandFeatureView | None = None,
) -> list[Target]:
    """The view, then each requested feature (default: all) with the view as its parent.

    ``governing`` is the view's current registration when ``view`` is another version of it
    (``view@N:feature``): its metadata decides, so a tag added in a later version covers the
    older ones too. A feature it no longer has keeps the tags of the version read.
    """
    current = view if governing is None else governing
    parent = view_target(project, current)
    names = view.feature_names if features is None else list(features)
    fields = {f.name: f for f in view.features} | {f.name: f for f in current.features}
    return [parent] + [
        Target("feature", f"{view.name}:{name}", _tags(fields[name].tags), parent.chain())
        for name in names
        if name in fields
    ]


def definition_target(project: str, obj: Definition) -> Target:
    """The resource a registered definition is (a policy is guarded as the project)."""
    if obj.kind == "policy":
        return project_target(project)
    return Target(obj.kind, obj.name, _tags(obj.tags), (project_target(project),))


def change_action(change: ObjectChange) -> str:
    """The action one change of an apply needs: ``admin`` for a policy, ``delete`` for a
    deletion, ``apply`` for anything added or changed."""
    if change.kind == "policy":
        return "admin"
    return "delete" if change.change == "deleted" else "apply"


def change_targets(
    project: str,
    plan: Plan,
    objects: Sequence[Definition],
    stored: Mapping[tuple[str, str], Definition],
) -> list[tuple[ObjectChange, str, list[Target]]]:
    """``(change, action, resources)`` for every change an apply makes (see
    :func:`change_action`). An object already registered is judged by its stored metadata, and
    when it changes by its new metadata too: dropping a tag in the same apply that changes the
    object cannot escape a deny on that tag. A policy is guarded as the project."""
    incoming = {(o.kind, o.name): o for o in objects}
    out: list[tuple[ObjectChange, str, list[Target]]] = []
    for change in plan.changes:
        if change.change == "unchanged":
            continue
        key = (change.kind, change.name)
        known = [o for o in (stored.get(key), incoming.get(key)) if o is not None]
        targets = list(dict.fromkeys(definition_target(project, o) for o in known))
        if not targets:  # not expected: a change concerns a stored or an incoming object
            targets = [Target(change.kind, change.name, (), (project_target(project),))]
        out.append((change, change_action(change), targets))
    return out


def authorize_apply(
    project: str, principal: Principal, objects: Sequence[Definition]
) -> ApplyCheck:
    """The check :meth:`Registry.apply` runs inside its transaction: ``principal`` needs the
    action of every change (:func:`change_targets`) under the policies stored at that moment
    (not a cached copy: a policy committed just before the lock counts). Raises
    :class:`AccessDeniedError` (unaudited: the caller records it once the apply rolled back)."""

    def check(plan: Plan, stored: Mapping[tuple[str, str], Definition]) -> None:
        policies = [o for o in stored.values() if isinstance(o, Policy)]
        for _, action, targets in change_targets(project, plan, objects, stored):
            for target in targets:
                decision = _decide(policies, principal, action, target, project)
                if not decision.allowed:
                    raise AccessDeniedError(decision)

    return check


def service_targets(project: str, service: FeatureService) -> list[Target]:
    """The service, then every view and feature behind it."""
    targets = [
        Target("feature_service", service.name, _tags(service.tags), (project_target(project),))
    ]
    for projection in service.projections:
        targets += feature_targets(project, projection.view, projection.feature_names)
    return targets


def resource_targets(project: str, label: str, registry: Registry) -> list[Target]:
    """The resources a label names, as ``featurestore access check`` takes them:
    ``project``, ``entity:NAME``, ``feature_view:NAME``, ``feature:VIEW:FEATURE`` or
    ``feature_service:NAME`` (a service brings every view and feature behind it)."""
    kind, _, name = label.partition(":")
    if kind == "project":
        return [project_target(project)]
    if not name:
        raise DefinitionError(
            f"resource {label!r}: use project, entity:NAME, feature_view:NAME, "
            "feature:VIEW:FEATURE or feature_service:NAME"
        )
    if kind == "feature":
        view_name, _, feature = name.partition(":")
        view = registry.get(project, "feature_view", view_name)
        assert isinstance(view, FeatureView)
        view.feature(feature)  # an unknown feature is an error naming the view's features
        return feature_targets(project, view, [feature])[1:]
    if kind == "feature_service":
        service = registry.get(project, "feature_service", name)
        assert isinstance(service, FeatureService)
        return service_targets(project, service)
    if kind in ("entity", "feature_view"):
        return [definition_target(project, registry.get(project, kind, name))]
    raise DefinitionError(f"resource {label!r}: unknown kind {kind!r}")
