"""Who may mint and revoke credentials, and how fast a revocation bites, on both registries.

One guarded repository: ``alice`` holds an admin key, ``bob`` a reader key (``describe`` and
``read_online``). Revoking bob's key from another connection must refuse him on the very next
REST request and make an already open SDK store fail before its next read; minting or revoking
tokens (API keys and the REST tokens file) needs ``admin`` and is audited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import Server, make_repo

from api import ApiSettings
from api.auth import create_token
from featurestore import FeatureStore, Policy
from featurestore.errors import AccessDeniedError, AuthenticationError, ObjectNotFoundError
from featurestore.governance.access import Principal
from featurestore.governance.token_file import TokenFile, hash_token, list_tokens, remove_token

ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]
LOOKUP = {"features": FEATURES, "entities": {"driver_id": [1]}}
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(name="readers", roles=["reader"], actions=["describe", "read_online"]),
]
ROOT = Principal("root", frozenset({"admin"}))
COMMAND = str(Path(sys.executable).parent / "featurestore")


class Guarded:
    """The repository, its registry URL and the principals' tokens."""

    def __init__(self, root: Path, alice: str, bob: str) -> None:
        self.root = root
        self.alice = alice
        self.bob = bob


def guarded_repo(tmp_path: Path, registry: str) -> Iterator[Guarded]:
    # make_repo appends its last argument to featurestore.yaml: here, the registry to use.
    store = make_repo(tmp_path / "repo", ONLINE, f"registry: '{registry}'\n")
    try:
        store.apply(POLICIES)  # no policy yet: the store is open, so anyone may bring them
        with FeatureStore(store.repo_path, principal=ROOT) as root:
            alice, _ = root.create_key("alice", roles=["admin"])
            bob, _ = root.create_key("bob", roles=["reader"])
        yield Guarded(store.repo_path, alice, bob)
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Guarded]:
    """The guarded repository on each registry."""
    if request.param == "postgres":
        registry = request.getfixturevalue("postgres_url")
    else:
        registry = f"sqlite:///{tmp_path / 'registry.db'}"
    yield from guarded_repo(tmp_path, registry)


@pytest.fixture
def guarded_sqlite(tmp_path: Path) -> Iterator[Guarded]:
    """The guarded repository on SQLite (for what does not depend on the registry)."""
    yield from guarded_repo(tmp_path, f"sqlite:///{tmp_path / 'registry.db'}")


def lookup(server: Server, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/get-online-features",
        json=LOOKUP,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def read(store: FeatureStore) -> None:
    store.get_online_features(FEATURES, entity_rows=[{"driver_id": 1}])


def test_a_revoked_key_is_refused_by_the_next_request_and_the_next_read(guarded: Guarded) -> None:
    serving = FeatureStore(guarded.root)
    by_token = FeatureStore(guarded.root, token=guarded.bob)
    by_name = FeatureStore(guarded.root, principal="bob")  # roles: those of bob's active keys
    # Another store: its own registry connections, as another process would have.
    admin = FeatureStore(guarded.root, token=guarded.alice)
    try:
        [key] = [k for k in admin.list_keys() if k.principal == "bob"]
        with Server(serving) as server:
            read(by_token)
            read(by_name)
            assert lookup(server, guarded.bob).status_code == 200
            admin.revoke_key(key.prefix)  # right after a request: no interval has passed
            refused = lookup(server, guarded.bob)
            assert refused.status_code == 401, refused.text
            assert "revoked" in refused.json()["error"]["message"]
            with pytest.raises(AuthenticationError, match="revoked"):
                read(by_token)
            with pytest.raises(AccessDeniedError, match="bob"):
                read(by_name)  # bob's roles went with his key
            assert lookup(server, guarded.alice).status_code == 200  # nobody else is affected
    finally:
        for store in (serving, by_token, by_name, admin):
            store.close()


def test_minting_and_revoking_tokens_needs_admin_and_is_audited(
    guarded_sqlite: Guarded, tmp_path: Path
) -> None:
    root, tokens_file = guarded_sqlite.root, tmp_path / "secrets" / "tokens.json"

    def cli(token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_TOKEN"}
        env["FEATURESTORE_API_TOKENS_FILE"] = str(tokens_file)
        if token is not None:
            env["FEATURESTORE_TOKEN"] = token
        return subprocess.run(
            [COMMAND, "--repo", str(root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    # A reader, or nobody, cannot mint a token (nor an API key): refused, nothing written.
    for who in (guarded_sqlite.bob, None):
        minted = cli(who, "api", "token", "create", "mint", "--role", "admin")
        assert minted.returncode == 1, minted.stdout
        assert "denies admin on project" in minted.stderr or "denied by default" in minted.stderr
        assert not tokens_file.exists()
    keyed = cli(guarded_sqlite.bob, "access", "keys", "create", "mint", "--role", "admin")
    assert keyed.returncode == 1
    assert "denied by default" in keyed.stderr
    # The admin can; the token acts with the roles given, and works on the service.
    created = cli(guarded_sqlite.alice, "api", "token", "create", "svc", "--role", "reader")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token not in tokens_file.read_text()
    with FeatureStore(root, token=guarded_sqlite.alice) as admin:
        [entry] = admin.list_api_tokens(tokens_file=tokens_file)
    assert (entry.principal, entry.roles, entry.created_by) == ("svc", ("reader",), "alice")
    serving = FeatureStore(root)
    try:
        with Server(serving, ApiSettings(tokens_file=tokens_file)) as server:
            assert lookup(server, token).status_code == 200
            refused = cli(guarded_sqlite.bob, "api", "token", "revoke", entry.prefix)
            assert refused.returncode == 1
            assert lookup(server, token).status_code == 200
            # Revoked by another process: the service refuses it on its next request.
            revoked = cli(guarded_sqlite.alice, "api", "token", "revoke", entry.prefix[:8])
            assert revoked.returncode == 0, revoked.stderr
            assert lookup(server, token).status_code == 401
    finally:
        serving.close()
    with FeatureStore(root, token=guarded_sqlite.alice) as admin:
        records = admin.audit_log(action="admin")
    done = [(r.principal, r.resource, r.detail["change"]) for r in records if r.outcome == "ok"]
    resource = f"api_token:{entry.prefix}"
    assert ("alice", resource, "created") in done
    assert ("alice", resource, "revoked") in done
    denied = [r.principal for r in records if r.outcome == "denied"]
    assert denied.count("bob") == 3  # two token commands and one key
    assert denied.count(None) == 1


def test_a_tokens_file_entry_never_takes_a_registry_principals_roles(
    guarded_sqlite: Guarded, tmp_path: Path
) -> None:
    """The escalation: anyone able to add an entry named ``alice`` acted with alice's admin
    key's roles. An entry acts with its own roles only."""
    tokens_file = tmp_path / "tokens.json"
    impostor = create_token(tokens_file, "alice")  # an entry without roles, as old files hold
    with FeatureStore(guarded_sqlite.root, token=guarded_sqlite.alice) as admin:
        reader, _ = admin.create_api_token("ranker", roles=["reader"], tokens_file=tokens_file)
    serving = FeatureStore(guarded_sqlite.root)
    try:
        with Server(serving, ApiSettings(tokens_file=tokens_file)) as server:
            denied = lookup(server, impostor)
            assert denied.status_code == 403, denied.text
            assert "alice" in denied.json()["error"]["message"]
            assert lookup(server, reader).status_code == 200
            assert lookup(server, guarded_sqlite.alice).status_code == 200  # her key still works
    finally:
        serving.close()


def test_an_entry_of_an_older_tokens_file_acts_with_no_roles_and_can_be_revoked(
    tmp_path: Path,
) -> None:
    """Files written before entries had roles: such a token is still accepted, as its
    principal with no roles (never the roles of that name's API keys); it is listed by its
    hash, and revoking it by that name removes it from the next request on."""
    tokens_file = tmp_path / "tokens.json"
    old_token = "fst_written-by-an-older-version"
    tokens_file.write_text(
        json.dumps({"tokens": [{"principal": "alice", "sha256": hash_token(old_token)}]})
    )
    tokens = TokenFile(tokens_file)
    assert tokens.resolve(old_token) == Principal("alice", frozenset(), "service_account")
    [entry] = list_tokens(tokens_file)
    assert entry.prefix == f"sha256:{hash_token(old_token)[:12]}"
    assert remove_token(tokens_file, entry.prefix[:10]) == entry
    assert tokens.resolve(old_token) is None
    with pytest.raises(ObjectNotFoundError, match="no token"):
        remove_token(tokens_file, entry.prefix)
