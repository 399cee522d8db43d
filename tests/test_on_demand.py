"""On-demand views: offline equals online (SDK and REST), row for row, in both modes.

Seeded random data (nulls, zero speeds, colliding string keys, rows outside the TTL) and random
entity rows with request values (nulls, empty strings). Each function has a pandas and a python
twin; each is checked on its own: the historical retrieval at ``END`` must equal the online lookup
at ``END`` (SDK and the real HTTP server) for every row and feature, nulls included.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from api_server import Server
from conftest import require_redis
from on_demand_repo import (
    BASE,
    CUSTOMER_PROFILE,
    DRIVER_STATS,
    END,
    RIDE,
    T0,
    entity_frame,
    make_store,
    same_minute_now,
)

from featurestore import FeatureStore, Field, on_demand_feature_view
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.types import Bool, Float32, Float64, Int64, String

# -- pandas mode -----------------------------------------------------------------------------


@on_demand_feature_view(
    sources=[DRIVER_STATS, CUSTOMER_PROFILE, RIDE],
    schema=[
        Field(name="eta_min", dtype=Float64),
        Field(name="score", dtype=Float32),
        Field(name="tag", dtype=String),
        Field(name="trips_plus_age", dtype=Int64),
        Field(name="fast", dtype=Bool),
    ],
)
def ride_pandas(inputs: pd.DataFrame) -> pd.DataFrame:
    speed = inputs["avg_speed"].where(inputs["avg_speed"] != 0)
    out = pd.DataFrame()
    out["eta_min"] = inputs["distance_km"] / speed * 60
    out["score"] = inputs["conv_rate"] * inputs["rating"]
    out["tag"] = inputs["tier"].fillna("none").str.upper() + "/" + inputs["label"].fillna("?")
    out["trips_plus_age"] = inputs["trips"] + inputs["age"]
    out["fast"] = (speed > 40).astype("boolean").mask(speed.isna())
    return out


# -- python mode ------------------------------------------------------------------------------


@on_demand_feature_view(
    sources=[DRIVER_STATS, CUSTOMER_PROFILE, RIDE],
    mode="python",
    schema=[
        Field(name="eta_min", dtype=Float64),
        Field(name="score", dtype=Float32),
        Field(name="tag", dtype=String),
        Field(name="trips_plus_age", dtype=Int64),
        Field(name="fast", dtype=Bool),
    ],
)
def ride_python(row: dict[str, Any]) -> dict[str, Any]:
    speed = row["avg_speed"] or None
    distance = row["distance_km"]
    conv, rating = row["conv_rate"], row["rating"]
    trips, age = row["trips"], row["age"]
    return {
        "eta_min": None if speed is None or distance is None else distance / speed * 60,
        "score": None if conv is None or rating is None else conv * rating,
        "tag": (row["tier"] if row["tier"] is not None else "none").upper()
        + "/"
        + (row["label"] if row["label"] is not None else "?"),
        "trips_plus_age": None if trips is None or age is None else trips + age,
        "fast": None if speed is None else speed > 40,
    }


FEATURES = ["eta_min", "score", "tag", "trips_plus_age", "fast"]


REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FeatureStore, str]]:
    online = None
    if request.param == "redis":
        require_redis(REDIS_URL)
        online = f"{{type: redis, url: '{REDIS_URL}', expiry_grace: 36500d}}"
    root = tmp_path_factory.mktemp("ondemand") / "repo"
    store = make_store(root, online=online, seed=29)
    store.apply([*BASE, ride_pandas, ride_python])
    store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
    try:
        with Server(store) as server:
            yield store, server.url
    finally:
        store.teardown()
        store.close()


def offline_rows(store: FeatureStore, frame: pd.DataFrame, refs: list[str]) -> dict[str, list]:
    table = store.get_historical_features(frame, refs, full_feature_names=True).to_arrow()
    return {name: table.column(name).to_pylist() for name in table.column_names}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("view", [ride_pandas, ride_python], ids=["pandas", "python"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_offline_equals_online_sdk_and_rest(
    served: tuple[FeatureStore, str], view: OnDemandFeatureView, seed: int
) -> None:
    store, url = served
    instant = same_minute_now()
    frame = entity_frame(seed, 40, at=instant)
    refs = [f"{view.name}:{f}" for f in FEATURES] + ["driver_stats:avg_speed"]
    offline = offline_rows(store, frame, refs)
    requests = frame.drop(columns=["event_timestamp"]).astype(object)
    rows = requests.where(requests.notna(), None).to_dict("records")
    online = store.get_online_features(
        refs, entity_rows=rows, full_feature_names=True, as_of=instant
    )
    assert online.statuses[f"{view.name}__eta_min"].count("PRESENT") > 5  # real values, not nulls
    online_values = online.to_dict()
    entities = {k: [r[k] for r in rows] for k in ("driver_id", "customer_id")}
    context = {k: [r[k] for r in rows] for k in ("distance_km", "label")}
    body = httpx.post(
        f"{url}/get-online-features",
        json={
            "features": refs,
            "entities": entities,
            "request_context": context,
            "full_feature_names": True,
        },
        timeout=30,
    )
    assert body.status_code == 200, body.text
    rest = body.json()
    names = rest["metadata"]["feature_names"]
    for feature in FEATURES:
        column = f"{view.name}__{feature}"
        rest_values = rest["results"][names.index(column)]["values"]
        for i in range(len(frame)):
            want = offline[column][i]
            assert same(online_values[column][i], want), (column, i, want, online_values[column][i])
            assert rest_values[i] == want, (column, i, want, rest_values[i])
    # The view's input feature, asked next to it, comes back as asked.
    assert online_values["driver_stats__avg_speed"] == offline["driver_stats__avg_speed"]


def test_modes_agree_and_extra_entity_columns_carry_request_values(
    served: tuple[FeatureStore, str],
) -> None:
    store, url = served
    frame = entity_frame(7, 30)
    by_mode = [
        offline_rows(store, frame, [f"{v.name}:{f}" for f in FEATURES])
        for v in (ride_pandas, ride_python)
    ]
    for feature in FEATURES:
        pandas_values = by_mode[0][f"ride_pandas__{feature}"]
        python_values = by_mode[1][f"ride_python__{feature}"]
        if feature in ("eta_min", "score"):  # float arithmetic order may differ in the last bit
            assert [v is None for v in pandas_values] == [v is None for v in python_values]
        else:
            assert pandas_values == python_values, feature
    # REST: request values as extra columns of "entities" (Feast's other shape).
    body = httpx.post(
        f"{url}/get-online-features",
        json={
            "features": ["ride_python:tag"],
            "entities": {
                "driver_id": [1],
                "customer_id": ["a"],
                "distance_km": [2.0],
                "label": ["q"],
            },
        },
        timeout=30,
    )
    assert body.status_code == 200, body.text
    assert body.json()["results"][-1]["values"][0].endswith("/q")


def test_python_mode_single_row_and_request_values_coerced(
    served: tuple[FeatureStore, str],
) -> None:
    store, _ = served
    rows = [{"driver_id": 3, "customer_id": "b", "distance_km": 3, "label": None}]
    as_int = store.get_online_features(["ride_python:eta_min"], entity_rows=rows, as_of=END)
    rows[0]["distance_km"] = 3.0
    as_float = store.get_online_features(["ride_python:eta_min"], entity_rows=rows, as_of=END)
    assert as_int.to_dict() == as_float.to_dict()


def test_a_saved_training_set_keeps_the_on_demand_columns(
    served: tuple[FeatureStore, str],
) -> None:
    store, _ = served
    frame = entity_frame(11, 20)
    job = store.get_historical_features(frame, ["ride_pandas:eta_min", "ride_pandas:tag"])
    saved = job.save_dataset(f"rides_{uuid.uuid4().hex[:8]}")
    written = pd.read_parquet(saved.location)
    assert list(written.columns) == [*frame.columns, "eta_min", "tag"]
    assert written["tag"].tolist() == job.to_pandas()["tag"].tolist()
    assert saved.rows == len(frame)
