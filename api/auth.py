"""Bearer tokens: who is calling, from the tokens file or the registry's API keys.

The tokens file (:mod:`featurestore.governance.token_file`) holds SHA-256 hashes of tokens, each
with a principal and that entry's own roles; ``featurestore api token create NAME --role R``
(an admin action) adds one. With no tokens file and no API key the service is open and every
caller's principal is ``None``; otherwise a request without a known token is refused (401). The
file is looked at on every request, so added and removed tokens count from the next request on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featurestore.errors import AuthenticationError
from featurestore.governance.access import Principal
from featurestore.governance.token_file import TokenFile, add_token, hash_token
from featurestore.store import FeatureStore

__all__ = [
    "TokenFile",
    "Unauthorized",
    "bearer_token",
    "create_token",
    "hash_token",
    "resolve_caller",
]


class Unauthorized(Exception):
    """The request carries no token, a malformed header, or a token nobody holds."""


def create_token(path: Path, principal: str, *, roles: Sequence[str] = ()) -> str:
    """Add a token for ``principal`` with ``roles`` straight to the file at ``path`` and return
    it. No access check: this is the file-level writer, for whoever owns the file; the CLI and
    the SDK go through :meth:`~featurestore.FeatureStore.create_api_token`, which needs admin."""
    return add_token(path, principal, roles=roles)[0]


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
    """Who sends a request: the principal of its bearer token, from the tokens file (with the
    entry's own roles) or the registry's API keys (``featurestore access keys create``).
    Without a token the caller is anonymous (None) while neither holds a token, else
    :class:`Unauthorized` (401); an unknown or revoked token is always refused."""
    token = bearer_token(authorization)
    guard = store.guard
    if token is None:
        if tokens.enabled or guard.keys.any:
            raise Unauthorized("this service needs a token: send 'Authorization: Bearer <token>'")
        return None
    from_file = tokens.resolve(token)
    if from_file is not None:
        return from_file
    try:
        return guard.authenticate(token)
    except AuthenticationError:
        raise Unauthorized("unknown or revoked token") from None
