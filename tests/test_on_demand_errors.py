"""On-demand views that fail: clear errors naming the view, its version and the problem.

The function raises, returns the wrong columns, the wrong types or another number of rows; a
request value is missing. Offline, online (SDK) and over REST (JSON errors, never a traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from api_server import Server
from on_demand_repo import BASE, DRIVER_STATS, END, RIDE, T0, make_store

from featurestore import FeatureStore, Field, on_demand_feature_view
from featurestore.errors import EntityFrameError, TransformationError
from featurestore.types import Float64

SCHEMA = [Field(name="out", dtype=Float64)]


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=SCHEMA, mode="python")
def raises(row: dict[str, Any]) -> dict[str, Any]:
    return {"out": row["distance_km"] / 0}


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=SCHEMA)
def wrong_columns(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"other": inputs["distance_km"]})


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=SCHEMA)
def wrong_type(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"out": inputs["distance_km"].astype(str) + "km"})


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=SCHEMA)
def wrong_rows(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"out": inputs["distance_km"]}).iloc[:1]


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=SCHEMA, mode="python")
def wrong_python_type(row: dict[str, Any]) -> dict[str, Any]:
    return {"out": "fast"}


CASES = [
    (raises, r"on-demand feature view 'raises' v1: the function raised ZeroDivisionError"),
    (
        wrong_columns,
        r"'wrong_columns' v1: .*exactly the schema's columns \['out'\]; missing \['out'\], unexpected \['other'\]",
    ),
    (wrong_type, r"'wrong_type' v1: column 'out' \(.*\) does not fit its declared type Float64"),
    (wrong_rows, r"'wrong_rows' v1: the function returned 1 rows for 3 input rows"),
    (wrong_python_type, r"'wrong_python_type' v1: 'out' is 'fast' \(str\), which is not a Float64"),
]
ROWS = [{"driver_id": i, "distance_km": 2.5, "label": "x"} for i in range(3)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, str]]:
    store = make_store(tmp_path_factory.mktemp("errors") / "repo")
    store.apply([*BASE, *(view for view, _ in CASES)])
    store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
    with Server(store) as server:
        yield store, server.url
    store.close()


@pytest.mark.parametrize(("view", "message"), CASES, ids=[v.name for v, _ in CASES])
def test_a_failing_function_names_the_view_version_and_problem(
    served: tuple[FeatureStore, str], view: Any, message: str
) -> None:
    store, url = served
    frame = pd.DataFrame(ROWS).assign(event_timestamp=END)
    with pytest.raises(TransformationError, match=message):
        store.get_historical_features(frame, [f"{view.name}:out"]).to_pandas()
    with pytest.raises(TransformationError, match=message):
        store.get_online_features([f"{view.name}:out"], entity_rows=ROWS)
    response = httpx.post(
        f"{url}/get-online-features",
        json={
            "features": [f"{view.name}:out"],
            "entities": {"driver_id": [0, 1, 2]},
            "request_context": {"distance_km": [2.5] * 3, "label": ["x"] * 3},
        },
        timeout=30,
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "TransformationError"
    assert f"'{view.name}' v1" in error["message"]
    assert "Traceback" not in response.text


def test_a_missing_request_value_is_a_client_error_naming_it(
    served: tuple[FeatureStore, str],
) -> None:
    store, url = served
    frame = pd.DataFrame({"driver_id": [1], "label": ["x"], "event_timestamp": [END]})
    with pytest.raises(EntityFrameError, match="lacks request column 'distance_km'"):
        store.get_historical_features(frame, ["wrong_rows:out"]).to_pandas()
    with pytest.raises(EntityFrameError, match="lacks request value 'distance_km'"):
        store.get_online_features(["raises:out"], entity_rows=[{"driver_id": 1, "label": "x"}])
    response = httpx.post(
        f"{url}/get-online-features",
        json={"features": ["raises:out"], "entities": {"driver_id": [1], "label": ["x"]}},
        timeout=30,
    )
    assert response.status_code == 422
    assert "distance_km" in response.json()["error"]["message"]
    bad = httpx.post(
        f"{url}/get-online-features",
        json={
            "features": ["raises:out"],
            "entities": {"driver_id": [1]},
            "request_context": {"distance_km": ["far"], "label": ["x"]},
        },
        timeout=30,
    )
    assert bad.status_code == 422, bad.text
    assert "distance_km" in bad.json()["error"]["message"]
