"""Aggregated features of the example repository: what drivers did in the last hour, day, week.

``trips.parquet`` holds one row per trip (an event); the view computes sliding-window
aggregations of it at each entity row's instant (offline) and at lookup time (online, after
``featurestore materialize``; the generator stops the trips at the last whole hour, so a
materialization up to now holds every trip there is). See docs/aggregations.md.
"""

from datetime import timedelta

from features import driver

from featurestore import Aggregation, FeatureView, Field, FileSource
from featurestore.types import Float64, Int64

trips_source = FileSource(
    name="trips_source",
    path="data/trips.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="One row per completed trip, from the dispatch system.",
)

driver_trip_stats = FeatureView(
    name="driver_trip_stats",
    entities=[driver],
    source=trips_source,
    # The source columns the aggregations read; the features are the aggregations below.
    schema=[
        Field(name="trip_id", dtype=Int64, description="Unique per trip."),
        Field(name="fare", dtype=Float64, description="Fare in EUR, null until billed."),
        Field(name="rider_id", dtype=Int64, description="Who booked the trip."),
    ],
    aggregations=[
        Aggregation(column="trip_id", function="count", window=timedelta(hours=1), name="trips_1h"),
        Aggregation(column="trip_id", function="count", window=timedelta(days=1), name="trips_1d"),
        Aggregation(column="fare", function="sum", window=timedelta(days=1)),
        Aggregation(column="fare", function="mean", window=timedelta(days=7)),
        Aggregation(column="fare", function="max", window=timedelta(days=7)),
        Aggregation(column="rider_id", function="count_distinct", window=timedelta(days=7)),
    ],
    # A replayed trip counts once: the first copy to arrive (docs/aggregations.md).
    event_id="trip_id",
    description="Trips and fares per driver over sliding windows.",
    owner="mobility-data@example.com",
    tags={"team": "mobility"},
)
