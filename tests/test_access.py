"""Access control through every entry point: the SDK, the CLI and REST (the real server).

The repository is :mod:`access_repo`'s (analysts are denied ``pii`` features, mallory the
customer views, everything else is denied by default). Each denial must be in the audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from access_repo import (
    COMMAND,
    CUSTOMER,
    CUSTOMER_PROFILE,
    DRIVER,
    NOW,
    PRINCIPALS,
    ROOT,
    as_,
    make_repo,
)
from api_server import Server

from featurestore import FeatureStore
from featurestore.errors import AccessDeniedError, AuthenticationError


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The repository, its policies applied, materialized, and a token per principal."""
    return make_repo(tmp_path)


ENTITY_DF = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
PUSH_ROWS = {
    "driver_id": [3],
    "event_timestamp": [NOW.isoformat()],
    "conv_rate": [0.75],
    "ssn": ["789"],
    "trips": [1],
}

# (operation, call) pairs; each call does one thing through the SDK.
OPERATIONS: dict[str, Callable[[FeatureStore], Any]] = {
    "describe view": lambda s: s.get_feature_view("driver_stats"),
    "read_offline plain": lambda s: s.get_historical_features(
        ENTITY_DF, ["driver_stats:conv_rate"]
    ).to_pandas(),
    "read_offline pii": lambda s: s.get_historical_features(ENTITY_DF, ["driver_stats:ssn"]),
    "read_online plain": lambda s: s.get_online_features(
        ["driver_stats:conv_rate", "driver_stats:trips"], entity_rows=[{"driver_id": 1}]
    ),
    "read_online pii": lambda s: s.get_online_features(
        ["driver_stats:ssn"], entity_rows=[{"driver_id": 1}]
    ),
    "read_online safe service": lambda s: s.get_online_features(
        "safe", entity_rows=[{"driver_id": 1}]
    ),
    "read_online leaky service": lambda s: s.get_online_features(
        "leaky", entity_rows=[{"driver_id": 1}]
    ),
    "read_online customers": lambda s: s.get_online_features(
        ["customer_profile:age"], entity_rows=[{"customer_id": 7}]
    ),
    "write_online": lambda s: s.push("driver_push", PUSH_ROWS),
    "materialize": lambda s: s.materialize(NOW - timedelta(days=1), NOW, progress=False),
    "apply": lambda s: s.apply([DRIVER]),  # unchanged: allowed for anyone who may describe
    "admin: list keys": lambda s: s.list_keys(),
}
ALLOWED = {
    "admin": set(OPERATIONS),
    "analyst": {
        "describe view",
        "read_offline plain",
        "read_online plain",
        "read_online safe service",
        "read_online customers",
        "apply",
    },
    "ingestor": {"write_online", "apply"},
    "mallory": {
        "describe view",
        "read_offline plain",
        "read_online plain",
        "read_online safe service",
        "apply",
    },
    "anonymous": {"apply"},
}


@pytest.mark.parametrize("who", [*PRINCIPALS, "anonymous"])
def test_sdk_matrix(repo: tuple[Path, dict[str, str]], who: str) -> None:
    root, tokens = repo
    with as_(root, tokens.get(who)) as store:
        for operation, call in OPERATIONS.items():
            if operation in ALLOWED[who]:
                call(store)
            else:
                with pytest.raises(AccessDeniedError):
                    call(store)
    with FeatureStore(root, principal=ROOT) as admin:
        denied = admin.audit_log(action=None)
    name = PRINCIPALS.get(who, (None,))[0]
    refused = [r for r in denied if r.outcome == "denied" and r.principal == name]
    assert len(refused) == len(OPERATIONS) - len(ALLOWED[who])


def test_pii_feature_denied_while_the_rest_of_the_view_is_served(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    with as_(root, tokens["analyst"]) as store:
        values = store.get_online_features(
            ["driver_stats:conv_rate", "driver_stats:trips"], entity_rows=[{"driver_id": 1}]
        ).to_dict()
        assert values["conv_rate"] == [0.5]
        with pytest.raises(
            AccessDeniedError, match=r"'no-pii' denies read_online on feature:driver_stats:ssn"
        ):
            store.get_online_features(["driver_stats:ssn"], entity_rows=[{"driver_id": 1}])
        with pytest.raises(AccessDeniedError, match="ssn"):
            store.get_online_features("leaky", entity_rows=[{"driver_id": 1}])


def test_listing_hides_what_a_principal_may_not_describe(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    with as_(root, tokens["mallory"]) as store:
        assert [v.name for v in store.list_feature_views()] == ["driver_stats"]
    with as_(root, tokens["ingestor"]) as store:
        assert store.list_feature_views() == []


def test_unknown_or_revoked_tokens_are_refused_at_once(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    reader = as_(root, tokens["analyst"])
    reader.get_feature_view("driver_stats")
    with FeatureStore(root, principal=ROOT) as admin:
        [key] = [k for k in admin.list_keys() if k.principal == "bob"]
        admin.revoke_key(key.prefix)
    # The same process and a fresh one both refuse it now.
    with pytest.raises(AuthenticationError):
        FeatureStore(root, token=tokens["analyst"]).principal  # noqa: B018
    reader.close()
    with pytest.raises(AuthenticationError):
        as_(root, "fs_not-a-key").principal  # noqa: B018


def test_access_check_explains_the_decision(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    env = {**os.environ, "FEATURESTORE_TOKEN": tokens["admin"]}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COMMAND, "--repo", str(root), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    allowed = cli("access", "check", "bob", "read_online", "feature:driver_stats:conv_rate")
    assert allowed.returncode == 0, allowed.stderr
    assert (
        "ALLOW read_online feature:driver_stats:conv_rate: policy 'analysts-read'" in allowed.stdout
    )
    denied = cli("access", "check", "bob", "read_online", "feature_service:leaky")
    assert denied.returncode == 1
    assert "DENY  read_online feature:driver_stats:ssn: policy 'no-pii' denies" in denied.stdout
    default = cli("access", "check", "ingestor", "read_offline", "feature_view:driver_stats")
    assert default.returncode == 1
    assert "denied by default" in default.stdout
    both = cli("access", "check", "mallory", "read_online", "feature_view:customer_profile")
    assert "policy 'mallory-no-customers' denies" in both.stdout  # deny beats the analysts' allow
    # Without the admin token the CLI is anonymous: refused, and the refusal is audited.
    env.pop("FEATURESTORE_TOKEN")
    refused = cli("access", "keys", "list")
    assert refused.returncode == 1
    assert "denied by default" in refused.stderr
    env["FEATURESTORE_TOKEN"] = tokens["admin"]
    log = cli("audit", "--action", "admin", "--json")
    records = [json.loads(line) for line in log.stdout.splitlines()]
    assert any(r["outcome"] == "denied" and r["principal"] is None for r in records)
    keys = cli("access", "keys", "list")
    assert "ingestor" in keys.stdout
    assert "service_account" in keys.stdout


def test_cli_commands_obey_the_token(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo

    def cli(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COMMAND, "--repo", str(root), "--token", token, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = cli(
        tokens["analyst"],
        "get-online-features",
        "--features",
        "driver_stats:conv_rate",
        "--entity",
        "driver_id=1",
        "--json",
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["results"][1]["values"] == [0.5]
    pii = cli(
        tokens["analyst"],
        "get-online-features",
        "--features",
        "driver_stats:ssn",
        "--entity",
        "driver_id=1",
    )
    assert pii.returncode == 1
    assert "no-pii" in pii.stderr
    mat = cli(tokens["analyst"], "materialize", "2026-01-01T00:00:00", "2026-01-02T00:00:00")
    assert mat.returncode == 1
    assert "materialize" in mat.stderr


def test_rest_401_403_and_audit(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    store = FeatureStore(root)
    body = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1]}}
    pii = {"features": ["driver_stats:ssn"], "entities": {"driver_id": [1]}}
    try:
        with Server(store) as server:
            url = f"{server.url}/get-online-features"

            def post(payload: Any, token: str | None = None, path: str = url) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return httpx.post(path, json=payload, headers=headers, timeout=10)

            assert post(body).status_code == 401  # keys exist: a token is needed
            assert post(body, "fs_nope").status_code == 401
            ok = post(body, tokens["analyst"])
            assert ok.status_code == 200, ok.text
            assert ok.json()["results"][1]["values"] == [0.5]
            refused = post(pii, tokens["analyst"])
            assert refused.status_code == 403
            assert refused.json()["error"]["type"] == "AccessDeniedError"
            assert "no-pii" in refused.json()["error"]["message"]
            leaky = post(
                {"feature_service": "leaky", "entities": {"driver_id": [1]}}, tokens["analyst"]
            )
            assert leaky.status_code == 403
            push = {"push_source_name": "driver_push", "df": PUSH_ROWS, "to": "online"}
            assert post(push, tokens["analyst"], f"{server.url}/push").status_code == 403
            assert post(push, tokens["ingestor"], f"{server.url}/push").status_code == 200
            # principals x (read, read pii, push, read customers) over REST
            expected = {
                "admin": (200, 200, 200, 200),
                "analyst": (200, 403, 403, 200),
                "ingestor": (403, 403, 200, 403),
                "mallory": (200, 403, 403, 403),
            }
            customers = {"features": ["customer_profile:age"], "entities": {"customer_id": [7]}}
            for who, statuses in expected.items():
                got = (
                    post(body, tokens[who]).status_code,
                    post(pii, tokens[who]).status_code,
                    post(push, tokens[who], f"{server.url}/push").status_code,
                    post(customers, tokens[who]).status_code,
                )
                assert got == statuses, who

            # Registry browsing shows what the caller may describe.
            def views(token: str) -> list[str]:
                headers = {"Authorization": f"Bearer {token}"}
                answer = httpx.get(f"{server.url}/v1/feature-views", headers=headers, timeout=10)
                return [v["name"] for v in answer.json()["feature_views"]]

            assert views(tokens["admin"]) == ["customer_profile", "driver_stats"]
            assert views(tokens["mallory"]) == ["driver_stats"]
            assert views(tokens["ingestor"]) == []
            # Revoked: refused on the very next request, by the running server.
            with FeatureStore(root, principal=ROOT) as admin:
                [key] = [k for k in admin.list_keys() if k.principal == "bob"]
                admin.revoke_key(key.prefix)
            assert post(body, tokens["analyst"]).status_code == 401
    finally:
        store.close()
    with FeatureStore(root, principal=ROOT) as admin:
        records = admin.audit_log()
    denied = [(r.principal, r.action, r.resource) for r in records if r.outcome == "denied"]
    assert ("bob", "read_online", "feature:driver_stats:ssn") in denied
    assert ("bob", "write_online", "feature_view:driver_stats") in denied
    reads = [r for r in records if r.action == "read_online" and r.outcome == "allowed"]
    assert sum(r.count for r in reads if r.principal == "bob") >= 1
    pushes = [r for r in records if r.action == "push" and r.principal == "ingestor"]
    assert len(pushes) == 2  # one before the matrix, one in it


def test_no_policies_means_open(tmp_path: Path) -> None:
    root = tmp_path / "open"
    (root / "data").mkdir(parents=True)
    pd.DataFrame({"customer_id": [7], "event_timestamp": [NOW], "age": [31]}).to_parquet(
        root / "data" / "customers.parquet"
    )
    (root / "featurestore.yaml").write_text("project: open\n")
    with FeatureStore(root) as store:
        store.apply([CUSTOMER, CUSTOMER_PROFILE])
        assert store.principal.name == "anonymous"
        assert store.list_keys() == []
        [decision] = store.check_access("anyone", "delete", "feature_view:customer_profile")
        assert decision.allowed
        assert "no policies" in decision.reason


@pytest.mark.postgres
def test_keys_on_a_postgres_registry_are_revoked_at_once(tmp_path: Path, postgres_url: str) -> None:
    """Without SQLite's data_version, other stores see a revocation through the state token,
    read on every call by the key store's change probe: the very next resolve refuses it."""
    root = tmp_path / "pg"
    root.mkdir()
    (root / "featurestore.yaml").write_text(f"project: pgkeys\nregistry: '{postgres_url}'\n")
    with FeatureStore(root) as admin, FeatureStore(root) as server:
        token, info = admin.create_key("carol", roles=["analyst"])
        keys = server.guard.keys
        assert keys.resolve(token).roles == frozenset({"analyst"})
        assert keys.any
        admin.revoke_key(info.prefix)
        with pytest.raises(AuthenticationError):
            keys.resolve(token)
        assert not keys.any


def test_online_read_auditing_is_configurable(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    config = root / "featurestore.yaml"
    rows = [{"driver_id": 1}]

    def reads_of(principal: str) -> int:
        with FeatureStore(root, principal=ROOT) as admin:
            records = admin.audit_log(action="read_online", principal=principal)
        return sum(r.count for r in records if r.outcome == "allowed")

    with as_(root, tokens["analyst"]) as store:
        for _ in range(3):
            store.get_online_features(["driver_stats:conv_rate"], entity_rows=rows)
    assert reads_of("bob") == 3  # aggregated, written when the store closes
    config.write_text(config.read_text() + "audit: {online_reads: 'off'}\n")
    with as_(root, tokens["analyst"]) as store:
        store.get_online_features(["driver_stats:conv_rate"], entity_rows=rows)
        with pytest.raises(AccessDeniedError):
            store.get_online_features(["driver_stats:ssn"], entity_rows=rows)
    assert reads_of("bob") == 3
    with FeatureStore(root, principal=ROOT) as admin:
        denied = [r for r in admin.audit_log(principal="bob") if r.outcome == "denied"]
    assert len(denied) == 1  # denials are recorded whatever the setting
