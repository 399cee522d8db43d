"""Aggregation definitions: names, result types, validation, versions, registry round trips,
``describe`` and ``/v1/feature-views/{name}``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aggregation_repo import DRIVER, TRIPS, make_repo, trip_stats
from api_server import Server

from featurestore import Aggregation, FeatureView, Field
from featurestore.aggregations import FUNCTIONS, window_label
from featurestore.errors import DefinitionError
from featurestore.registry import open_registry
from featurestore.types import Array, Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp


@pytest.mark.parametrize(
    ("window", "label"),
    [
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "36h"),
        (timedelta(seconds=3600 * 24 + 1), "86401s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (None, "lifetime"),
    ],
)
def test_window_label_is_the_largest_whole_unit(window, label):
    assert window_label(window) == label
    assert Aggregation("fare", "sum", window).name == f"fare_sum_{label}"


def test_name_overrides_the_default():
    agg = Aggregation("trip_id", "count", timedelta(days=1), name="trips_1d")
    assert (agg.name, agg.default_name) == ("trips_1d", "trip_id_count_1d")


@pytest.mark.parametrize(
    ("function", "column_type", "params", "result", "empty"),
    [
        ("count", String, {}, Int64, 0),
        ("sum", Int32, {}, Int64, None),
        ("sum", Float32, {}, Float64, None),
        ("mean", Int64, {}, Float64, None),
        ("min", String, {}, String, None),
        ("max", UnixTimestamp, {}, UnixTimestamp, None),
        ("stddev", Int64, {}, Float64, None),
        ("var", Float64, {}, Float64, None),
        ("first", Bool, {}, Bool, None),
        ("last", Array(Int64), {}, Array(Int64), None),
        ("count_distinct", String, {}, Int64, 0),
        ("approx_count_distinct", Int64, {}, Int64, 0),
        ("approx_percentile", Int64, {"percentile": 0.95}, Float64, None),
        ("last_k", String, {"k": 10}, Array(String), None),
    ],
)
def test_result_types_and_empty_values(function, column_type, params, result, empty):
    view = FeatureView(
        name="v",
        entities=[DRIVER],
        source=TRIPS,
        schema=[Field(name="x", dtype=column_type)],
        aggregations=[Aggregation("x", function, timedelta(hours=1), **params)],
    )
    [feature] = view.features
    assert feature.dtype == result
    assert view.aggregations[0].empty == empty


def test_every_function_is_in_the_table():
    assert list(FUNCTIONS) == [
        "count", "sum", "mean", "min", "max", "stddev", "var", "first", "last",
        "count_distinct", "approx_count_distinct", "approx_percentile", "last_k",
    ]  # fmt: skip


def _view(*aggregations: Aggregation, **kwargs):
    return trip_stats(aggregations=list(aggregations), **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Aggregation("fare", "median", timedelta(hours=1)), "unknown function 'median'"),
        (lambda: Aggregation("fare", "sum", timedelta(0)), "window must be positive"),
        (lambda: Aggregation("fare", "sum", timedelta(seconds=-5)), "window must be positive"),
        (lambda: Aggregation("fare", "sum", 3600), "window must be a datetime.timedelta"),
        (lambda: Aggregation("rider", "last_k", None), "last_k needs k=..."),
        (lambda: Aggregation("rider", "last_k", None, k=0), "k must be a whole number"),
        (
            lambda: Aggregation("fare", "approx_percentile", None),
            "approx_percentile needs percentile=...",
        ),
        (
            lambda: Aggregation("fare", "approx_percentile", None, percentile=1.5),
            "percentile must be a number between 0 and 1",
        ),
        (
            lambda: Aggregation("fare", "approx_percentile", None, percentile="p95"),
            "percentile must be a number between 0 and 1",
        ),
        (lambda: Aggregation("fare", "sum", None, k=3), "unexpected parameter 'k'"),
        (
            lambda: _view(Aggregation("rider", "mean", timedelta(hours=1))),
            "feature view 'driver_trip_stats', aggregation 'rider_mean_1h': mean needs a "
            "numeric column",
        ),
        (
            lambda: _view(Aggregation("rider", "sum", None), Aggregation("fare", "sum", None)),
            "aggregation 'rider_sum_lifetime': sum needs a numeric column",
        ),
        (
            lambda: _view(Aggregation("rider", "stddev", None)),
            "aggregation 'rider_stddev_lifetime': stddev needs a numeric column",
        ),
        (
            lambda: _view(Aggregation("tip", "sum", None)),
            "aggregation 'tip_sum_lifetime': column 'tip' is not in the schema",
        ),
        (
            lambda: _view(
                Aggregation("fare", "sum", timedelta(hours=1)),
                Aggregation("fare", "sum", timedelta(minutes=60)),
                Aggregation("rider", "count", None),
            ),
            "aggregation name 'fare_sum_1h' is used twice",
        ),
        (
            lambda: _view(Aggregation("fare", "sum", None), event_id=None),
            "mixes both: ['trip_id', 'rider'] would be plain features",
        ),
        (
            lambda: _view(
                Aggregation("fare", "sum", None),
                Aggregation("rider", "count", None),
                ttl=timedelta(hours=1),
            ),
            "an aggregated view takes no ttl",
        ),
        (
            lambda: _view(
                Aggregation("fare", "sum", None),
                Aggregation("rider", "count", None),
                event_id="ride",
            ),
            "event_id 'ride' is not a column of the schema",
        ),
        (
            lambda: FeatureView(
                name="plain",
                source=TRIPS,
                schema=[Field(name="fare", dtype=Float64)],
                event_id="fare",
            ),
            "event_id is for aggregated views",
        ),
        (
            lambda: _view("fare_sum_1h"),
            "aggregations must be Aggregation objects",
        ),
    ],
)
def test_bad_definitions_fail_at_construction_naming_the_problem(build, message):
    with pytest.raises(DefinitionError) as info:
        build()
    assert message in str(info.value)


def test_aggregations_are_in_the_content_hash_and_round_trip():
    base = trip_stats()
    wider = trip_stats(
        aggregations=[
            Aggregation(column="fare", function="sum", window=timedelta(hours=2)),
            *base.aggregations[1:],
        ]
    )
    assert wider.content_hash != base.content_hash
    assert trip_stats(description="other").content_hash == base.content_hash
    assert trip_stats(event_id=None, schema=base.schema[:1] + base.schema[2:], aggregations=[
        a for a in base.aggregations if a.column != "trip_id"
    ]).content_hash != base.content_hash  # fmt: skip
    again = FeatureView.from_dict(json.loads(json.dumps(base.to_dict())))
    assert again == base
    assert again.content_hash == base.content_hash
    assert again.aggregations == base.aggregations
    assert again.event_id == "trip_id"
    assert [c.name for c in again.columns] == ["fare", "trip_id", "rider"]
    assert again.feature_names == [
        "fare_sum_1h",
        "fare_mean_7d",
        "trips_1d",
        "rider_last_k_lifetime",
    ]


def test_plain_views_keep_their_hash():
    plain = FeatureView(name="p", source=TRIPS, schema=[Field(name="fare", dtype=Float64)])
    assert set(plain.spec()) == {"entities", "join_keys", "features", "source", "ttl_seconds"}
    assert not plain.is_aggregated
    assert plain.columns == plain.features


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_registry_stores_and_rebuilds_aggregated_views(backend, request):
    url = request.getfixturevalue(f"{backend}_url")
    registry = open_registry(url)
    try:
        registry.apply("demo", [DRIVER, trip_stats()], delete_missing=True)
        stored = registry.get("demo", "feature_view", "driver_trip_stats")
        assert stored == trip_stats()
        assert stored.aggregations == trip_stats().aggregations
        changed = trip_stats(
            aggregations=[
                Aggregation("fare", "sum", timedelta(hours=3)),
                *trip_stats().aggregations[1:],
            ]
        )
        plan = registry.apply("demo", [DRIVER, changed], delete_missing=True)
        [change] = [c for c in plan.changes if c.kind == "feature_view"]
        assert (change.old_version, change.new_version) == (1, 2)
        assert registry.get("demo", "feature_view", "driver_trip_stats", 1) == trip_stats()
    finally:
        registry.close()


def _aggregations_of(document: dict) -> list[dict]:
    return document["spec"]["aggregations"]


def test_describe_and_rest_show_aggregations(tmp_path: Path):
    store = make_repo(tmp_path / "repo")
    try:
        command = str(Path(sys.executable).parent / "featurestore")
        out = subprocess.run(
            [command, "--repo", str(tmp_path / "repo"), "describe", "driver_trip_stats"],
            capture_output=True, text=True, env=dict(os.environ), timeout=120, check=True,
        ).stdout  # fmt: skip
        described = _aggregations_of(json.loads(out))
        assert described[0] == {
            "name": "fare_sum_1h",
            "column": "fare",
            "function": "sum",
            "window_seconds": 3600.0,
            "params": {},
        }
        assert described[3]["params"] == {"k": 2}
        with Server(store) as server:
            body = httpx.get(f"{server.url}/v1/feature-views/driver_trip_stats").json()
        assert _aggregations_of(body["feature_view"]) == described
        assert body["feature_view"]["spec"]["event_id"] == "trip_id"
    finally:
        store.close()
