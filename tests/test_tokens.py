"""Who may mint and revoke credentials, and how fast a revocation bites, on both registries.

One guarded repository: ``alice`` holds an admin key, ``bob`` a reader key (``describe`` and
``read_online``). Revoking bob's key from another connection must refuse him on the very next
REST request and make an already open SDK store fail before its next read; minting or revoking
tokens (API keys and the REST tokens file) needs ``admin`` and is audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import Server, make_repo

from featurestore import FeatureStore, Policy
from featurestore.errors import AccessDeniedError, AuthenticationError
from featurestore.governance.access import Principal

ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]
LOOKUP = {"features": FEATURES, "entities": {"driver_id": [1]}}
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(name="readers", roles=["reader"], actions=["describe", "read_online"]),
]
ROOT = Principal("root", frozenset({"admin"}))


class Guarded:
    """The repository, its registry URL and the principals' tokens."""

    def __init__(self, root: Path, alice: str, bob: str) -> None:
        self.root = root
        self.alice = alice
        self.bob = bob


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Guarded]:
    if request.param == "postgres":
        registry = request.getfixturevalue("postgres_url")
    else:
        registry = f"sqlite:///{tmp_path / 'registry.db'}"
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
