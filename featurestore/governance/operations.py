"""The facade's governance operations: retention, erasure and access management.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`);
every operation checks access through the guard and leaves an audit record.

    store.enforce_retention(dry_run=True)
    store.erase(entity={"driver_id": 1001})
    token, info = store.create_key("ingestor", roles=["writer"], kind="service")
    token, entry = store.create_api_token("ranking-service", roles=["serving"])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from featurestore.definitions.entity import Entity
from featurestore.errors import ConfigError
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import (
    Decision,
    Principal,
    project_target,
    resource_targets,
)
from featurestore.governance.actions import Action
from featurestore.governance.audit import AuditRecord
from featurestore.governance.erasure import ErasureReport, ErasureRequest, erase
from featurestore.governance.guard import PrincipalLike
from featurestore.governance.holdings import Holdings
from featurestore.governance.keys import KeyInfo
from featurestore.governance.removal_lineage import emit_removals
from featurestore.governance.retention import RetentionReport, enforce_retention, run_instant
from featurestore.governance.token_file import (
    TOKENS_FILE_ENV,
    TokenEntry,
    add_token,
    list_tokens,
    remove_token,
    tokens_file_path,
)

_Report = TypeVar("_Report", RetentionReport, ErasureReport)


class GovernanceOperations(FacadeBase):
    """Retention, erasure and access management on the facade."""

    # -- retention and erasure -----------------------------------------------------------------

    def enforce_retention(
        self, *, dry_run: bool = False, now: datetime | None = None
    ) -> RetentionReport:
        """Delete every row older than its view's retention window from the data the store owns:
        the online rows of every view version, pushed Parquet files and saved datasets (the
        views' source files are never changed; retrieval filters their old rows instead).

        ``dry_run`` reports what would go and deletes nothing. ``now`` (default: the current
        time; never later) is the instant the windows count back from. Needs ``delete`` on the
        project; every run, dry or not, leaves one audit record with its counts.
        """
        who = self._may_delete()
        moment = run_instant(now)
        holdings = Holdings(self.config, self.registry)
        return self._audited(
            who,
            f"project:{self.project}",
            {"run": "retention", "dry_run": dry_run},
            lambda: enforce_retention(
                holdings, self.online, self.retention, now=moment, dry_run=dry_run
            ),
        )

    def erase(self, entity: Mapping[str, Any], *, dry_run: bool = False) -> ErasureReport:
        """Remove one entity from everything the store owns, check nothing is left, and list
        the user-owned source files that still hold it (see
        :mod:`featurestore.governance.erasure`)::

            report = store.erase(entity={"driver_id": 1001})
            report.verified, report.user_sources

        ``entity`` names every join key of one entity; values are typed per the key's declared
        type, and text is parsed as the CLI passes it (``"1001"`` for an Int64 key).
        ``dry_run`` reports what would go and deletes nothing. Needs ``delete`` on the project;
        the audit record keeps a fingerprint of the key values, not the values.
        """
        who = self._may_delete()
        holdings = Holdings(self.config, self.registry)
        entities = [e for e in self.registry.list(self.project, "entity") if isinstance(e, Entity)]
        request = ErasureRequest(holdings, entity, entities)
        if not dry_run:
            # Passing push validations wait in memory to be recorded together: record them
            # now, so that the erasure scrubs them too (a dry run writes nothing).
            self._flush_held_records()
        return self._audited(
            who,
            f"entity:{request.entity.name}",
            {"run": "erasure", "dry_run": dry_run, "fingerprint": request.fingerprint},
            lambda: erase(request, self.online, self.offline, dry_run=dry_run),
        )

    def _may_delete(self) -> Principal:
        who = self.principal
        self.guard.require(who, "delete", [project_target(self.project)])
        return who

    def _audited(
        self, who: Principal, resource: str, started: dict[str, Any], run: Callable[[], _Report]
    ) -> _Report:
        """Run a retention or erasure run and record it (its counts, or the error it ended in);
        a run that changed data is reported to OpenLineage too, one job per view or file."""
        try:
            report = run()
        except Exception as exc:
            self.guard.record(who, "delete", resource, "error", {**started, "error": str(exc)})
            raise
        self.guard.record(who, "delete", resource, report.outcome, report.audit_detail())
        if not report.dry_run:
            emit_removals(self.lineage.emitter, self.project, report.job, report.removed)
        return report

    # -- access management ---------------------------------------------------------------------

    def create_key(
        self,
        principal: str,
        *,
        roles: Sequence[str] = (),
        kind: str = "user",
        description: str = "",
    ) -> tuple[str, KeyInfo]:
        """A new API key for ``principal`` (shown once) with its roles; needs ``admin``."""
        return self.guard.create_key(
            self._require_admin(), principal, roles=roles, kind=kind, description=description
        )

    def list_keys(self) -> list[KeyInfo]:
        """Every API key of the project (never the tokens); needs ``admin``."""
        self._require_admin()
        return self.guard.keys.list()

    def revoke_key(self, prefix: str) -> KeyInfo:
        """Revoke a key at once, in every process; needs ``admin``."""
        return self.guard.revoke_key(self._require_admin(), prefix)

    def create_api_token(
        self, principal: str, *, roles: Sequence[str] = (), tokens_file: Path | None = None
    ) -> tuple[str, TokenEntry]:
        """A new bearer token of the REST service's tokens file (``tokens_file``, default: the
        configured one) for ``principal``, acting with exactly ``roles`` (never those of a
        registry principal of the same name); shown once. Needs ``admin``; audited."""
        who = self._require_admin()
        path = self._tokens_file(tokens_file)
        token, entry = add_token(
            path, principal, roles=roles, created_by=self.guard.audit_name(who)
        )
        self._record_token(who, entry, "created", path)
        return token, entry

    def list_api_tokens(self, *, tokens_file: Path | None = None) -> list[TokenEntry]:
        """The entries of the tokens file (never the tokens); needs ``admin``."""
        self._require_admin()
        return list_tokens(self._tokens_file(tokens_file))

    def revoke_api_token(self, prefix: str, *, tokens_file: Path | None = None) -> TokenEntry:
        """Remove the tokens-file entry whose listed prefix starts with ``prefix``; the service
        refuses the token from its next request on. Needs ``admin``; audited."""
        who = self._require_admin()
        path = self._tokens_file(tokens_file)
        entry = remove_token(path, prefix)
        self._record_token(who, entry, "revoked", path)
        return entry

    def _tokens_file(self, given: Path | None) -> Path:
        path = given if given is not None else tokens_file_path(self.config)
        if path is None:
            raise ConfigError(
                "no tokens file configured: set api: {tokens_file: api_tokens.json} in "
                f"featurestore.yaml, set {TOKENS_FILE_ENV}, or pass --file"
            )
        return path

    def _record_token(self, who: Principal, entry: TokenEntry, change: str, path: Path) -> None:
        detail = {"change": change, "principal": entry.principal, "roles": list(entry.roles)}
        self.guard.record(
            who, "admin", f"api_token:{entry.prefix}", "ok", {**detail, "file": str(path)}
        )

    def check_access(self, principal: PrincipalLike, action: str, resource: str) -> list[Decision]:
        """Whether ``principal`` may do ``action`` on ``resource`` (``feature_view:NAME``,
        ``feature:VIEW:FEATURE``, ...), one decision per resource involved, each naming the
        policy that decided. Asking about another principal needs ``admin``."""
        who = self.principal
        asked = self.guard.principal(principal)
        if asked.name != who.name:
            self._require_admin()
        Action.parse(action)
        targets = resource_targets(self.project, resource, self.registry)
        return self.guard.access.check(asked, action, targets)

    def audit_log(
        self,
        *,
        since: datetime | None = None,
        principal: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        as_principal: PrincipalLike = None,
    ) -> list[AuditRecord]:
        """The project's audit records (oldest first; the newest ``limit``); ``resource``
        keeps those whose resource contains it, ``before_id`` those older than that record
        (to page back). Needs ``admin`` (of ``as_principal``, default: the store's principal)."""
        self._require_admin(as_principal)
        self.guard.audit.flush()
        return self.guard.audit.query(
            since=since,
            principal=principal,
            action=action,
            resource=resource,
            before_id=before_id,
            limit=limit,
        )

    def _require_admin(self, principal: PrincipalLike = None) -> Principal:
        who = self.guard.principal(principal)
        self.guard.require(who, "admin", [project_target(self.project)])
        return who
