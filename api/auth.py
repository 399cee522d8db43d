"""Bearer tokens: who is calling. Tokens are stored only as SHA-256 hashes, one principal each.

The tokens file is JSON::

    {"tokens": [{"principal": "ranking-service", "sha256": "<hex digest>", "created": "..."}]}

:func:`create_token` (``featurestore api token create NAME``) adds one and returns the token,
which is shown once and never stored. With no tokens file configured the service is open and every
caller's principal is ``None``; with one, a request without a known token is refused (401).
The file is re-read when it changes, so new tokens work without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from featurestore.errors import AuthenticationError, ConfigError
from featurestore.governance.access import Principal
from featurestore.store import FeatureStore

__all__ = [
    "TokenFile",
    "Unauthorized",
    "bearer_token",
    "create_token",
    "hash_token",
    "resolve_caller",
]

_PREFIX = "fst_"
# How often (seconds) the file's modification time is checked: never per request.
_RECHECK_SECONDS = 1.0


class Unauthorized(Exception):
    """The request carries no token, a malformed header, or a token nobody holds."""


def hash_token(token: str) -> str:
    """The stored form of ``token``: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"API tokens file {path}: cannot read it as JSON ({exc})") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("principal"), str)
        and isinstance(e.get("sha256"), str)
        for e in entries
    ):
        raise ConfigError(
            f'API tokens file {path}: expected {{"tokens": [{{"principal": ..., '
            '"sha256": ...}, ...]}; recreate it with `featurestore api token create NAME`'
        )
    return entries


def create_token(path: Path, principal: str) -> str:
    """Add a new random token for ``principal`` to the file at ``path``; return the token.

    Only its hash is written (the file is created with mode 0600 when new).
    """
    if not principal or not principal.strip():
        raise ConfigError("a token needs a principal name, e.g. `api token create ranking-service`")
    entries = _read(path)
    token = _PREFIX + secrets.token_urlsafe(32)
    entries.append(
        {
            "principal": principal,
            "sha256": hash_token(token),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"tokens": entries}, out, indent=2)
    os.replace(tmp, path)
    return token


class TokenFile:
    """Resolves bearer tokens to principals from a tokens file (``None``: open service)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._hashes: dict[str, str] = {}
        self._mtime: float | None = None
        self._next_check = float("-inf")
        self._lock = threading.Lock()
        if path is not None:
            self._reload()

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token."""
        return self.path is not None

    def _reload(self) -> None:
        assert self.path is not None
        try:
            mtime: float | None = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self._hashes = {e["sha256"]: e["principal"] for e in _read(self.path)}
            self._mtime = mtime

    def principal(self, token: str) -> str | None:
        """The principal holding ``token`` in the file, or None."""
        if self.path is None:
            return None
        now = time.monotonic()
        if now >= self._next_check:
            with self._lock:
                self._reload()
                self._next_check = now + _RECHECK_SECONDS
        return self._hashes.get(hash_token(token))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without the header;
    :class:`Unauthorized` when it is malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return token


def resolve_caller(
    tokens: TokenFile, store: FeatureStore, authorization: str | None
) -> Principal | None:
    """Who sends a request: the principal of its bearer token, from the tokens file or the
    registry's API keys (``featurestore access keys create``). Without a token the caller is
    anonymous (None) while neither holds a token, else :class:`Unauthorized` (401); an unknown
    or revoked token is always refused."""
    token = bearer_token(authorization)
    guard = store.guard
    if token is None:
        if tokens.enabled or guard.keys.any:
            raise Unauthorized("this service needs a token: send 'Authorization: Bearer <token>'")
        return None
    name = tokens.principal(token)
    if name is not None:
        return guard.principal(name)
    try:
        return guard.authenticate(token)
    except AuthenticationError:
        raise Unauthorized("unknown or revoked token") from None
