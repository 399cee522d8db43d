"""A registry file that does not exist, or that goes away under a running process: only `apply`
creates a registry; everything else says it is missing (the CLI with one line, the REST service
with 503 and a failing /health) instead of answering from an empty or deleted one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_server import DRIVER, Server, driver_stats, make_repo

from featurestore import FeatureStore
from featurestore.errors import RegistryNotFoundError
from featurestore.registry import open_registry

COMMAND = str(Path(sys.executable).parent / "featurestore")
LOOKUP = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1]}}


def registry_file(store: FeatureStore) -> Path:
    return store.repo_path / "data" / "registry.db"


def delete_registry(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (the lookup path looks at the registry once a second)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    opened = make_repo(tmp_path / "repo", "{type: sqlite, path: data/online.db}")
    try:
        yield opened
    finally:
        opened.close()


def test_only_apply_creates_the_registry(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "featurestore.yaml").write_text("project: fresh\n")
    path = root / "data" / "registry.db"
    with FeatureStore(root) as store:
        with pytest.raises(RegistryNotFoundError) as error:
            store.list_entities()
        assert str(path) in str(error.value)
        assert "run `featurestore apply`" in str(error.value)
        assert "featurestore init" in str(error.value)
        assert not path.exists()
    with FeatureStore(root) as store:
        store.apply([DRIVER])
        assert path.exists()
        assert [e.name for e in store.list_entities()] == ["driver"]


def test_open_registry_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with pytest.raises(RegistryNotFoundError, match="no registry at"):
        open_registry(url, create=False)
    assert not (tmp_path / "registry.db").exists()
    open_registry(url).close()  # creating is the default of the low-level function
    open_registry(url, create=False).close()


def test_a_replaced_registry_file_is_followed(store: FeatureStore, tmp_path: Path) -> None:
    path = registry_file(store)
    assert [v.name for v in store.list_feature_views()] == ["customer_profile", "driver_stats"]
    other = tmp_path / "other.db"
    with open_registry(f"sqlite:///{other}") as registry:
        registry.apply(store.project, [DRIVER, driver_stats()], delete_missing=False)
    delete_registry(path)
    with pytest.raises(RegistryNotFoundError, match="deleted while in use"):
        store.list_feature_views()
    os.replace(other, path)
    assert [v.name for v in store.list_feature_views()] == ["driver_stats"]


@pytest.mark.slow
def test_the_cli_does_not_recreate_a_deleted_registry(store: FeatureStore) -> None:
    path = registry_file(store)
    store.close()
    delete_registry(path)
    for args in (["list", "entities"], ["describe", "driver_stats"], ["plan"]):
        result = subprocess.run(
            [COMMAND, "--repo", str(store.repo_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result
        assert result.stderr.startswith(f"Error: no registry at {path}"), result.stderr
        assert "run `featurestore apply`" in result.stderr
        assert not path.exists(), args


def test_server_reports_a_deleted_registry_and_recovers(store: FeatureStore) -> None:
    path = registry_file(store)
    with Server(store) as server:
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        url = f"{server.url}/get-online-features"
        assert httpx.post(url, json=LOOKUP, timeout=10).status_code == 200
        delete_registry(path)

        health = httpx.get(f"{server.url}/health", timeout=10)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["registry"]["ok"] is False
        assert f"the registry {path} was deleted" in body["error"]["message"]

        eventually(lambda: httpx.post(url, json=LOOKUP, timeout=10).status_code == 503)
        lookup = httpx.post(url, json=LOOKUP, timeout=10).json()
        assert lookup["error"]["type"] == "RegistryNotFoundError"
        assert "deleted while in use" in lookup["error"]["message"]
        views = httpx.get(f"{server.url}/v1/feature-views", timeout=10)
        assert views.status_code == 503
        assert not path.exists()  # nothing re-created it behind the operator's back

        # `featurestore apply` elsewhere makes a new registry: the server follows it.
        with FeatureStore(store.repo_path) as other:
            other.apply([DRIVER, driver_stats()])
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        eventually(lambda: httpx.post(url, json=LOOKUP, timeout=10).status_code == 200)
        assert httpx.post(url, json=LOOKUP, timeout=10).json()["results"][1]["values"] == [0.5]
