"""Property-based fuzz of the REST service: whatever a client sends, the answer is never a 5xx
and always a JSON body (the real server, SQLite online store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from api_server import Server, make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
REFERENCES = st.sampled_from(
    [
        "driver_stats:conv_rate",
        "driver_stats:trips",
        "customer_profile:tier",
        "driver_stats@1:acc_rate",
        "driver_stats@9:acc_rate",
        "driver_stats:",
        ":x",
        "nope:x",
        "a:b:c",
        "",
    ]
) | st.text(max_size=12)
KEYS = st.sampled_from(["driver_id", "customer_id"]) | st.text(max_size=6)
# Bodies close to valid ones reach deep into the lookup; arbitrary JSON tests the parser.
NEAR_VALID = st.fixed_dictionaries(
    {
        "entities": st.dictionaries(KEYS, st.lists(JSON_SCALARS, max_size=5) | JSON, max_size=3)
        | JSON,
    },
    optional={
        "features": st.lists(REFERENCES, max_size=4) | JSON,
        "feature_service": st.sampled_from(["ranking", "nope", ""]) | JSON,
        "full_feature_names": st.booleans() | JSON,
    },
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("fuzz") / "repo"
    store: FeatureStore = make_repo(
        root, "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
    )
    try:
        with Server(store) as running:
            yield running
    finally:
        store.close()


def check(response: httpx.Response) -> Any:
    assert response.status_code < 500, response.text
    body = orjson.loads(response.content)
    if response.status_code >= 400:
        assert set(body["error"]) == {"type", "message"}
    return body


FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=NEAR_VALID | JSON)
def test_online_lookups_never_5xx(server: Server, body: Any) -> None:
    check(httpx.post(f"{server.url}/get-online-features", content=json.dumps(body), timeout=10))


@FUZZ
@given(raw=st.binary(max_size=64))
def test_raw_bodies_never_5xx(server: Server, raw: bytes) -> None:
    check(httpx.post(f"{server.url}/get-online-features", content=raw, timeout=10))


@FUZZ
@given(
    q=st.none() | st.text(max_size=10),
    tags=st.lists(st.text(max_size=10), max_size=3),
    name=st.text(min_size=1, max_size=10),
)
def test_registry_queries_never_5xx(
    server: Server, q: str | None, tags: list[str], name: str
) -> None:
    params: list[tuple[str, str]] = [("tag", t) for t in tags]
    if q is not None:
        params.append(("q", q))
    body = check(httpx.get(f"{server.url}/v1/features", params=params, timeout=10))
    assert "features" in body or "error" in body
    check(httpx.get(f"{server.url}/v1/feature-views/{quote(name, safe='')}", timeout=10))


PUSH_COLUMNS = st.sampled_from(
    ["driver_id", "event_timestamp", "created", "conv_rate", "acc_rate", "trips"]
) | st.text(max_size=6)
NEAR_VALID_PUSH = st.fixed_dictionaries(
    {
        "push_source_name": st.sampled_from(["driver_stats_push", "nope", ""]) | JSON,
        "df": st.dictionaries(PUSH_COLUMNS, st.lists(JSON_SCALARS, max_size=3) | JSON, max_size=7)
        | JSON,
    },
    optional={"to": st.sampled_from(["online", "offline", "online_and_offline", "x"]) | JSON},
)


@FUZZ
@given(body=NEAR_VALID_PUSH | JSON)
def test_pushes_never_5xx(server: Server, body: Any) -> None:
    check(httpx.post(f"{server.url}/push", content=json.dumps(body), timeout=10))
