"""Checks shared by the stream tests: producing trips, reading what was stored offline, and
comparing online with offline (plain and aggregated views) against a brute-force count."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
from online_state_oracle import close
from stream_repo import AGGREGATES, FEATURES, T0, client, event

from featurestore import FeatureStore
from featurestore.offline.store_data import StoreData


def produce(topic: str, trip_ids: range | list[int], *, pipe_size: int = 1000) -> None:
    connection = client()
    pipe = connection.pipeline(transaction=False)
    for n, trip_id in enumerate(trip_ids, 1):
        pipe.xadd(topic, event(trip_id))
        if n % pipe_size == 0:
            pipe.execute()
    pipe.execute()
    connection.close()


def offline_trip_ids(store: FeatureStore) -> list[int]:
    files = StoreData(store.config).readable_pushed_files("trip_events")
    return [t for f in files for t in pq.read_table(f, columns=["trip_id"])[0].to_pylist()]


def assert_online_equals_offline(store: FeatureStore, drivers: range) -> None:
    """For every key, the online value equals a point-in-time retrieval at a late instant."""
    instant = T0 + pd.Timedelta(days=30)
    entities = pd.DataFrame(
        {"driver_id": list(drivers), "event_timestamp": [instant] * len(drivers)}
    )
    offline = store.get_historical_features(entities, FEATURES).to_pandas()
    online = store.get_online_features(
        FEATURES, entity_rows=[{"driver_id": d} for d in drivers], as_of=instant
    ).to_dict()
    for feature in ("fare", "trip_id", "city"):
        want = [None if pd.isna(v) else v for v in offline[feature]]
        got = [
            None if v is None or (isinstance(v, float) and pd.isna(v)) else v
            for v in online[feature]
        ]
        assert got == want, feature


def assert_aggregates_equal_offline(
    store: FeatureStore, produced: list[tuple[int, datetime]], instants: list[datetime]
) -> None:
    """At each instant, every key's online aggregations equal offline retrieval, and the
    count of trips is the brute-force count of the produced events (plus driver 0's history
    trip): every event counted exactly once."""
    drivers = list(range(50))
    features = [f"trip_aggregates:{name}" for name in AGGREGATES]
    for instant in instants:
        entities = pd.DataFrame({"driver_id": drivers, "event_timestamp": [instant] * 50})
        offline = store.get_historical_features(entities, features).to_arrow().to_pydict()
        online = store.get_online_features(
            features, entity_rows=[{"driver_id": d} for d in drivers], as_of=instant
        ).to_dict()
        for name in AGGREGATES:
            for d, got, want in zip(drivers, online[name], offline[name], strict=True):
                assert close(got, want), (name, d, instant, got, want)
        expected = [int(d == 0) for d in drivers]  # the history trip of driver 0, at T0
        for driver, moment in produced:
            if moment <= instant:
                expected[driver] += 1
        assert online["trips"] == expected, instant


def trip_moment(trip_id: int) -> datetime:
    return T0 + timedelta(seconds=trip_id // 7)


def trips(trip_ids: range) -> list[tuple[int, datetime]]:
    """(driver, event time) of the trips :func:`stream_repo.event` makes."""
    return [(t % 50, trip_moment(t)) for t in trip_ids]


def late_instants(last_trip: int) -> list[datetime]:
    """Instants to compare at: mid-stream, the last event, and after it (windows emptying)."""
    last = trip_moment(last_trip)
    return [trip_moment(last_trip // 2), last, last + timedelta(minutes=20)]
