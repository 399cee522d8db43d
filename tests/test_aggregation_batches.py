"""Materializing an aggregated view in small batches: the offline engine streams the events by
key, a key's events may span batches, and each key's state must still be rebuilt once, from all
its events, wherever the batches end. Real DuckDB and the SQLite online store; the oracle is the
offline retrieval at the run's end (the consistency contract).

Three drivers with six trips each, so that batches of 2, 3 or 4 rows end exactly where a
driver's trips end while the next driver's trips span several batches (the case that once
rebuilt that driver from its last batch only); batches of 6 end there too but hold a driver's
trips whole, and batches of 5 never end there.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from aggregation_repo import DRIVER, START, trip_stats

from featurestore import Aggregation, FeatureStore
from featurestore.materialize import Materializer

DRIVERS = [1, 2, 3]
END = START + timedelta(hours=6)
FEATURES = ["trips_6h", "fare_sum_6h", "rider_last_k_lifetime"]


def trips() -> pd.DataFrame:
    times = [START + timedelta(minutes=40 * i + d) for d in DRIVERS for i in range(6)]
    return pd.DataFrame(
        {
            "driver_id": pd.Series([d for d in DRIVERS for _ in range(6)], dtype="int64"),
            "event_timestamp": times,
            "created": times,
            "fare": [float(i) for i in range(18)],
            "trip_id": pd.Series(range(18), dtype="int64"),
            "rider": [f"r{i}" for i in range(18)],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    (tmp_path / "data").mkdir()
    trips().to_parquet(tmp_path / "data" / "trips.parquet")
    (tmp_path / "featurestore.yaml").write_text(
        "project: aggbatches\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    opened = FeatureStore(tmp_path)
    hours = timedelta(hours=6)
    view = trip_stats(
        aggregations=[
            Aggregation(column="trip_id", function="count", window=hours, name="trips_6h"),
            Aggregation(column="fare", function="sum", window=hours),
            Aggregation(column="rider", function="last_k", window=None, k=2),
        ]
    )
    opened.apply([DRIVER, view])
    return opened


@pytest.mark.parametrize("batch_rows", [2, 3, 4, 5, 6])
def test_online_values_equal_offline_ones_whatever_the_batch_size(
    store: FeatureStore, batch_rows: int
) -> None:
    with store:
        Materializer(
            project=store.project,
            registry=store.registry,
            offline=store.offline,
            online=store.online,
            progress=False,
            batch_rows=batch_rows,
        ).materialize(START, END, ["driver_trip_stats"])
        references = [f"driver_trip_stats:{name}" for name in FEATURES]
        online = store.get_online_features(
            references, entity_rows=[{"driver_id": d} for d in DRIVERS], as_of=END
        ).to_dict()
        entity_df = pd.DataFrame({"driver_id": DRIVERS, "event_timestamp": [END] * 3})
        offline = store.get_historical_features(entity_df, references).to_pandas()
    offline = offline.sort_values("driver_id")
    assert online["trips_6h"] == [6, 6, 6]
    for name in FEATURES:
        assert online[name] == [_plain(v) for v in offline[name]], name


def _plain(value: object) -> object:
    """A retrieval's value as a lookup gives it (Python values, not NumPy ones)."""
    return value.tolist() if hasattr(value, "tolist") else value
