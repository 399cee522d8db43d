"""The quickstart's last step: build a point-in-time correct training frame, copy the latest
values and the trips' aggregation state to the online store and look a few drivers up, with the
status of every value and the sliding-window trip aggregates at the lookup instant.

Run after `python repo/generate_data.py --size XS` and `featurestore --repo repo apply`
(`make quickstart` does all three). The generated data ends with the hour it was generated in,
so for the next hour or more the lookups find fresh values.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from featurestore import FeatureStore

REPO = Path(__file__).resolve().parent
ONLINE_FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
#: Sliding-window aggregations of the trips source (repo/trips.py, docs/aggregations.md).
TRIP_NAMES = ["trips_1h", "trips_1d", "fare_sum_1d", "fare_mean_7d", "rider_id_count_distinct_7d"]
TRIP_FEATURES = [f"driver_trip_stats:{name}" for name in TRIP_NAMES]
TRIP_FIT = ["driver_hourly_stats:conv_rate", "trip_fit:distance_ratio", "trip_fit:accept_score"]
#: Two known drivers and one the data has never seen.
LOOKUP_ROWS = [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 9999}]

STATUS_MEANINGS = """\
Statuses: PRESENT = a value within the view's TTL; NOT_FOUND = nothing online for that key (never
materialized, or an unknown id); NULL_VALUE = the latest row holds a null; OUTSIDE_MAX_AGE = the
latest value is older than the view's TTL at lookup time, so it is not served (regenerate the
data and materialize again to freshen it)."""


def status_table(columns: dict[str, list[object]], statuses: dict[str, list[str]]) -> str:
    """One line per entity row: each feature as ``value (STATUS)``."""
    shown: dict[str, list[object]] = {}
    for name, values in columns.items():
        if name not in statuses:
            shown[name] = values
            continue
        pairs = zip(values, statuses[name], strict=True)
        shown[name] = [f"{_shown(value)} ({status})" for value, status in pairs]
    return pd.DataFrame(shown).to_string(index=False)


def _shown(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main() -> None:
    store = FeatureStore(repo_path=REPO)
    entity_df = pd.read_parquet(REPO / "data" / "entity_df.parquet")
    print(f"Entity frame: {len(entity_df):,} rows of {list(entity_df.columns)}")

    job = store.get_historical_features(entity_df=entity_df, features="driver_activity")
    training = job.to_pandas()

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(training.head(10).to_string(index=False))
    filled = training.drop(columns=entity_df.columns).notna().all(axis=1).sum()
    print(
        f"\nTraining frame: {len(training):,} rows, {training.shape[1]} columns "
        f"({filled:,} rows with every feature present; the rest fall outside a TTL or a gap)"
    )

    trips = store.get_historical_features(entity_df=entity_df, features=TRIP_FEATURES).to_pandas()
    print("\nTrip aggregates over sliding windows, at each entity row's instant:")
    print(trips[["driver_id", "event_timestamp", *TRIP_NAMES]].head(5).to_string(index=False))

    now = datetime.now(timezone.utc)
    report = store.materialize_incremental(
        end=now, feature_views=["driver_hourly_stats", "driver_trip_stats"]
    )
    print(f"\n{report.summary()}")
    online = store.get_online_features(features=ONLINE_FEATURES, entity_rows=LOOKUP_ROWS)
    feature_statuses = {
        name: [status.value for status in column]
        for name, column in online.statuses.items()
        if name in online.feature_names
    }
    print(f"\nOnline lookup at {now:%Y-%m-%d %H:%M} UTC:")
    print(status_table(online.to_dict(), feature_statuses))
    print(f"\n{STATUS_MEANINGS}")
    show_trip_aggregates(store, now)
    show_on_demand(store, entity_df)
    store.close()


def show_trip_aggregates(store: FeatureStore, now: datetime) -> None:
    """The aggregated view ``driver_trip_stats`` online: each window evaluated at the lookup
    instant over the materialized trips, equal to an offline retrieval at that instant."""
    online = store.get_online_features(TRIP_FEATURES, entity_rows=LOOKUP_ROWS, as_of=now).to_dict()
    print(f"\nTrip aggregates online at {now:%Y-%m-%d %H:%M} UTC (windows end at the lookup):")
    print(pd.DataFrame(online).to_string(index=False))
    drivers = [row["driver_id"] for row in LOOKUP_ROWS]
    rows = pd.DataFrame({"driver_id": drivers, "event_timestamp": [now] * len(drivers)})
    offline = store.get_historical_features(rows, features=TRIP_FEATURES).to_arrow().to_pydict()
    same = all(
        a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b))
        for name in TRIP_NAMES
        for a, b in zip(online[name], offline[name], strict=True)
    )
    print(f"online equals offline at the same instant: {same}")


def show_on_demand(store: FeatureStore, entity_df: pd.DataFrame) -> None:
    """The on-demand view ``trip_fit``: the same function offline (request values are columns
    of the entity frame) and online (they travel in the entity rows)."""
    rides = entity_df.head(5).assign(trip_distance_km=[2.0, 5.5, 12.0, 0.8, 30.0])
    frame = store.get_historical_features(entity_df=rides, features=TRIP_FIT).to_pandas()
    print("\nOn-demand features in a training frame (trip_distance_km is a request column):")
    print(frame.drop(columns=["customer_id"]).to_string(index=False))
    rows = [{**row, "trip_distance_km": 3.2} for row in LOOKUP_ROWS]
    online = store.get_online_features(features=TRIP_FIT, entity_rows=rows).to_dict()
    print("Online, with trip_distance_km=3.2 in each entity row:")
    print(pd.DataFrame(online).to_string(index=False))


if __name__ == "__main__":
    main()
