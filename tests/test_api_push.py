# The fixtures `store` and `server` come from test_api (imported below); their parameters
# shadow the imported names on purpose.
# ruff: noqa: F811
"""``POST /push`` end to end: the real uvicorn server, pushes seen by online lookups and by
historical retrieval, bad pushes refused with nothing written (SQLite online store and Redis db 8;
the fixtures are test_api's)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from api_server import NOW, Server, push, push_body, stored_files
from test_api import FEATURES, assert_error, post, server, store  # noqa: F401 - fixtures

from api import ApiSettings
from featurestore import FeatureStore


def test_push_online_is_served_over_rest(server: Server, store: FeatureStore) -> None:
    response = push(server, push_body("online", 50, 0.125, NOW - timedelta(minutes=1)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == 1
    assert body["online"][0]["feature_view"] == "driver_stats"
    assert body["online"][0]["written"] == 1
    assert body["offline_rows"] == 0
    lookup = post(server, {"features": FEATURES, "entities": {"driver_id": [50]}}).json()
    assert lookup["results"][1]["values"] == [0.125]
    assert lookup["results"][1]["statuses"] == ["PRESENT"]
    # An older push for the same driver changes nothing online.
    older = push(server, push_body("online", 50, 0.75, NOW - timedelta(minutes=30))).json()
    assert older["online"][0]["skipped_older"] == 1
    sdk = store.get_online_features(FEATURES, entities={"driver_id": [50]}).to_feast_json()
    assert post(server, {"features": FEATURES, "entities": {"driver_id": [50]}}).json() == (
        json.loads(json.dumps(sdk))
    )


def test_push_offline_is_seen_by_historical_retrieval(server: Server, store: FeatureStore) -> None:
    when = NOW - timedelta(minutes=3)
    response = push(server, push_body("online_and_offline", 51, 0.375, when))
    assert response.status_code == 200, response.text
    assert response.json()["offline_rows"] == 1
    entity_df = pd.DataFrame(
        {"driver_id": [51, 51], "event_timestamp": [when - timedelta(seconds=1), when]}
    )
    frame = store.get_historical_features(entity_df, ["driver_stats:conv_rate"]).to_pandas()
    assert pd.isna(frame["conv_rate"][0])
    assert frame["conv_rate"][1] == pytest.approx(0.375)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, ["not valid JSON"]),
        ([1], 422, ["JSON object"]),
        ({"df": {"driver_id": [1]}}, 422, ["push_source_name"]),
        ({"push_source_name": "driver_stats_push"}, 422, ["'df'"]),
        ({"push_source_name": "driver_stats_push", "df": {"driver_id": 1}}, 422, ["driver_id"]),
        ({"push_source_name": "driver_stats_push", "df": {"x": [[1]]}}, 422, ["df['x']"]),
        ({"push_source_name": "nope", "df": {"driver_id": [1]}}, 404, ["nope"]),
        ({**push_body("online", 1, 0.1, NOW), "to": "everywhere"}, 422, ["'to'"]),
        ({**push_body("online", 1, 0.1, NOW), "to": 3}, 422, ["'to'"]),
        ({**push_body("online", 1, 0.1, NOW), "df": {"driver_id": [1]}}, 422, ["missing"]),
        (
            {
                **push_body("online", 1, 0.1, NOW),
                "df": {**push_body("online", 1, 0.1, NOW)["df"], "conv_rate": ["fast"]},
            },
            422,
            ["conv_rate"],
        ),
        (
            {
                **push_body("online", 1, 0.1, NOW),
                "df": {**push_body("online", 1, 0.1, NOW)["df"], "driver_id": [None]},
            },
            422,
            ["driver_id", "null"],
        ),
        (
            {
                **push_body("online", 1, 0.1, NOW),
                "df": {**push_body("online", 1, 0.1, NOW)["df"], "event_timestamp": ["soon"]},
            },
            422,
            ["event_timestamp", "ISO 8601"],
        ),
        (
            {"push_source_name": "driver_stats_push", "df": {"driver_id": list(range(10_001))}},
            413,
            ["10000"],
        ),
    ],
)
def test_bad_pushes_get_4xx_json_and_write_nothing(
    server: Server, store: FeatureStore, body: Any, status: int, words: list[str]
) -> None:
    if isinstance(body, bytes):
        response = httpx.post(f"{server.url}/push", content=body, timeout=10)
    else:
        response = push(server, body)
    assert_error(response, status, *words)
    assert stored_files(store) == []
    lookup = post(server, {"features": FEATURES, "entities": {"driver_id": [1]}}).json()
    assert lookup["results"][1]["values"] == [0.5]


def test_max_push_rows_is_configurable(store: FeatureStore) -> None:
    with Server(store, ApiSettings(max_push_rows=1)) as server:
        body = push_body("online", 60, 0.5, NOW)
        assert push(server, body).status_code == 200
        body["df"] = {name: values * 2 for name, values in body["df"].items()}
        assert_error(push(server, body), 413, "limit is 1")
