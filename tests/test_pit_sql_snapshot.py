"""Snapshots of the point-in-time SQL, so any change to the generated query shows up in review.

Regenerate after an intended change with ``FEATURESTORE_UPDATE_SNAPSHOTS=1 pytest tests/test_pit_sql_snapshot.py``
and read the diff of ``tests/snapshots/``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.offline.base import FeatureRequest
from featurestore.offline.duckdb.pit_sql import EntityRelation, ViewSource, build_retrieval_sql
from featurestore.types import Float32, Int64, String, UnixTimestamp

SNAPSHOTS = Path(__file__).parent / "snapshots"
ENTITY = EntityRelation(
    relation="__fs_entity_0",
    columns=("driver_id", "city", "trip_no", "event_timestamp"),
    min_ts_us=1_704_067_200_000_000,
    max_ts_us=1_706_659_200_000_000,
)
TS_TYPES = {"event_timestamp": "TIMESTAMP WITH TIME ZONE", "created": "TIMESTAMP WITH TIME ZONE"}
driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
trip = Entity(
    name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64}
)


def _source(view: FeatureView, files: tuple[str, ...], types: dict[str, str]) -> ViewSource:
    request = FeatureRequest(
        view, tuple(view.feature_names), tuple(f"{view.name}__{f}" for f in view.feature_names)
    )
    return ViewSource(request=request, files=files, column_types={**TS_TYPES, **types})


def _ttl_view(ttl: timedelta | None = timedelta(hours=2)) -> ViewSource:
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=ttl,
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=FileSource(
            path="data/driver_stats.parquet",
            created_timestamp_column="created",
            field_mapping={"conv": "conv_rate"},
        ),
    )
    return _source(
        view,
        ("/repo/data/driver_stats.parquet",),
        {"driver_id": "BIGINT", "conv": "DOUBLE", "trips": "INTEGER"},
    )


def _no_ttl_view() -> ViewSource:
    view = FeatureView(
        name="driver_profile",
        entities=[driver],
        schema=[Field(name="signup", dtype=UnixTimestamp)],
        source=FileSource(path="data/profile", timestamp_field="event_timestamp"),
    )
    files = ("/repo/data/profile/part-0.parquet", "/repo/data/profile/part-1.parquet")
    return _source(view, files, {"driver_id": "BIGINT", "signup": "BIGINT"})


def _two_key_view() -> ViewSource:
    view = FeatureView(
        name="trip_stats",
        entities=[trip],
        ttl=timedelta(days=2),
        schema=[Field(name="fare", dtype=Float32)],
        source=FileSource(path="data/trips.parquet", created_timestamp_column="created"),
    )
    return _source(
        view,
        ("/repo/data/trips.parquet",),
        {"city": "VARCHAR", "trip_no": "INTEGER", "fare": "FLOAT"},
    )


def _global_view() -> ViewSource:
    view = FeatureView(
        name="weather",
        ttl=timedelta(hours=1),
        schema=[Field(name="temperature", dtype=Float32)],
        source=FileSource(path="data/weather.parquet"),
    )
    return _source(view, ("/repo/data/weather.parquet",), {"temperature": "DOUBLE"})


def _near_far(source: ViewSource) -> ViewSource:
    """A view without TTL whose density the engine measured: the two-stage plan."""
    return replace(source, near_window_us=4 * 3_600_000_000)


CASES = {
    "ttl_view": _ttl_view,
    "no_ttl_view": _no_ttl_view,
    "no_ttl_view_near_far": lambda: _near_far(_no_ttl_view()),
    "two_key_view": _two_key_view,
    "global_view": _global_view,
}


#: filter_by_created_timestamp=True: a TTL view, the same view without TTL (availability-ordered
#: ASOF join), and a view without created column (unchanged: the filter does not apply).
FILTERED_CASES = {
    "ttl_view_filtered": _ttl_view,
    "no_ttl_view_filtered": lambda: _ttl_view(ttl=None),
    "no_ttl_view_near_far_filtered": lambda: _near_far(_ttl_view(ttl=None)),
    "global_view_filtered": _global_view,
}


@pytest.mark.parametrize("case", sorted(CASES) + sorted(FILTERED_CASES))
def test_generated_sql_matches_snapshot(case: str) -> None:
    if case in FILTERED_CASES:
        sql = build_retrieval_sql(
            ENTITY, [FILTERED_CASES[case]()], filter_by_created_timestamp=True
        )
    else:
        sql = build_retrieval_sql(ENTITY, [CASES[case]()])
    sql += "\n"
    path = SNAPSHOTS / f"pit_{case}.sql"
    if os.environ.get("FEATURESTORE_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(sql, encoding="utf-8")
    assert path.is_file(), (
        f"no snapshot {path}; run with FEATURESTORE_UPDATE_SNAPSHOTS=1 to create it"
    )
    assert sql == path.read_text(encoding="utf-8")


def test_several_views_join_each_once_in_input_order() -> None:
    sql = build_retrieval_sql(ENTITY, [_ttl_view(), _global_view()])
    assert sql.count("LEFT JOIN __fs_v0 AS v0 ON v0.__fs_row = e.__fs_row") == 1
    assert sql.count("LEFT JOIN __fs_v1 AS v1 ON v1.__fs_row = e.__fs_row") == 1
    assert sql.rstrip().endswith("ORDER BY e.__fs_row")


def test_entity_without_timestamps_prunes_nothing() -> None:
    empty = EntityRelation(
        relation="__fs_entity_0", columns=("driver_id",), min_ts_us=None, max_ts_us=None
    )
    sql = build_retrieval_sql(empty, [_ttl_view()])
    assert "make_timestamp" not in sql


def test_filter_by_created_timestamp_changes_only_views_with_a_created_column() -> None:
    assert build_retrieval_sql(
        ENTITY, [_global_view()], filter_by_created_timestamp=True
    ) == build_retrieval_sql(ENTITY, [_global_view()])
    filtered = build_retrieval_sql(ENTITY, [_ttl_view()], filter_by_created_timestamp=True)
    assert '"created" IS NOT NULL' in filtered
    assert "f.__fs_cts <= e.__fs_ts" in filtered
