"""The REST service's tokens file: bearer tokens of the service's callers, each with its own roles.

The file is a credential store of the service (the registry's API keys are the other kind of
bearer token). It is JSON and keeps only each token's SHA-256::

    {"tokens": [{"principal": "ranking-service", "roles": ["serving"], "prefix": "fst_AbCdEfGh",
                 "sha256": "<hex digest>", "created": "2026-...", "created_by": "alice"}]}

A token of the file acts as its entry's principal **with the entry's roles only**: it never takes
the roles of a registry principal (API key holder) of the same name, so whoever could once append
an entry named after an admin could not become one. Entries written before roles existed carry
none. Policies naming a principal do match a file principal of that name, like any other.

Adding and removing entries is an admin action of the facade
(:meth:`~featurestore.FeatureStore.create_api_token`, audited); the functions here only edit the
file. Whoever can write the file itself can mint any token: it is created with mode 0600 and
should stay readable and writable by the service's account only. The service looks at the file
(one ``stat``) on every request, so a new or removed token counts from the next request on.

    token, entry = add_token(Path("api_tokens.json"), "ranking-service", roles=["serving"])
    TokenFile(Path("api_tokens.json")).resolve(token)   # Principal('ranking-service', ...)
    remove_token(Path("api_tokens.json"), entry.prefix)
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from featurestore.config import RepoConfig
from featurestore.errors import ConfigError, ObjectNotFoundError
from featurestore.governance.access import Principal

#: Environment variable naming the tokens file; wins over ``api.tokens_file``.
TOKENS_FILE_ENV = "FEATURESTORE_API_TOKENS_FILE"
TOKEN_PREFIX = "fst_"
#: How many characters of a token name its entry (as ``featurestore api token list`` shows).
PREFIX_LENGTH = 12
#: The kind of principal a file token acts as (the file is for the service's callers).
KIND = "service_account"


@dataclass(frozen=True)
class TokenEntry:
    """What the tokens file knows about a token (never the token itself)."""

    principal: str
    roles: tuple[str, ...]
    prefix: str
    created: str
    created_by: str | None

    def as_principal(self) -> Principal:
        """The principal a request with this token acts as: the entry's own roles only."""
        return Principal(self.principal, frozenset(self.roles), KIND)


def hash_token(token: str) -> str:
    """The stored form of ``token``: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_file_path(config: RepoConfig) -> Path | None:
    """The tokens file of ``config`` (``$FEATURESTORE_API_TOKENS_FILE`` wins over
    ``api.tokens_file``), or None when none is configured."""
    path = os.environ.get(TOKENS_FILE_ENV) or config.api.tokens_file
    return None if path is None else config.resolve(path)


def read_entries(path: Path) -> list[dict[str, Any]]:
    """The raw entries of the file at ``path`` (none when it does not exist)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"API tokens file {path}: cannot read it as JSON ({exc})") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(_well_formed(e) for e in entries):
        raise ConfigError(
            f'API tokens file {path}: expected {{"tokens": [{{"principal": ..., "roles": [...], '
            '"sha256": ...}, ...]}; recreate it with `featurestore api token create NAME`'
        )
    return entries


def _well_formed(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    roles = entry.get("roles", [])
    return (
        isinstance(entry.get("principal"), str)
        and isinstance(entry.get("sha256"), str)
        and isinstance(roles, list)
        and all(isinstance(r, str) for r in roles)
    )


def _entry(raw: dict[str, Any]) -> TokenEntry:
    return TokenEntry(
        principal=raw["principal"],
        roles=tuple(raw.get("roles", ())),
        # Entries written before prefixes were kept are named by their hash instead.
        prefix=raw.get("prefix") or f"sha256:{raw['sha256'][:PREFIX_LENGTH]}",
        created=str(raw.get("created", "")),
        created_by=raw.get("created_by"),
    )


def list_tokens(path: Path) -> list[TokenEntry]:
    """Every token entry of the file, oldest first."""
    return [_entry(raw) for raw in read_entries(path)]


def add_token(
    path: Path, principal: str, *, roles: Sequence[str] = (), created_by: str | None = None
) -> tuple[str, TokenEntry]:
    """Add a new random token for ``principal`` with ``roles``; return it (shown once) and its
    entry. Only its hash is written (the file is created with mode 0600)."""
    if not principal or not principal.strip():
        raise ConfigError("a token needs a principal name, e.g. `api token create ranking-service`")
    if any(not role or not role.strip() for role in roles):
        raise ConfigError(f"token roles must be non-empty names, got {list(roles)!r}")
    entries = read_entries(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    raw = {
        "principal": principal,
        "roles": sorted(set(roles)),
        "prefix": token[:PREFIX_LENGTH],
        "sha256": hash_token(token),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "created_by": created_by,
    }
    _write(path, [*entries, raw])
    return token, _entry(raw)


def remove_token(path: Path, prefix: str) -> TokenEntry:
    """Remove the one entry whose prefix (as listed) starts with ``prefix``; return it."""
    entries = read_entries(path)
    matching = [raw for raw in entries if prefix and _entry(raw).prefix.startswith(prefix)]
    if len(matching) != 1:
        what = "no token" if not matching else f"{len(matching)} tokens"
        raise ObjectNotFoundError(
            f"{what} in the API tokens file {path} start with {prefix!r}; "
            "see `featurestore api token list`"
        )
    _write(path, [raw for raw in entries if raw is not matching[0]])
    return _entry(matching[0])


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    # A whole new file renamed over the old one: a reader never sees half of it.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"tokens": entries}, out, indent=2)
    os.replace(tmp, path)


class TokenFile:
    """Resolves bearer tokens to principals from a tokens file (``path=None``: no file)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._principals: dict[str, Principal] = {}
        self._seen: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        if path is not None:
            self._reload(path)

    @property
    def enabled(self) -> bool:
        """Whether a tokens file is configured (then requests must carry a token)."""
        return self.path is not None

    def _reload(self, path: Path) -> None:
        # One stat per request (about a microsecond): a removed token is refused at once. The
        # inode changes on every rewrite (a rename), so same-tick rewrites are noticed too.
        try:
            st = path.stat()
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or (seen is None and self._principals):
            self._principals = {
                raw["sha256"]: _entry(raw).as_principal() for raw in read_entries(path)
            }
            self._seen = seen

    def resolve(self, token: str) -> Principal | None:
        """The principal of ``token`` (with its entry's roles), or None when the file has no
        such token."""
        if self.path is None:
            return None
        with self._lock:
            self._reload(self.path)
            return self._principals.get(hash_token(token))
