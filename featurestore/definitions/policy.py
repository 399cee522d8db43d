"""Access policies: who may do what to which resources, declared next to the features.

    from featurestore import Policy, Resource

    Policy(name="analysts-read", roles=["analyst"], actions=["describe", "read_offline"],
           resources=[Resource(kind="feature_view", name="driver_*")])
    Policy(name="no-pii-for-analysts", effect="deny", roles=["analyst"],
           actions=["read_offline", "read_online"],
           resources=[Resource(kind="feature", tags={"pii": "true"})])

A policy applies to a principal named in ``principals`` (name patterns, ``*`` for everyone) or
holding one of ``roles``; to the listed ``actions`` (``admin`` grants every action); and to the
resources its :class:`Resource` matchers select, by kind, name pattern and tags. A policy on a
project covers everything in it, one on a feature view covers the view's features. Policies are
versioned and applied like other definitions; how they combine is in
:mod:`featurestore.governance.access`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from featurestore.definitions.base import Definition, check_name, check_tags
from featurestore.errors import DefinitionError

#: The kinds a :class:`Resource` may select (``*``: any).
RESOURCE_KINDS = (
    "project",
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "feature",
    "*",
)
ACTIONS = (
    "describe",
    "apply",
    "read_offline",
    "read_online",
    "write_online",
    "write_offline",
    "materialize",
    "delete",
    "admin",
    "*",
)


class Resource:
    """Selects resources by kind, name pattern (``fnmatch``: ``driver_*``) and tags (all must
    match). A feature's name is ``view:feature`` (``*:ssn`` selects every feature called ssn)."""

    def __init__(
        self, kind: str = "*", name: str = "*", tags: Mapping[str, str] | None = None
    ) -> None:
        if kind not in RESOURCE_KINDS:
            raise DefinitionError(f"resource kind {kind!r} is unknown; use one of {RESOURCE_KINDS}")
        if not isinstance(name, str) or not name:
            raise DefinitionError(f"resource name pattern must be a non-empty string, got {name!r}")
        self.kind = kind
        self.name = name
        self.tags = check_tags(f"resource {kind}:{name}", tags)

    def matches(self, kind: str, name: str, tags: Mapping[str, str]) -> bool:
        return (
            (self.kind == "*" or self.kind == kind)
            and fnmatch.fnmatchcase(name, self.name)
            and all(tags.get(k) == v for k, v in self.tags.items())
        )

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "tags": dict(sorted(self.tags.items()))}

    def __repr__(self) -> str:
        tags = f", tags={self.tags}" if self.tags else ""
        return f"Resource(kind={self.kind!r}, name={self.name!r}{tags})"


class Policy(Definition):
    """An allow or deny rule; see the module docstring."""

    kind: ClassVar[str] = "policy"

    def __init__(
        self,
        *,
        name: str,
        actions: Sequence[str],
        principals: Sequence[str] = (),
        roles: Sequence[str] = (),
        resources: Sequence[Resource] = (),
        effect: str = "allow",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("policy", name)
        label = f"policy {name!r}"
        if effect not in ("allow", "deny"):
            raise DefinitionError(f"{label}: effect must be 'allow' or 'deny', got {effect!r}")
        self.effect = effect
        self.actions = _strings(label, "actions", actions)
        unknown = [a for a in self.actions if a not in ACTIONS]
        if unknown or not self.actions:
            raise DefinitionError(
                f"{label}: actions must be some of {list(ACTIONS)}, got {list(actions)}"
            )
        self.principals = _strings(label, "principals", principals)
        self.roles = _strings(label, "roles", roles)
        if not self.principals and not self.roles:
            raise DefinitionError(
                f"{label}: name the principals (patterns, '*' for everyone) or roles it applies to"
            )
        self.resources = list(resources) or [Resource(kind="project")]
        for resource in self.resources:
            if not isinstance(resource, Resource):
                raise DefinitionError(
                    f"{label}: resources must be Resource objects, got {resource!r}"
                )
        self._init_metadata(description, tags, owner)

    def applies_to(self, principal: str, roles: frozenset[str]) -> bool:
        return any(fnmatch.fnmatchcase(principal, p) for p in self.principals) or bool(
            roles.intersection(self.roles)
        )

    def covers(self, action: str) -> bool:
        return action in self.actions or "admin" in self.actions or "*" in self.actions

    def spec(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "actions": sorted(self.actions),
            "principals": sorted(self.principals),
            "roles": sorted(self.roles),
            "resources": [r.spec() for r in self.resources],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        spec, meta = data["spec"], data.get("meta", {})
        return cls(
            name=data["name"],
            effect=spec["effect"],
            actions=spec["actions"],
            principals=spec["principals"],
            roles=spec["roles"],
            resources=[Resource(r["kind"], r["name"], r.get("tags")) for r in spec["resources"]],
            description=meta.get("description", ""),
            tags=meta.get("tags"),
            owner=meta.get("owner", ""),
        )


def _strings(label: str, what: str, values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise DefinitionError(f"{label}: {what} must be a list, e.g. [{values!r}]")
    items = list(values)
    if not all(isinstance(v, str) and v for v in items):
        raise DefinitionError(f"{label}: {what} must be non-empty strings, got {items}")
    return items
