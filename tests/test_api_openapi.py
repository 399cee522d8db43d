"""The OpenAPI document is honest: `schemathesis run --checks all` against the real server (a
bounded number of examples, a fixed seed) finds nothing, and the document states the error
bodies, "features xor feature_service" and /metrics' content type."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import Server, make_repo

from featurestore import FeatureStore

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("openapi") / "repo"
    store: FeatureStore = make_repo(
        root, "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
    )
    try:
        with Server(store) as running:
            yield running
    finally:
        store.close()


@pytest.fixture(scope="module")
def spec(server: Server) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/openapi.json", timeout=10).json())


def test_schemathesis_all_checks_pass(server: Server, tmp_path: Path) -> None:
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "10",
        "--seed",
        "1",
        "--workers",
        "1",
        "--generation-database",
        "none",
    ]
    # Run elsewhere: schemathesis keeps a cache folder (.schemathesis/) in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_error_statuses_are_documented_with_the_error_body(spec: dict[str, Any]) -> None:
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for path in ("/get-online-features", "/push"):
        responses = spec["paths"][path]["post"]["responses"]
        for status in ("400", "401", "403", "404", "413", "422", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == error_body
    for path, methods in spec["paths"].items():
        if path.startswith("/v1/"):
            responses = methods["get"]["responses"]
            assert {"401", "403", "422", "503"} <= set(responses), path
            # FastAPI's own validation body is not what we answer: ours replaces it.
            assert responses["422"]["content"]["application/json"]["schema"] == error_body
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"type", "message"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_features_xor_feature_service_is_in_the_document(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/get-online-features"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert [branch["required"] for branch in schema["oneOf"]] == [
        ["features"],
        ["feature_service"],
    ]
    assert schema["required"] == ["entities"]


def test_metrics_content_type_is_documented_and_served(
    server: Server, spec: dict[str, Any]
) -> None:
    documented = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == [PROMETHEUS_TEXT]
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.headers["content-type"] == PROMETHEUS_TEXT
    assert "featurestore_api_requests_total" in response.text


def test_health_documents_its_503(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/health"]["get"]["responses"]
    assert responses["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }
