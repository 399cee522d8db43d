"""The REST service end to end: the real uvicorn server on a free port, against a repository
on the SQLite online store and one on Redis (db 8, a project of its own per test)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import (
    NOW,
    Server,
    driver_stats,
    free_port,
    make_repo,
    push,
    push_body,
    stored_files,
    wait_until_up,
)
from conftest import require_redis

from api import ApiSettings
from api.auth import create_token
from featurestore import FeatureStore

REDIS_URL = os.environ.get("FEATURESTORE_TEST_API_REDIS_URL", "redis://127.0.0.1:6379/8")
SQLITE_ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
COMMAND = str(Path(sys.executable).parent / "featurestore")


def redis_online(url: str) -> str:
    return f"{{type: redis, url: '{url}', expiry_grace: 36500d}}"


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    if request.param == "redis":
        require_redis(REDIS_URL)
        online = redis_online(REDIS_URL)
    else:
        online = SQLITE_ONLINE
    opened = make_repo(tmp_path / "repo", online)
    try:
        yield opened
    finally:
        opened.teardown()
        opened.close()


@pytest.fixture
def server(store: FeatureStore) -> Iterator[Server]:
    with Server(store) as running:
        yield running


def post(server: Server, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/get-online-features", json=body, timeout=10, **kwargs)


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """A JSON error body of the one shape, naming ``words``, without a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"type", "message"}
    assert "Traceback" not in response.text
    for word in words:
        assert word in error["message"], error
    return dict(error)


# -- /get-online-features --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "entities", "full"),
    [
        (["driver_stats:conv_rate"], {"driver_id": [1]}, False),
        (
            ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:acc_rate"],
            {"driver_id": [1, 2, 3, 99, 1]},
            False,
        ),
        (
            ["customer_profile:tier", "driver_stats:conv_rate", "customer_profile:age"],
            {"driver_id": [4, 2, 5], "customer_id": [7, 8, 9]},
            True,
        ),
    ],
)
def test_lookups_equal_sdk_value_by_value(
    server: Server,
    store: FeatureStore,
    features: list[str],
    entities: dict[str, list[int]],
    full: bool,
) -> None:
    response = post(
        server, {"features": features, "entities": entities, "full_feature_names": full}
    )
    assert response.status_code == 200, response.text
    expected = store.get_online_features(
        features, entities=entities, full_feature_names=full
    ).to_feast_json()
    assert response.json() == json.loads(json.dumps(expected))
    body = response.json()
    # Join keys first (in the order of the views requested), then features in request order.
    names = body["metadata"]["feature_names"]
    assert set(names[: len(entities)]) == set(entities)
    assert names[len(entities) :] == [
        f.split(":")[1] if not full else f.replace(":", "__") for f in features
    ]
    assert len(body["results"]) == len(names)
    assert all(len(r["values"]) == len(next(iter(entities.values()))) for r in body["results"])


def test_statuses_and_values(server: Server) -> None:
    body = post(
        server,
        {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1, 2, 3, 99]}},
    ).json()
    assert body["metadata"]["feature_names"] == ["driver_id", "conv_rate"]
    keys, conv = body["results"]
    assert keys["values"] == [1, 2, 3, 99]
    assert conv["statuses"] == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert conv["values"] == [0.5, None, None, None]
    assert conv["event_timestamps"][3] == "1970-01-01T00:00:00Z"


def test_feast_request_with_feature_service(server: Server, store: FeatureStore) -> None:
    entities = {"driver_id": [1, 4], "customer_id": [8, 7]}
    response = post(server, {"feature_service": "ranking", "entities": entities})
    assert response.status_code == 200, response.text
    expected = store.get_online_features("ranking", entities=entities).to_feast_json()
    assert response.json() == json.loads(json.dumps(expected))
    assert response.json()["metadata"]["feature_names"] == [
        "driver_id",
        "customer_id",
        "conv_rate",
        "trips",
        "tier",
    ]


# -- /v1 ----------------------------------------------------------------------------------


def test_registry_endpoints(server: Server, store: FeatureStore) -> None:
    store.apply([driver_stats(description="changed, metadata only")])
    store.apply([driver_stats(description="changed, metadata only", ttl=timedelta(hours=3))])
    get = lambda path: httpx.get(f"{server.url}{path}", timeout=10)  # noqa: E731
    views = get("/v1/feature-views").json()["feature_views"]
    assert sorted(v["name"] for v in views) == ["customer_profile", "driver_stats"]
    one = get("/v1/feature-views/driver_stats").json()
    assert one["feature_view"]["name"] == "driver_stats"
    changes = [(v["version"], v["change"]) for v in one["versions"]]
    assert changes == [(1, "added"), (1, "metadata"), (2, "changed")]
    assert_error(get("/v1/feature-views/nope"), 404, "nope")
    assert [s["name"] for s in get("/v1/feature-services").json()["feature_services"]] == [
        "ranking"
    ]
    assert sorted(e["name"] for e in get("/v1/entities").json()["entities"]) == [
        "customer",
        "driver",
    ]

    def refs(query: str) -> list[str]:
        response = get(f"/v1/features{query}")
        assert response.status_code == 200, response.text
        return sorted(f["reference"] for f in response.json()["features"])

    assert len(refs("")) == 5
    assert refs("?q=CONV") == ["driver_stats:conv_rate"]
    assert refs("?q=offers accepted") == ["driver_stats:conv_rate"]  # description
    assert refs("?q=bo@example") == ["customer_profile:age", "customer_profile:tier"]  # owner
    assert refs("?tag=pii=no") == ["driver_stats:acc_rate"]
    assert refs("?tag=team=growth") == ["customer_profile:age", "customer_profile:tier"]
    assert refs("?tag=team=pricing&tag=pii") == ["driver_stats:acc_rate"]
    assert refs("?q=team=growth&tag=team") == ["customer_profile:age", "customer_profile:tier"]
    assert refs("?q=nothing-like-this") == []


# -- health and metrics ---------------------------------------------------------------------


def test_health_and_metrics(server: Server, store: FeatureStore) -> None:
    health = httpx.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["checks"] == {
        "registry": {"ok": True},
        "online_store": {"ok": True},
        "freshness": {"ok": True, "breached": []},  # no view declares a freshness objective
    }
    post(server, {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1, 2, 99]}})
    post(server, {"features": ["nope:x"], "entities": {"driver_id": [1]}})
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert (
        'featurestore_api_requests_total{endpoint="/get-online-features",method="POST",status="200"} 1.0'
        in text
    )
    assert 'endpoint="/get-online-features",method="POST",status="400"} 1.0' in text
    assert 'featurestore_api_request_seconds_count{endpoint="/health",method="GET"} 1.0' in text
    assert "featurestore_online_lookup_seconds_count 1.0" in text
    assert "featurestore_online_store_ping_seconds_count 1.0" in text
    for status in ("PRESENT", "NULL_VALUE", "NOT_FOUND"):
        assert f'featurestore_lookup_statuses_total{{status="{status}"}} 1.0' in text


# -- bad input ------------------------------------------------------------------------------

FEATURES = ["driver_stats:conv_rate"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, ["not valid JSON"]),
        (b"", 400, ["not valid JSON"]),
        (b"[1, 2]", 422, ["JSON object"]),
        (b'{"features": ["driver_stats:conv_rate"]}', 422, ["entities"]),
        ({"entities": {"driver_id": [1]}}, 422, ["features", "feature_service"]),
        ({"features": "driver_stats:conv_rate", "entities": {"driver_id": [1]}}, 422, ["list"]),
        ({"features": [1], "entities": {"driver_id": [1]}}, 422, ["features"]),
        ({"features": FEATURES, "entities": {"driver_id": 1}}, 422, ["driver_id", "list"]),
        ({"features": FEATURES, "entities": {"driver_id": [[1]]}}, 422, ["driver_id"]),
        ({"features": FEATURES, "entities": {"driver_id": [1], "x": [1, 2]}}, 422, ["length"]),
        (
            {"features": FEATURES, "entities": {"driver_id": [1]}, "full_feature_names": "yes"},
            422,
            ["full_feature_names"],
        ),
        ({"features": ["nope:conv_rate"], "entities": {"driver_id": [1]}}, 400, ["nope"]),
        ({"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}}, 400, ["nope"]),
        ({"features": ["no_colon"], "entities": {"driver_id": [1]}}, 400, ["no_colon"]),
        ({"feature_service": "nope", "entities": {"driver_id": [1]}}, 404, ["nope"]),
        ({"features": FEATURES, "entities": {"customer_id": [1]}}, 422, ["driver_id"]),
        ({"features": FEATURES, "entities": {"driver_id": ["a"]}}, 422, ["driver_id", "Int64"]),
        ({"features": FEATURES, "entities": {"driver_id": [1.5]}}, 422, ["driver_id"]),
        ({"features": FEATURES, "entities": {"driver_id": [2**63]}}, 422, ["driver_id"]),
        ({"features": FEATURES, "entities": {"driver_id": list(range(1001))}}, 413, ["1000"]),
    ],
)
def test_bad_input_gets_4xx_json(server: Server, body: Any, status: int, words: list[str]) -> None:
    if isinstance(body, bytes):
        response = httpx.post(
            f"{server.url}/get-online-features",
            content=body,
            headers={"content-type": "application/json"},
            timeout=10,
        )
    else:
        response = post(server, body)
    assert_error(response, status, *words)


def test_unknown_paths_and_methods_are_json(server: Server) -> None:
    assert_error(httpx.get(f"{server.url}/nope", timeout=10), 404)
    assert_error(httpx.get(f"{server.url}/get-online-features", timeout=10), 405)
    assert_error(httpx.get(f"{server.url}/v1/feature-views/%00", timeout=10), 404)
    assert_error(httpx.get(f"{server.url}/v1/feature-views/", timeout=10), 404)  # no redirect


def test_openapi_describes_the_feast_endpoints(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    for path in ("/get-online-features", "/push"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["type"] == "object"


def test_lookup_metrics_count_the_fast_path(server: Server) -> None:
    """The lookup is answered in front of FastAPI (api.fastpath); it still counts and times."""
    post(server, {"features": FEATURES, "entities": {"driver_id": [1]}})
    assert_error(post(server, {"features": FEATURES}), 422)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    ok = 'featurestore_api_requests_total{endpoint="/get-online-features",method="POST",status="200"}'
    bad = 'featurestore_api_requests_total{endpoint="/get-online-features",method="POST",status="422"}'
    assert ok in text
    assert bad in text
    assert (
        'featurestore_api_request_seconds_count{endpoint="/get-online-features",method="POST"}'
        in text
    )


def test_max_entities_is_configurable(store: FeatureStore) -> None:
    with Server(store, ApiSettings(max_entities=2)) as server:
        ok = post(server, {"features": FEATURES, "entities": {"driver_id": [1, 2]}})
        assert ok.status_code == 200
        too_many = post(server, {"features": FEATURES, "entities": {"driver_id": [1, 2, 3]}})
        assert_error(too_many, 413, "limit is 2")


# -- auth -----------------------------------------------------------------------------------


def test_tokens(store: FeatureStore, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    token = create_token(tokens, "ranking-service")
    assert token not in tokens.read_text()
    assert "ranking-service" in tokens.read_text()
    body = {"features": FEATURES, "entities": {"driver_id": [1]}}
    with Server(store, ApiSettings(tokens_file=tokens)) as server:
        assert_error(post(server, body), 401, "Bearer")
        assert_error(post(server, body, headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(post(server, body, headers={"Authorization": f"Basic {token}"}), 401)
        good = post(server, body, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200, good.text
        assert_error(httpx.get(f"{server.url}/v1/entities", timeout=10), 401)
        listed = httpx.get(
            f"{server.url}/v1/entities", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert listed.status_code == 200
        # Probes and scrapers need no token.
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
        # A token added while the service runs works within a second or two.
        second = create_token(tokens, "batch-job")
        deadline = time.monotonic() + 5
        while post(server, body, headers={"Authorization": f"Bearer {second}"}).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_principal_reaches_the_facade(
    store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens.json"
    token = create_token(tokens, "ranking-service")
    seen: list[tuple[str, str | None]] = []
    original_lookup, original_push = store.get_online_features_async, store.push

    async def lookup_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("lookup", getattr(kwargs.get("principal"), "name", None)))
        return await original_lookup(*args, **kwargs)

    def push_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("push", getattr(kwargs.get("principal"), "name", None)))
        return original_push(*args, **kwargs)

    monkeypatch.setattr(store, "get_online_features_async", lookup_spy)
    monkeypatch.setattr(store, "push", push_spy)
    body = {"features": FEATURES, "entities": {"driver_id": [1]}}
    auth = {"Authorization": f"Bearer {token}"}
    with Server(store, ApiSettings(tokens_file=tokens)) as server:
        assert post(server, body, headers=auth).status_code == 200
        assert push(server, push_body("online", 1, 0.5, NOW), headers=auth).status_code == 200
        assert_error(push(server, push_body("online", 1, 0.5, NOW)), 401)
    with Server(store) as server:
        assert post(server, body).status_code == 200
    assert seen == [("lookup", "ranking-service"), ("push", "ranking-service"), ("lookup", None)]


@pytest.mark.slow
def test_token_cli_and_yaml_config(tmp_path: Path) -> None:
    store = make_repo(
        tmp_path / "repo", SQLITE_ONLINE, api="api: {tokens_file: secrets/tokens.json}\n"
    )
    try:
        env = {k: v for k, v in os.environ.items() if k != "FEATURESTORE_API_TOKENS_FILE"}
        result = subprocess.run(
            [COMMAND, "--repo", str(store.repo_path), "api", "token", "create", "svc"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip()
        stored = (store.repo_path / "secrets" / "tokens.json").read_text()
        assert token not in stored
        assert "svc" in stored
        body = {"features": FEATURES, "entities": {"driver_id": [1]}}
        with Server(store) as server:  # settings from featurestore.yaml
            assert_error(post(server, body), 401)
            assert (
                post(server, body, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            )
    finally:
        store.close()


# -- Redis down and back --------------------------------------------------------------------


@pytest.mark.redis
def test_redis_down_gives_503_and_recovers(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set, so redis-server must be installed")
        pytest.skip("REDIS TESTS SKIPPED: redis-server is not installed")
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert _wait_redis(port), "the throwaway redis-server did not start"
        return process

    redis_process = start()
    try:
        store = make_repo(tmp_path / "repo", redis_online(f"redis://127.0.0.1:{port}/0"))
        body = {"features": FEATURES, "entities": {"driver_id": [1]}}
        with Server(store) as server:
            assert post(server, body).status_code == 200
            redis_process.kill()
            redis_process.wait(timeout=10)
            error = assert_error(post(server, body), 503, "Redis")
            assert error["type"] == "OnlineStoreError"
            pushed = httpx.post(
                f"{server.url}/push",
                json=push_body("online_and_offline", 70, 0.5, NOW),
                timeout=30,
            )
            assert_error(pushed, 503, "nothing was written offline")
            assert stored_files(store) == []
            health = httpx.get(f"{server.url}/health", timeout=30)
            assert health.status_code == 503
            assert "online_store" in health.json()["error"]["message"]
            assert health.json()["checks"]["registry"] == {"ok": True}
            redis_process = start()
            store.materialize(NOW - timedelta(days=1), NOW, progress=False)
            again = post(server, body)
            assert again.status_code == 200, again.text
            assert again.json()["results"][1]["values"] == [0.5]
            pushed = httpx.post(
                f"{server.url}/push", json=push_body("online", 70, 0.5, NOW), timeout=30
            )
            assert pushed.status_code == 200, pushed.text
            assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        store.close()
    finally:
        redis_process.kill()
        redis_process.wait(timeout=10)


def _wait_redis(port: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# -- featurestore serve ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_command(tmp_path: Path, workers: int) -> None:
    store = make_repo(tmp_path / "repo", SQLITE_ONLINE)
    store.close()
    port = free_port()
    process = subprocess.Popen(
        [
            COMMAND,
            "--repo",
            str(tmp_path / "repo"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, timeout=120)  # workers start slowly on a loaded machine
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        response = httpx.post(
            f"{url}/get-online-features",
            json={"features": FEATURES, "entities": {"driver_id": [1]}},
            timeout=10,
        )
        assert response.json()["results"][1]["values"] == [0.5]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode()
