"""Browsing and checking obey the same rights as reading, through the facade.

``consistency-check`` shows values (the examples of differing keys), so it needs what the
lookups and retrievals it compares need: a principal denied ``read_online`` on a feature is
refused, as a lookup of that feature is. ``list``, ``describe`` and ``history`` show only what
the principal may ``describe``, in the CLI as in the SDK and the REST service's ``/v1`` routes.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from access_repo import COMMAND, NOW, ROOT, as_, make_repo
from api_server import Server

from featurestore import FeatureStore, Policy, Resource
from featurestore.errors import AccessDeniedError

LEAK = "999-LEAK"
#: Scientists read everything offline, but pii features never online.
SCIENTISTS = [
    Policy(
        name="scientists", roles=["scientist"], actions=["describe", "read_offline", "read_online"]
    ),
    Policy(
        name="no-pii-online",
        effect="deny",
        roles=["scientist"],
        actions=["read_online"],
        resources=[Resource(kind="feature", tags={"pii": "true"})],
    ),
]


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, tokens = make_repo(tmp_path)
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply(SCIENTISTS)
        tokens["scientist"], _ = admin.create_key("carol", roles=["scientist"])
        # Online only: the check then reports driver 1's ssn as a mismatch, with its values.
        row = {"driver_id": [1], "event_timestamp": [NOW - timedelta(minutes=30)]}
        admin.push("driver_push", {**row, "conv_rate": [0.5], "ssn": [LEAK], "trips": [10]})
    return root, tokens


def cli(root: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "--repo", str(root), "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_consistency_check_refuses_features_the_principal_may_not_read_online(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    check = ("consistency-check", "--views", "driver_stats", "--seed", "1", "--as-of", "now")
    admin = cli(root, tokens["admin"], *check)
    assert f"online={LEAK!r}" in admin.stdout, admin.stderr  # the values are in the report
    scientist = cli(root, tokens["scientist"], *check)
    assert scientist.returncode == 1
    assert LEAK not in scientist.stdout + scientist.stderr
    assert "'no-pii-online' denies read_online on feature:driver_stats:ssn" in scientist.stderr
    with as_(root, tokens["scientist"]) as store:
        # What a lookup of the same features answers.
        with pytest.raises(AccessDeniedError, match="no-pii-online"):
            store.get_online_features(["driver_stats:ssn"], entity_rows=[{"driver_id": 1}])
        with pytest.raises(AccessDeniedError, match="no-pii-online"):
            store.consistency_check(sample=10, seed=1)
    with FeatureStore(root, principal=ROOT) as admin_store:
        denied = [
            (r.action, r.resource)
            for r in admin_store.audit_log(principal="carol")
            if r.outcome == "denied"
        ]
    assert denied == [("read_online", "feature:driver_stats:ssn")] * 3


def test_cli_list_describe_and_history_show_only_what_may_be_described(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    everything = cli(root, tokens["admin"], "list", "feature-views")
    assert "customer_profile" in everything.stdout, everything.stderr
    listed = cli(root, tokens["mallory"], "list", "feature-views")
    assert listed.returncode == 0, listed.stderr
    assert "driver_stats" in listed.stdout
    assert "customer_profile" not in listed.stdout
    for command in ("describe", "history"):
        refused = cli(root, tokens["mallory"], command, "customer_profile")
        assert refused.returncode == 1, command
        assert "'mallory-no-customers' denies describe" in refused.stderr, command
        assert "customer_profile" not in refused.stdout, command
    assert cli(root, tokens["mallory"], "history", "driver_stats").returncode == 0
    assert (
        '"name": "driver_stats"' in cli(root, tokens["mallory"], "describe", "driver_stats").stdout
    )
    # The ingestor may describe nothing.
    for what, name in (("entities", "driver"), ("feature-services", "leaky")):
        shown = cli(root, tokens["ingestor"], "list", what)
        assert shown.returncode == 0, shown.stderr
        assert name not in shown.stdout, what
    with as_(root, tokens["mallory"]) as mallory:
        assert [e.version for e in mallory.history("driver_stats")] == [1]
        with pytest.raises(AccessDeniedError, match="mallory-no-customers"):
            mallory.history("customer_profile")


def test_rest_view_history_is_the_facades(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    store = FeatureStore(root)
    try:
        with Server(store) as server:

            def view(name: str, token: str) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"}
                return httpx.get(f"{server.url}/v1/feature-views/{name}", headers=headers)

            shown = view("driver_stats", tokens["mallory"])
            assert shown.status_code == 200, shown.text
            assert [v["version"] for v in shown.json()["versions"]] == [1]
            assert view("customer_profile", tokens["mallory"]).status_code == 403
            assert view("customer_profile", tokens["ingestor"]).status_code == 403
    finally:
        store.close()
