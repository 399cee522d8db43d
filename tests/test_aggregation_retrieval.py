"""Aggregated views through the facade: the values of the small trips repository at window
edges, and the access check (a denied principal gets nothing)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from access_repo import analysts_but_not_mallory
from aggregation_repo import DRIVER, START, make_repo, trip_stats

from featurestore import FeatureStore
from featurestore.errors import AccessDeniedError
from featurestore.governance.access import Principal

FEATURES = [f"driver_trip_stats:{name}" for name in trip_stats().feature_names]
ROOT = Principal("root", frozenset({"admin"}))


def _entities() -> pd.DataFrame:
    minutes = [0, 60, 101, 70, 5]
    return pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 2, 3],
            "event_timestamp": [START + timedelta(minutes=m) for m in minutes],
        }
    )


def test_values_at_window_edges(tmp_path: Path) -> None:
    with make_repo(tmp_path / "repo") as store:
        frame = store.get_historical_features(_entities(), FEATURES).to_arrow().to_pydict()
    # Driver 1: trips at 0 (10.0), 10 (20.0), 70 (null fare), 100 (5.0) minutes; driver 2 at 5
    # (7.5) and 65 (2.5); driver 3 has none.
    assert frame["fare_sum_1h"] == [10.0, 20.0, 5.0, 2.5, None]
    assert frame["trips_1d"] == [1, 2, 4, 2, 0]
    assert frame["fare_mean_7d"] == [10.0, 15.0, 35.0 / 3, 5.0, None]
    assert frame["rider_last_k_lifetime"] == [["a"], ["b", "a"], ["c", "b"], ["e", "d"], None]


def test_a_denied_principal_gets_no_aggregate(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_repo(root).close()
    policies = analysts_but_not_mallory("driver_trip_stats")
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply([DRIVER, trip_stats(), *policies])
    with FeatureStore(root, principal=Principal("bob", frozenset({"analyst"}))) as bob:
        assert bob.get_historical_features(_entities(), FEATURES).to_pandas().shape[0] == 5
    with (
        FeatureStore(root, principal=Principal("mallory", frozenset({"analyst"}))) as mallory,
        pytest.raises(AccessDeniedError, match="no-trips-for-mallory"),
    ):
        mallory.get_historical_features(_entities(), FEATURES)
