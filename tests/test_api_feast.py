"""Feast's other feature-server paths over REST (the real uvicorn server): ``/write-to-online-store``,
``/materialize``, ``/materialize-incremental``, ``include_feature_view_version_metadata``, the
error bodies Feast's client turns back into its own exception types, with access checks and
audit. Feast's real client drives the same paths in test_feast_client.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import NOW, Server, driver_stats, make_repo, push_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from api.errors import ApiError
from api.schemas import (
    MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA,
    MATERIALIZE_REQUEST_SCHEMA,
    WRITE_REQUEST_SCHEMA,
    parse_materialize_request,
    parse_write_request,
)
from featurestore import FeatureStore, Policy, Resource, Validation
from featurestore.errors import AccessDeniedError, PushError, ValidationFailedError
from featurestore.governance.access import Principal

SQLITE_ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
FEAST_AGENT = {"User-Agent": "python-requests/2.32.5"}  # what Feast's client sends
ROOT = Principal("root", frozenset({"admin"}))
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(name="readers", roles=["reader"], actions=["describe", "read_online"]),
    Policy(
        name="ingest",
        principals=["ingestor"],
        actions=["write_online"],
        resources=[Resource(kind="feature_view", name="driver_*")],
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    opened = make_repo(tmp_path / "repo", SQLITE_ONLINE)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def server(store: FeatureStore) -> Iterator[Server]:
    with Server(store) as running:
        yield running


def call(server: Server, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=30, **kwargs)


def lookup(server: Server, driver: int) -> dict[str, Any]:
    body = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [driver]}}
    answer = call(server, "/get-online-features", body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["results"][1]
    return result


def write_body(driver: int, conv_rate: Any, when: Any, **columns: Any) -> dict[str, Any]:
    """The body Feast's client sends for one row (its remote online store's online_write_batch:
    naive UTC timestamps, the created column always present)."""
    return {
        "feature_view_name": "driver_stats",
        "df": {
            "driver_id": [driver],
            "conv_rate": [conv_rate],
            "acc_rate": [0.5],
            "trips": [3],
            "event_timestamp": [when.replace(tzinfo=None).isoformat()],
            "created": [None],
            **columns,
        },
        "allow_registry_cache": False,
    }


# -- /write-to-online-store ----------------------------------------------------------------------


def test_write_to_online_store_is_served(server: Server) -> None:
    answer = call(server, "/write-to-online-store", write_body(60, 0.625, NOW))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["feature_view"] == "driver_stats"
    assert (report["version"], report["rows"], report["written"]) == (1, 1, 1)
    found = lookup(server, 60)
    assert found["values"] == [0.625]
    assert found["statuses"] == ["PRESENT"]
    # An older row for the same driver never replaces the newer one.
    older = call(server, "/write-to-online-store", write_body(60, 0.25, NOW - timedelta(hours=1)))
    assert older.json()["skipped_older"] == 1
    assert lookup(server, 60)["values"] == [0.625]


def test_write_to_online_store_through_the_sdk(store: FeatureStore) -> None:
    report = store.write_to_online_store(
        "driver_stats",
        {
            "driver_id": [61, 61],
            "event_timestamp": [NOW - timedelta(minutes=5), NOW - timedelta(minutes=1)],
            "conv_rate": [0.1, 0.2],
            "acc_rate": [0.3, 0.4],
            "trips": [1, 2],
            "note": ["x", "y"],
        },
    )
    assert (report.rows, report.keys, report.result.written) == (2, 1, 1)
    assert report.ignored_columns == ["note"]
    online = store.get_online_features(["driver_stats:conv_rate"], entity_rows=[{"driver_id": 61}])
    assert online.to_dict()["conv_rate"] == [pytest.approx(0.2)]
    with pytest.raises(PushError, match=r"missing column\(s\) \['trips'\]"):
        store.write_to_online_store(
            "driver_stats",
            {"driver_id": [62], "event_timestamp": [NOW], "conv_rate": [0.1], "acc_rate": [0.1]},
        )
    with pytest.raises(PushError, match="conv_rate"):
        store.write_to_online_store(
            "driver_stats",
            {
                "driver_id": [62],
                "event_timestamp": [NOW],
                "conv_rate": ["fast"],
                "acc_rate": [0.1],
                "trips": [1],
            },
        )
    # Nothing of the refused writes landed.
    online = store.get_online_features(["driver_stats:conv_rate"], entity_rows=[{"driver_id": 62}])
    assert online.statuses["conv_rate"] == ["NOT_FOUND"]


def test_write_to_online_store_is_validated_like_a_push(
    server: Server, store: FeatureStore
) -> None:
    view = driver_stats()
    view.validation = Validation(mode="strict", max_null_rate=0.0)
    store.apply([view])
    rows = {
        "driver_id": [63, 64],
        "event_timestamp": [NOW, NOW],
        "conv_rate": [0.5, None],
        "acc_rate": [0.1, 0.2],
        "trips": [1, 2],
    }
    with pytest.raises(ValidationFailedError, match="conv_rate"):
        store.write_to_online_store("driver_stats", rows)
    refused = call(server, "/write-to-online-store", write_body(65, None, NOW))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["type"] == "ValidationFailedError"
    for driver in (63, 64, 65):
        assert lookup(server, driver)["statuses"] == ["NOT_FOUND"]
    history = store.validation_history("driver_stats", failed_only=True)
    assert [r.trigger for r in history] == ["push", "push"]


# -- /materialize and /materialize-incremental ---------------------------------------------------


def test_materialize_and_incremental(server: Server, store: FeatureStore) -> None:
    store.teardown()  # online data and watermarks gone: the routes must bring them back
    assert lookup(server, 1)["statuses"] == ["NOT_FOUND"]
    body = {
        "start_ts": (NOW - timedelta(days=1)).replace(tzinfo=None).isoformat(),
        "end_ts": NOW.isoformat(),
        "feature_views": ["driver_stats"],
        "disable_event_timestamp": False,
        "full_feature_names": False,
    }
    answer = call(server, "/materialize", body)
    assert answer.status_code == 200, answer.text
    [view] = answer.json()["feature_views"]
    assert (view["feature_view"], view["written"]) == ("driver_stats", 4)
    assert lookup(server, 1)["values"] == [0.5]
    store.teardown()
    answer = call(server, "/materialize-incremental", {"end_ts": NOW.isoformat()})
    assert answer.status_code == 200, answer.text
    assert {v["feature_view"] for v in answer.json()["feature_views"]} == {
        "driver_stats",
        "customer_profile",
    }
    assert lookup(server, 1)["values"] == [0.5]
    refused = call(server, "/materialize", body, params={"async": "true"})
    assert refused.status_code == 422
    assert "async" in refused.json()["error"]["message"]


# -- include_feature_view_version_metadata -------------------------------------------------------


def test_feature_view_version_metadata(server: Server, store: FeatureStore) -> None:
    store.apply([driver_stats(ttl=timedelta(hours=3))])  # a new version: 2
    body: dict[str, Any] = {
        "features": ["driver_stats@1:conv_rate", "customer_profile:tier", "driver_stats:trips"],
        "entities": {"driver_id": [1], "customer_id": [7]},
        "full_feature_names": True,
    }
    plain = call(server, "/get-online-features", body).json()
    assert "feature_view_metadata" not in plain["metadata"]
    body["include_feature_view_version_metadata"] = True
    answer = call(server, "/get-online-features", body)
    assert answer.status_code == 200, answer.text
    # One entry per view, at its first version in request order (as Feast's server does).
    assert answer.json()["metadata"]["feature_view_metadata"] == [
        {"name": "driver_stats", "version": 1},
        {"name": "customer_profile", "version": 1},
    ]
    assert answer.json()["results"] == plain["results"]
    bad = call(server, "/get-online-features", {**body, "include_feature_view_version_metadata": 1})
    assert bad.status_code == 422


# -- error bodies: Feast's shape for Feast's client, ours for everyone else ----------------------

LOOKUP = "/get-online-features"
MATERIALIZE = {"start_ts": "2026-01-01T00:00:00", "end_ts": "2026-01-02T00:00:00"}


def _entities(features: Any) -> dict[str, Any]:
    return {"features": features, "entities": {"driver_id": [1]}}


@pytest.mark.parametrize(
    ("path", "body", "status", "feast_class"),
    [
        (LOOKUP, _entities(["nope:conv_rate"]), 400, "FeatureViewNotFoundException"),
        (LOOKUP, _entities(["driver_stats:nope"]), 400, "FeastObjectNotFoundException"),
        (LOOKUP, _entities(["driver_stats@9:trips"]), 400, "FeatureViewVersionNotFound"),
        (
            LOOKUP,
            {"feature_service": "nope", "entities": {"driver_id": [1]}},
            404,
            "FeatureServiceNotFoundException",
        ),
        (LOOKUP, {"features": ["driver_stats:trips"], "entities": {}}, 422, "FeastError"),
        (LOOKUP, b"{not json", 400, "FeastError"),
        (
            "/write-to-online-store",
            {**write_body(1, 0.5, NOW), "feature_view_name": "nope"},
            404,
            "FeatureViewNotFoundException",
        ),
        (
            "/write-to-online-store",
            write_body(1, "fast", NOW),
            422,
            "DataFrameSerializationError",
        ),
        (
            "/push",
            {**push_body("online", 1, 0.5, NOW), "push_source_name": "nope"},
            404,
            "PushSourceNotFoundException",
        ),
        (
            "/materialize",
            {**MATERIALIZE, "feature_views": ["nope"]},
            404,
            "FeatureViewNotFoundException",
        ),
        ("/materialize", {**MATERIALIZE, "end_ts": "2025-01-01"}, 422, "FeastError"),
        ("/materialize-incremental", {}, 422, "FeastError"),
        ("/materialize-incremental", {"end_ts": "2026-01-01", "version": "v2"}, 422, "FeastError"),
    ],
)
def test_error_shapes(server: Server, path: str, body: Any, status: int, feast_class: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"{server.url}{path}"
    ours = httpx.post(url, content=content, timeout=30)
    assert ours.status_code == status, ours.text
    error = ours.json()["error"]
    assert set(error) == {"type", "message"}
    feast = httpx.post(url, content=content, headers=FEAST_AGENT, timeout=30)
    assert feast.status_code == status
    # Feast's client calls FeastError.from_error_detail(response.json()): a JSON string.
    detail = json.loads(feast.json())
    assert detail == {"module": "feast.errors", "class": feast_class, "message": error["message"]}


def test_v1_paths_keep_our_errors_for_feast_agents(server: Server) -> None:
    answer = httpx.get(f"{server.url}/v1/feature-views/nope", headers=FEAST_AGENT, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "ObjectNotFoundError"


# -- the hand parsers against their documented schemas ------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
INSTANTS = st.sampled_from(["2026-01-01", "2026-01-02T00:00:00", "2026-01-03T00:00:00+02:00", "x"])
COLUMNS = st.dictionaries(
    st.sampled_from(["driver_id", "conv_rate", "event_timestamp"]),
    st.lists(SCALARS, max_size=3) | ANY_JSON,
    max_size=3,
)
WRITES = st.fixed_dictionaries(
    {},
    optional={
        "feature_view_name": st.sampled_from(["driver_stats", ""]) | ANY_JSON,
        "df": COLUMNS | ANY_JSON,
        "allow_registry_cache": st.booleans() | ANY_JSON,
        "transform_on_write": st.booleans() | ANY_JSON,
    },
)
MATERIALIZATIONS = st.fixed_dictionaries(
    {},
    optional={
        "start_ts": INSTANTS | ANY_JSON,
        "end_ts": INSTANTS | ANY_JSON,
        "feature_views": st.none() | st.lists(st.sampled_from(["driver_stats", ""])) | ANY_JSON,
        "disable_event_timestamp": st.booleans() | ANY_JSON,
        "full_feature_names": st.booleans() | ANY_JSON,
        "version": st.none() | st.just("v2") | ANY_JSON,
    },
)


def parses(parse: Any, body: Any) -> bool:
    """Whether the hand parser takes ``body``; it may only ever refuse with an ApiError."""
    try:
        parse(json.dumps(body).encode())
    except ApiError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(write=WRITES, materialize=MATERIALIZATIONS)
def test_parsers_refuse_what_their_schemas_refuse(write: Any, materialize: Any) -> None:
    """The OpenAPI schemas cannot say everything (a start before its end, a non-empty ``df``),
    so the parsers may be stricter; but they never take a body their schema refuses."""
    cases = [
        (WRITE_REQUEST_SCHEMA, lambda raw: parse_write_request(raw, 10), write),
        (
            MATERIALIZE_REQUEST_SCHEMA,
            lambda raw: parse_materialize_request(raw, incremental=False),
            materialize,
        ),
        (
            MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA,
            lambda raw: parse_materialize_request(raw, incremental=True),
            materialize,
        ),
    ]
    for schema, parse, body in cases:
        if parses(parse, body):
            assert Draft202012Validator(schema).is_valid(body), body


NEAR_WRITES = st.fixed_dictionaries(
    {
        "feature_view_name": st.sampled_from(["driver_stats", "customer_profile", "nope"]),
        "df": st.fixed_dictionaries(
            {},
            optional={
                name: st.lists(values, min_size=1, max_size=3) | ANY_JSON
                for name, values in {
                    "driver_id": st.integers(-3, 3) | SCALARS,
                    "customer_id": st.integers(-3, 3) | SCALARS,
                    "event_timestamp": INSTANTS | SCALARS,
                    "created": st.none() | INSTANTS | SCALARS,
                    "conv_rate": st.floats(allow_nan=False, allow_infinity=False) | SCALARS,
                    "acc_rate": SCALARS,
                    "trips": st.integers() | SCALARS,
                    "tier": st.text(max_size=3) | SCALARS,
                    "age": SCALARS,
                }.items()
            },
        ),
    }
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(write=NEAR_WRITES, materialize=MATERIALIZATIONS)
def test_never_5xx(server: Server, write: Any, materialize: Any) -> None:
    for path, body in (
        ("/write-to-online-store", write),
        ("/materialize", materialize),
        ("/materialize-incremental", materialize),
    ):
        answer = call(server, path, body)
        assert answer.status_code < 500, (path, body, answer.text)
        if answer.status_code >= 400:
            assert set(answer.json()["error"]) == {"type", "message"}


# -- access checks and audit ---------------------------------------------------------------------


def test_writes_and_materialize_check_access_and_audit(store: FeatureStore) -> None:
    root = store.repo_path
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply(POLICIES)
        tokens = {
            name: admin.create_key(name, roles=roles, kind="user")[0]
            for name, roles in (("ada", ["admin"]), ("ingestor", []), ("rita", ["reader"]))
        }
    with Server(FeatureStore(root)) as server:

        def send(path: str, body: Any, who: str | None, **headers: str) -> httpx.Response:
            if who is not None:
                headers["Authorization"] = f"Bearer {tokens[who]}"
            return call(server, path, body, headers=headers)

        write = write_body(70, 0.875, NOW)
        window = {"start_ts": (NOW - timedelta(days=1)).isoformat(), "end_ts": NOW.isoformat()}
        assert send("/write-to-online-store", write, "rita").status_code == 403
        assert send("/materialize", window, "ingestor").status_code == 403
        assert send(
            "/materialize-incremental", {"end_ts": NOW.isoformat()}, "rita"
        ).status_code == (403)
        assert send("/write-to-online-store", write, "ingestor").status_code == 200
        assert send("/materialize", window, "ada").status_code == 200
        # Feast's client gets its permission error, for a refusal and for a missing token.
        for who in ("rita", None):
            refused = send("/write-to-online-store", write, who, **FEAST_AGENT)
            assert json.loads(refused.json())["class"] == "FeastPermissionError"
        assert send("/write-to-online-store", write, None).status_code == 401
    with pytest.raises(AccessDeniedError):
        FeatureStore(root, token=tokens["rita"]).write_to_online_store("driver_stats", {})
    with FeatureStore(root, principal=ROOT) as admin:
        records = [(r.principal, r.action, r.resource, r.outcome) for r in admin.audit_log()]
    assert ("ingestor", "write_online", "feature_view:driver_stats", "ok") in records
    assert ("rita", "write_online", "feature_view:driver_stats", "denied") in records
    denied = {(who, action) for who, action, _, outcome in records if outcome == "denied"}
    assert {("ingestor", "materialize"), ("rita", "materialize")} <= denied
    assert ("ada", "materialize", "feature_view:driver_stats", "ok") in records
    # The run's validations are the caller's too.
    assert ("ada", "validate", "feature_view:driver_stats", "passed") in records
