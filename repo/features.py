"""Definitions of the example repository: drivers, customers and the features a ride model uses.

The data comes from ``generate_data.py`` (``python repo/generate_data.py --size XS``); the
benchmarks in ``bench/`` use these same definitions over larger generated files.
"""

from datetime import timedelta

import pandas as pd

from featurestore import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    Validation,
    on_demand_feature_view,
)
from featurestore.types import Float32, Float64, Int64

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type=Int64,
    description="A driver on the platform.",
    owner="mobility-data@example.com",
)

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=Int64,
    description="A rider who books trips.",
    owner="customer-data@example.com",
    tags={"pii": "true"},
)

driver_stats_source = FileSource(
    name="driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Hourly driver statistics from the trips pipeline.",
)

customer_profile_source = FileSource(
    name="customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Daily customer profile snapshots from the billing system.",
)

# Checked on every materialization and push (see docs/quality.md). The suite is Great
# Expectations' JSON format, so declaring it needs no import; `warn` writes a failing batch and
# records the failure, `strict` would reject it.
driver_stats_expectations = {
    "name": "driver_hourly_stats",
    "expectations": [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "conv_rate", "min_value": 0.0, "max_value": 1.0},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "acc_rate", "min_value": 0.0, "max_value": 1.0},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "avg_daily_trips", "min_value": 0},
        },
    ],
}

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    # A driver's hourly statistics go stale quickly: two missed hours and we'd rather have null.
    ttl=timedelta(hours=2),
    schema=[
        Field(
            name="conv_rate",
            dtype=Float32,
            description="Share of offers the driver accepted and completed.",
        ),
        Field(name="acc_rate", dtype=Float32, description="Share of offers the driver accepted."),
        Field(
            name="avg_daily_trips",
            dtype=Int64,
            description="Trips per day, averaged over the last week.",
        ),
        Field(
            name="trip_distance",
            dtype=Float64,
            description="Mean trip distance in km over the last hour.",
        ),
    ],
    source=driver_stats_source,
    description="Hourly activity statistics per driver.",
    owner="mobility-data@example.com",
    tags={"team": "mobility", "cadence": "hourly"},
    validation=Validation(driver_stats_expectations, mode="warn"),
)

customer_daily_profile = FeatureView(
    name="customer_daily_profile",
    entities=[customer],
    ttl=timedelta(days=2),
    schema=[
        Field(
            name="current_balance",
            dtype=Float32,
            description="Account balance at the end of the day.",
            tags={"pii": "true"},
        ),
        Field(
            name="avg_passenger_count", dtype=Float32, description="Mean passengers per booking."
        ),
        Field(name="lifetime_trip_count", dtype=Int64, description="Trips booked since sign-up."),
    ],
    source=customer_profile_source,
    description="Daily profile of each customer.",
    owner="customer-data@example.com",
    tags={"team": "customer", "cadence": "daily", "pii": "true"},
)

driver_activity = FeatureService(
    name="driver_activity",
    features=[
        driver_hourly_stats,
        # The ride model needs no balance: leave the PII feature out of the service.
        customer_daily_profile[["avg_passenger_count", "lifetime_trip_count"]],
    ],
    description="Features of the ride-acceptance model.",
    owner="ml-platform@example.com",
    tags={"model": "ride_acceptance"},
)

# A value only the request knows: the length of the trip being offered to the driver.
trip_request = RequestSource(
    name="trip_request",
    schema=[
        Field(name="trip_distance_km", dtype=Float64, description="The offered trip's length.")
    ],
)


@on_demand_feature_view(
    sources=[driver_hourly_stats[["conv_rate", "trip_distance"]], trip_request],
    schema=[
        Field(name="distance_ratio", dtype=Float64, description="Offered km / recent mean km."),
        Field(name="accept_score", dtype=Float64, description="conv_rate, lower for long trips."),
    ],
    description="How the offered trip compares with the driver's recent trips; the same code "
    "runs offline (training frames) and online (lookups).",
    owner="ml-platform@example.com",
)
def trip_fit(inputs: pd.DataFrame) -> pd.DataFrame:
    recent = inputs["trip_distance"].where(inputs["trip_distance"] > 0)
    out = pd.DataFrame(index=inputs.index)
    out["distance_ratio"] = inputs["trip_distance_km"] / recent
    out["accept_score"] = inputs["conv_rate"] / (1 + out["distance_ratio"].clip(lower=0))
    return out
