"""API keys: tokens that identify a principal (user or service account) and carry its roles.

A key is shown once when created (``fs_<random>``); the registry keeps only its SHA-256, a short
prefix to name it by, the principal, its kind and roles, and when it was revoked. Revoking takes
effect at once, in every process: resolved tokens are cached, and the cache is dropped whenever
the registry changed, which a :class:`~featurestore.registry.probe.ChangeProbe` tells on every
call (SQLite: ``PRAGMA data_version``, a few microseconds; PostgreSQL: one small query), so a
revocation is seen by the very next request of any process.

    keys = KeyStore(registry, "demo")
    token, info = keys.create("ranker", roles=["serving"], kind="service_account")
    keys.resolve(token)          # Principal('ranker', roles={'serving'})
    keys.revoke(info.prefix)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select, update

from featurestore.errors import AuthenticationError, ObjectNotFoundError
from featurestore.governance.access import Principal
from featurestore.registry.base import Registry
from featurestore.registry.schema import access_keys

TOKEN_PREFIX = "fs_"
KINDS = ("user", "service_account")


@dataclass(frozen=True)
class KeyInfo:
    """What the registry knows about a key (never the token itself)."""

    prefix: str
    principal: str
    kind: str
    roles: tuple[str, ...]
    description: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyStore:
    """Creates, lists, revokes and resolves one project's keys."""

    def __init__(self, registry: Registry, project: str) -> None:
        self.registry = registry
        self.project = project
        self._probe = registry.change_probe(project)
        # Caches, all dropped together when the registry database changed.
        self._resolved: dict[str, Principal | None] = {}
        self._roles: dict[str, frozenset[str]] = {}
        self._any: bool | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        if self._probe.changed():
            self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._resolved = {}
            self._roles = {}
            self._any = None

    def create(
        self,
        principal: str,
        *,
        roles: list[str] | tuple[str, ...] = (),
        kind: str = "user",
        description: str = "",
    ) -> tuple[str, KeyInfo]:
        """A new key for ``principal``; returns the token (shown once) and its record."""
        if not principal or not isinstance(principal, str):
            raise AuthenticationError(f"a key needs a principal name, got {principal!r}")
        if kind not in KINDS:
            raise AuthenticationError(f"key kind must be one of {KINDS}, got {kind!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        row = {
            "project": self.project,
            "key_hash": hash_token(token),
            "key_prefix": token[:12],
            "principal": principal,
            "kind": kind,
            "roles_json": json.dumps(sorted(set(roles))),
            "description": description,
            "created_at": now,
            "revoked_at": None,
        }
        # The state token changes with the key, so other processes' probes see it at once.
        with self.registry.writing(touch=self.project) as conn:
            conn.execute(insert(access_keys).values(**row))
        self._forget()
        return token, KeyInfo(
            token[:12], principal, kind, tuple(sorted(set(roles))), description, now, None
        )

    def list(self) -> list[KeyInfo]:
        k = access_keys
        with self.registry.reading() as conn:
            rows = conn.execute(select(k).where(k.c.project == self.project).order_by(k.c.id)).all()
        return [_info(r) for r in rows]

    def revoke(self, prefix: str) -> KeyInfo:
        """Revoke the active key whose prefix (as listed) is ``prefix``."""
        k = access_keys
        now = datetime.now(timezone.utc)
        with self.registry.writing(touch=self.project) as conn:
            rows = conn.execute(
                select(k).where(
                    k.c.project == self.project,
                    k.c.key_prefix.startswith(prefix, autoescape=True),
                    k.c.revoked_at.is_(None),
                )
            ).all()
            if len(rows) != 1:
                what = "no active key" if not rows else f"{len(rows)} active keys"
                raise ObjectNotFoundError(
                    f"{what} in project {self.project!r} start with {prefix!r}; "
                    "see `featurestore access keys list`"
                )
            conn.execute(update(k).where(k.c.id == rows[0].id).values(revoked_at=now))
        self._forget()
        info = _info(rows[0])
        return KeyInfo(
            info.prefix,
            info.principal,
            info.kind,
            info.roles,
            info.description,
            info.created_at,
            now,
        )

    def resolve(self, token: str) -> Principal:
        """The principal of an active key; :class:`AuthenticationError` otherwise."""
        digest = hash_token(token)
        self._refresh()
        if digest in self._resolved:
            principal = self._resolved[digest]
        else:
            principal = self._lookup(digest)
            with self._lock:
                self._resolved[digest] = principal
        if principal is None:
            raise AuthenticationError("unknown or revoked token")
        return principal

    def roles_of(self, principal: str) -> frozenset[str]:
        """The roles of the principal's active keys (how the SDK names a principal by name)."""
        self._refresh()
        cached = self._roles.get(principal)
        if cached is not None:
            return cached
        k = access_keys
        with self.registry.reading() as conn:
            rows = conn.execute(
                select(k.c.roles_json).where(
                    k.c.project == self.project,
                    k.c.principal == principal,
                    k.c.revoked_at.is_(None),
                )
            ).scalars()
            roles = frozenset(role for text in rows for role in json.loads(text))
        with self._lock:
            self._roles[principal] = roles
        return roles

    @property
    def any(self) -> bool:
        """Whether the project has any active key (then REST requests need one); cached like
        resolved keys, so an open service asks the registry only when it changed."""
        self._refresh()
        known = self._any
        if known is not None:
            return known
        k = access_keys
        with self.registry.reading() as conn:
            found = conn.execute(
                select(k.c.id).where(k.c.project == self.project, k.c.revoked_at.is_(None)).limit(1)
            ).first()
        with self._lock:
            self._any = found is not None
        return found is not None

    def _lookup(self, digest: str) -> Principal | None:
        k = access_keys
        with self.registry.reading() as conn:
            row = conn.execute(
                select(k).where(
                    k.c.project == self.project, k.c.key_hash == digest, k.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        return Principal(row.principal, frozenset(json.loads(row.roles_json)), row.kind)

    def close(self) -> None:
        self._probe.close()


def _info(row: object) -> KeyInfo:
    r = row
    return KeyInfo(
        prefix=r.key_prefix,  # type: ignore[attr-defined]
        principal=r.principal,  # type: ignore[attr-defined]
        kind=r.kind,  # type: ignore[attr-defined]
        roles=tuple(json.loads(r.roles_json)),  # type: ignore[attr-defined]
        description=r.description,  # type: ignore[attr-defined]
        created_at=r.created_at,  # type: ignore[attr-defined]
        revoked_at=r.revoked_at,  # type: ignore[attr-defined]
    )
