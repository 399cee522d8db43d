"""What the facade calls before and after every operation: who is asking, may they, and the record.

    guard = Guard(config, registry, default=PrincipalSpec(token=os.environ.get("FEATURESTORE_TOKEN")))
    who = guard.principal()                      # or guard.principal(per_call) on the REST path
    guard.require(who, "read_offline", targets)  # AccessDeniedError, recorded in the audit log
    guard.record(who, "apply", "feature_view:driver_stats", "ok", {"version": 3})

A principal is given as a token (resolved through the registry's keys), a name (its roles are
those of its active keys), a :class:`Principal`, or nothing (``anonymous``). Every denial is
written to the audit log before the error is raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from featurestore.config import RepoConfig
from featurestore.definitions.base import Definition
from featurestore.errors import AccessDeniedError, ObjectNotFoundError
from featurestore.governance.access import (
    ANONYMOUS,
    AccessController,
    Decision,
    Principal,
    Target,
    change_action,
)
from featurestore.governance.audit import AuditLog
from featurestore.governance.keys import KeyInfo, KeyStore
from featurestore.registry.base import Registry
from featurestore.registry.plan import Plan

_Definition = TypeVar("_Definition", bound=Definition)

#: How callers name a principal: a Principal, a name, or None (the store's own, else anonymous).
PrincipalLike = Principal | str | None

_ANONYMOUS = Principal(ANONYMOUS)


@dataclass(frozen=True)
class PrincipalSpec:
    """The store's default principal: a token wins over a name."""

    token: str | None = None
    name: Principal | str | None = None


class Guard:
    """Access checks and audit records for one project."""

    def __init__(self, config: RepoConfig, registry: Registry, default: PrincipalSpec) -> None:
        self.project = config.project
        self.registry = registry
        self.access = AccessController(registry, config.project)
        self.keys = KeyStore(registry, config.project)
        self.audit = AuditLog(registry, config.project, flush_seconds=config.audit.flush_seconds)
        self._count_reads = config.audit.online_reads == "aggregate"
        self._default_spec = default

    # -- who asks ------------------------------------------------------------------------------

    def principal(self, given: PrincipalLike = None) -> Principal:
        """The principal of a call: ``given`` when set, else the store's default.

        A default token or name is resolved on every call (from the key cache, which a change
        of the registry drops): an open store stops acting for a revoked key, or a principal
        whose keys were revoked loses their roles, before its next operation."""
        if given is not None:
            return self._named(given)
        spec = self._default_spec
        if spec.token:
            return self.keys.resolve(spec.token)
        if spec.name is not None:
            return self._named(spec.name)
        return _ANONYMOUS

    def _named(self, given: Principal | str) -> Principal:
        if isinstance(given, Principal):
            return given
        return Principal(given, self.keys.roles_of(given))

    def authenticate(self, token: str) -> Principal:
        """The principal of an active key (AuthenticationError otherwise)."""
        return self.keys.resolve(token)

    # -- may they -------------------------------------------------------------------------------

    def require(self, principal: Principal, action: str, targets: Iterable[Target]) -> None:
        """Raise AccessDeniedError (and audit it) unless every target allows ``action``."""
        if not self.access.enforced:
            return
        for decision in self.access.check(principal, action, targets):
            if not decision.allowed:
                denied = AccessDeniedError(decision)
                self.record_denial(principal, denied)
                raise denied

    def record_denial(self, principal: Principal, denied: AccessDeniedError) -> None:
        """Write a refusal to the audit log, with the policy and the reason."""
        decision = denied.decision
        assert isinstance(decision, Decision)
        self.record(
            principal,
            decision.action,
            decision.target.label,
            "denied",
            {"reason": decision.reason, "policy": decision.policy},
        )

    def allowed(self, principal: Principal, action: str, targets: Iterable[Target]) -> bool:
        """Whether every target allows ``action`` (no audit record; for filtering lists)."""
        if not self.access.enforced:
            return True
        return all(d.allowed for d in self.access.check(principal, action, targets))

    def governing(self, obj: _Definition) -> _Definition:
        """The registration whose metadata (tags, owner) decides access to ``obj``, whatever
        version ``obj`` is: the object's current one (deleted or not), else ``obj`` itself
        (a definition built in code and never registered)."""
        try:
            current = self.registry.latest(self.project, obj.kind, obj.name)
        except ObjectNotFoundError:
            return obj
        return current if isinstance(current, type(obj)) else obj

    # -- the record -----------------------------------------------------------------------------

    @staticmethod
    def audit_name(principal: Principal) -> str | None:
        """How the audit log and other records name a principal (None: anonymous)."""
        return None if principal.name == ANONYMOUS else principal.name

    def record(
        self,
        principal: Principal,
        action: str,
        resource: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.audit.record(self.audit_name(principal), action, resource, outcome, detail)

    def record_apply(self, principal: Principal, applied: Plan) -> None:
        """One audit row per object an apply changed (policies included), named ``kind:name``."""
        for change in applied.changes:
            if change.change == "unchanged":
                continue
            detail: dict[str, Any] = {"change": "restored" if change.restored else change.change}
            if change.new_version is not None:
                detail["version"] = change.new_version
            self.record(
                principal, change_action(change), f"{change.kind}:{change.name}", "ok", detail
            )

    def create_key(
        self,
        who: Principal,
        principal: str,
        *,
        roles: Sequence[str] = (),
        kind: str = "user",
        description: str = "",
    ) -> tuple[str, KeyInfo]:
        """A new key for ``principal``, created by ``who`` (the caller checked ``admin``)."""
        token, info = self.keys.create(
            principal, roles=tuple(roles), kind=kind, description=description
        )
        self.record(
            who,
            "admin",
            f"key:{info.prefix}",
            "ok",
            {"change": "created", "principal": principal, "roles": list(info.roles)},
        )
        return token, info

    def revoke_key(self, who: Principal, prefix: str) -> KeyInfo:
        """Revoke a key on behalf of ``who`` (the caller checked ``admin``)."""
        info = self.keys.revoke(prefix)
        self.record(
            who,
            "admin",
            f"key:{info.prefix}",
            "ok",
            {"change": "revoked", "principal": info.principal},
        )
        return info

    def count_online_read(self, principal: Principal, resources: Iterable[str]) -> None:
        """Tally an allowed online read (``audit.online_reads: off``: nothing)."""
        if self._count_reads:
            self.audit.count_online_read(self.audit_name(principal), resources, "allowed")

    def close(self) -> None:
        self.audit.flush()
        self.keys.close()
