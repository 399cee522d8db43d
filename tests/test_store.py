"""The FeatureStore facade end to end: apply, version pins, services, clashes, source checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurestore import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Policy,
    Resource,
)
from featurestore.errors import AccessDeniedError, FeatureReferenceError, SourceSchemaError
from featurestore.types import Float32, Float64, Int64, String

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
RIDER = Entity(name="rider", join_keys=["rider_id"], value_type=Int64)


def stats_view(ttl: timedelta | None = timedelta(hours=1), **kwargs: object) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=ttl,
        schema=[Field(name="rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
        **kwargs,  # type: ignore[arg-type]
    )


def rider_view() -> FeatureView:
    return FeatureView(
        name="rider_stats",
        entities=[RIDER],
        ttl=None,
        schema=[Field(name="rate", dtype=Float64), Field(name="city", dtype=String)],
        source=FileSource(path="data/riders"),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    (tmp_path / "data" / "riders").mkdir(parents=True)
    (tmp_path / "featurestore.yaml").write_text("project: storetest\n")
    pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_timestamp": [T0, T0 + timedelta(hours=2), T0],
            "created": [T0, T0 + timedelta(hours=2), T0],
            "rate": [0.5, 0.25, 0.75],
            "trips": [5, 7, 9],
        }
    ).to_parquet(tmp_path / "data" / "stats.parquet")
    # A folder source split across two files.
    for i, (rider, city) in enumerate([(10, "Oslo"), (11, "Lima")]):
        pd.DataFrame(
            {"rider_id": [rider], "event_timestamp": [T0], "rate": [0.1 * (i + 1)], "city": [city]}
        ).to_parquet(tmp_path / "data" / "riders" / f"part-{i}.parquet")
    with FeatureStore(repo_path=tmp_path) as fs:
        yield fs


def entity_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [1, 2, 1],
            "rider_id": [10, 11, 12],
            "event_timestamp": [
                T0 + timedelta(hours=2, minutes=30),
                T0 + timedelta(minutes=30),
                T0,
            ],
            "label": ["a", "b", "c"],
        }
    )


def test_apply_returns_plan_and_retrieves(store: FeatureStore) -> None:
    plan = store.apply([DRIVER, RIDER, stats_view(), rider_view()])
    assert {(c.name, c.change) for c in plan.changes} == {
        ("driver", "added"),
        ("rider", "added"),
        ("driver_stats", "added"),
        ("rider_stats", "added"),
    }
    frame = store.get_historical_features(
        entity_df=entity_frame(),
        features=["driver_stats:trips", "rider_stats:city"],
    ).to_pandas()
    assert frame["label"].tolist() == ["a", "b", "c"]
    assert frame["trips"].tolist() == [7, 9, 5]
    assert frame["city"].tolist()[:2] == ["Oslo", "Lima"]
    assert pd.isna(frame["city"].iloc[2])


def test_version_pin_uses_that_versions_definition(store: FeatureStore) -> None:
    store.apply([DRIVER, stats_view(ttl=timedelta(minutes=10))])
    store.apply([stats_view(ttl=timedelta(hours=1))])
    assert store.registry.current_version(store.project, "feature_view", "driver_stats") == 2
    entities = entity_frame()[["driver_id", "event_timestamp"]]
    frame = store.get_historical_features(
        entity_df=entities,
        features=["driver_stats@1:trips"],
    ).to_pandas()
    # Under v1 (TTL 10 min) the 30-minute-old values are too old; v2 (TTL 1 h) serves them.
    assert frame["trips"].isna().tolist() == [True, True, False]
    current = store.get_historical_features(entity_df=entities, features=["driver_stats:trips"])
    assert current.to_pandas()["trips"].tolist() == [7, 9, 5]


def test_feature_service_by_object_and_by_name(store: FeatureStore) -> None:
    view = stats_view()
    service = FeatureService(name="svc", features=[view[["rate"]], rider_view()[["city"]]])
    store.apply([DRIVER, RIDER, view, rider_view(), service])
    by_name = store.get_historical_features(entity_df=entity_frame(), features="svc").to_pandas()
    by_object = store.get_historical_features(
        entity_df=entity_frame(), features=service
    ).to_pandas()
    pd.testing.assert_frame_equal(by_name, by_object)
    assert list(by_name.columns) == [
        "driver_id",
        "rider_id",
        "event_timestamp",
        "label",
        "rate",
        "city",
    ]


def test_name_clash_needs_full_feature_names(store: FeatureStore) -> None:
    store.apply([DRIVER, RIDER, stats_view(), rider_view()])
    refs = ["driver_stats:rate", "rider_stats:rate"]
    with pytest.raises(FeatureReferenceError, match="full_feature_names=True"):
        store.get_historical_features(entity_df=entity_frame(), features=refs)
    frame = store.get_historical_features(
        entity_df=entity_frame(), features=refs, full_feature_names=True
    ).to_pandas()
    assert {"driver_stats__rate", "rider_stats__rate"} <= set(frame.columns)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "parquet"])
def test_entity_frame_kinds_agree(store: FeatureStore, tmp_path: Path, kind: str) -> None:
    store.apply([DRIVER, stats_view()])
    frame = entity_frame()
    inputs: dict[str, object] = {
        "pandas": frame,
        "polars": pl.from_pandas(frame),
        "arrow": pa.Table.from_pandas(frame, preserve_index=False),
    }
    if kind == "parquet":
        frame.to_parquet(tmp_path / "entities.parquet", index=False)
        inputs["parquet"] = str(tmp_path / "entities.parquet")
    result = store.get_historical_features(entity_df=inputs[kind], features=["driver_stats:trips"])
    assert result.to_pandas()["trips"].tolist() == [7, 9, 5]


def test_apply_checks_the_parquet_schema(store: FeatureStore) -> None:
    broken = FeatureView(
        name="broken",
        entities=[DRIVER],
        schema=[Field(name="missing_col", dtype=Float32)],
        source=FileSource(path="data/stats.parquet"),
    )
    with pytest.raises(SourceSchemaError, match=r"broken.*missing_col"):
        store.apply([DRIVER, broken])
    assert store.list_feature_views() == []
    assert store.list_entities() == []


def test_unknown_view_is_a_reference_error(store: FeatureStore) -> None:
    store.apply([])  # a registry, empty: the view is unknown, not the registry missing
    with pytest.raises(FeatureReferenceError, match="nope"):
        store.get_historical_features(entity_df=entity_frame(), features=["nope:x"])


def test_filter_by_created_timestamp_through_a_feature_service(
    store: FeatureStore, tmp_path: Path
) -> None:
    """A correction of the T0 + 2h value created at T0 + 3h did not exist at T0 + 2h30: with
    ``filter_by_created_timestamp=True`` the value known then is served; the rider view has no
    created column, so the filter leaves it alone (as in Feast)."""
    pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 2],
            "event_timestamp": [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=2), T0],
            "created": [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=3), T0],
            "rate": [0.5, 0.25, 0.125, 0.75],
            "trips": [5, 7, 8, 9],
        }
    ).to_parquet(tmp_path / "data" / "stats.parquet")
    view = stats_view()
    service = FeatureService(name="svc", features=[view[["trips"]], rider_view()[["city"]]])
    store.apply([DRIVER, RIDER, view, rider_view(), service])
    entities = entity_frame()
    entities.loc[len(entities)] = [1, 10, T0 + timedelta(hours=3), "d"]

    plain = store.get_historical_features(entity_df=entities, features="svc").to_pandas()
    filtered = store.get_historical_features(
        entity_df=entities, features=service, filter_by_created_timestamp=True
    ).to_pandas()
    assert plain["trips"].tolist() == [8, 9, 5, 8]
    assert filtered["trips"].tolist() == [7, 9, 5, 8]
    assert filtered["city"].tolist() == plain["city"].tolist()
    assert filtered["city"].tolist()[:2] == ["Oslo", "Lima"]


def test_filter_by_created_timestamp_still_checks_access(store: FeatureStore) -> None:
    store.apply(
        [
            DRIVER,
            stats_view(),
            Policy(name="admins", roles=["admin"], actions=["admin"]),
            Policy(
                name="no-driver-stats",
                effect="deny",
                principals=["mallory"],
                actions=["read_offline"],
                resources=[Resource(kind="feature_view", name="driver_stats")],
            ),
            Policy(name="readers", principals=["mallory"], actions=["describe", "read_offline"]),
        ]
    )
    denied = FeatureStore(repo_path=store.repo_path, principal="mallory")
    with denied, pytest.raises(AccessDeniedError, match="driver_stats"):
        denied.get_historical_features(
            entity_df=entity_frame(),
            features=["driver_stats:trips"],
            filter_by_created_timestamp=True,
        )
