"""Join-key types inferred from the sources at apply, for entities declared without value_type.

Feast users rarely declare an entity's ``value_type``. Apply reads the key's type from the
sources of the views that use it and records it on each view (in its metadata, so the content
hash and version do not move); lookups then behave exactly as with a declared type and take the
scalar fast path. Runs on the embedded SQLite store and on Redis (127.0.0.1:6379, its own
database and project per test).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, Policy, Resource
from featurestore.definitions import Definition
from featurestore.errors import AccessDeniedError, EntityFrameError, SourceSchemaError
from featurestore.governance.access import Principal
from featurestore.online.lookup import OnlineLookup
from featurestore.types import Float64, Int64, String, ValueType

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
T = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
REFS = ["driver_stats:conv_rate", "driver_stats:trips", "city_weather:temp"]


def definitions(typed: bool) -> list[Definition]:
    """The same repository with the entities' key types declared or left to inference."""
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64 if typed else None)
    city = Entity(name="city", join_keys=["city_id"], value_type=String if typed else None)
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(hours=2),
        schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)],
        source=FileSource(path="data/drivers.parquet", created_timestamp_column="created"),
    )
    weather = FeatureView(
        name="city_weather",
        entities=[city],
        schema=[Field(name="temp", dtype=Float64)],
        source=FileSource(path="data/cities.parquet"),
    )
    return [driver, city, stats, weather]


def write_sources(root: Path) -> None:
    """Driver 1 fresh, 2 older than the TTL, 3 with a null value; cities keyed by the *texts*
    "1" and "2", which collide with drivers 1 and 2 if keys were compared as strings."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2, 3], dtype="int64"),
            "event_timestamp": [T - timedelta(hours=1), T - timedelta(hours=5), T],
            "created": [T, T, T],
            "conv_rate": [0.5, 0.25, None],
            "trips": [10, 20, 30],
        }
    ).to_parquet(data / "drivers.parquet")
    pd.DataFrame(
        {"city_id": ["1", "2"], "event_timestamp": [T, T], "temp": [21.5, 18.0]}
    ).to_parquet(data / "cities.parquet")


def make_store(root: Path, backend: str) -> FeatureStore:
    write_sources(root)
    project = f"keys_{uuid.uuid4().hex[:10]}"
    online = (
        "{type: sqlite, path: data/online.db}"
        if backend == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}'}}"
    )
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    return FeatureStore(repo_path=root)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis(REDIS_URL)
    return str(request.param)


@pytest.fixture
def stores(backend: str, tmp_path: Path) -> Iterator[dict[str, FeatureStore]]:
    """Two stores over the same data: one declares the key types, one leaves them out."""
    opened = {style: make_store(tmp_path / style, backend) for style in ("typed", "untyped")}
    try:
        for style, store in opened.items():
            store.apply(definitions(typed=style == "typed"))
            store.materialize(T - timedelta(days=1), T)
        yield opened
    finally:
        for store in opened.values():
            store.teardown()
            store.close()


def plan_reads(store: FeatureStore) -> dict[str, Any]:
    """Per view: the key types the lookup plan uses and whether its scalar path is taken."""
    plan = OnlineLookup(store.project, store.registry, store.online).plan(REFS)
    return {r.namespace.view.name: (r.key_types, r.small) for r in plan.reads}


def answer(store: FeatureStore, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = store.get_online_features(REFS, entity_rows=rows, as_of=T)
    return {"values": response.to_dict(), "statuses": response.statuses}


def error_of(store: FeatureStore, rows: list[dict[str, Any]]) -> str:
    with pytest.raises(EntityFrameError) as caught:
        store.get_online_features(REFS, entity_rows=rows, as_of=T)
    return str(caught.value)


def test_undeclared_keys_are_typed_from_the_sources_and_take_the_fast_path(
    stores: dict[str, FeatureStore],
) -> None:
    untyped = stores["untyped"]
    view = untyped.get_feature_view("driver_stats")
    assert view.declared_key_types == {"driver_id": None}
    assert view.inferred_key_types == {"driver_id": Int64}
    assert view.join_key_types == {"driver_id": Int64}
    expected: dict[str, tuple[tuple[ValueType, ...], bool]] = {
        "driver_stats": ((Int64,), True),
        "city_weather": ((String,), True),
    }
    assert plan_reads(untyped) == expected
    assert plan_reads(stores["typed"]) == expected


@pytest.mark.parametrize("rows", [1, 2, 200], ids=["one", "two", "vectorized"])
def test_same_values_and_statuses_as_with_declared_types(
    stores: dict[str, FeatureStore], rows: int
) -> None:
    cycle = [(1, "1"), (2, "2"), (3, "1"), (4, "3")]  # fresh, aged, null, unknown
    entity_rows = [
        {"driver_id": d, "city_id": c} for d, c in (cycle[i % len(cycle)] for i in range(rows))
    ]
    typed, untyped = answer(stores["typed"], entity_rows), answer(stores["untyped"], entity_rows)
    assert untyped == typed
    statuses = {k: [s.name for s in v] for k, v in untyped["statuses"].items()}
    expected = ["PRESENT", "OUTSIDE_MAX_AGE", "NULL_VALUE", "NOT_FOUND"]
    assert statuses["conv_rate"][:4] == expected[:rows]
    assert untyped["values"]["conv_rate"][:2] == [0.5, None][:rows]
    assert untyped["values"]["temp"][:2] == [21.5, 18.0][:rows]


def test_keys_that_collide_as_strings_are_rejected_as_with_declared_types(
    stores: dict[str, FeatureStore],
) -> None:
    # The text "1" is no driver id and the number 1 is no city id, whichever path answers.
    for rows in ([{"driver_id": "1", "city_id": "1"}], [{"driver_id": 1, "city_id": 1}]):
        message = error_of(stores["untyped"], rows)
        assert message == error_of(stores["typed"], rows)
    assert "join key 'driver_id' of feature view 'driver_stats' is declared Int64" in error_of(
        stores["untyped"], [{"driver_id": "1", "city_id": "1"}]
    )


def test_reapplying_the_same_repo_changes_nothing(stores: dict[str, FeatureStore]) -> None:
    store = stores["untyped"]
    plan = store.apply(definitions(typed=False))
    assert not plan.has_changes
    assert store.registry.current_version(store.project, "feature_view", "driver_stats") == 1
    # The inferred type is no declaration: the content hash is the undeclared one's.
    registered = store.get_feature_view("driver_stats")
    undeclared = definitions(typed=False)[2]
    assert registered.content_hash == undeclared.content_hash


def test_a_registry_row_without_inferred_types_still_serves_and_is_completed_by_apply(
    backend: str, tmp_path: Path
) -> None:
    store = make_store(tmp_path / "old", backend)
    try:
        # What an apply before key inference wrote: the views without inferred types (the
        # entities go through the facade first, which creates the registry).
        store.apply(definitions(typed=False)[:2])
        store.registry.apply(store.project, definitions(typed=False), delete_missing=False)
        assert store.get_feature_view("driver_stats").inferred_key_types == {}
        store.materialize(T - timedelta(days=1), T)
        rows = [{"driver_id": 1, "city_id": "1"}]
        before = answer(store, rows)
        assert before["values"]["conv_rate"] == [0.5]
        assert plan_reads(store)["driver_stats"] == ((None,), False)

        plan = store.apply(definitions(typed=False))
        views = {c.name: c for c in plan.changes if c.kind == "feature_view"}
        assert {c.change for c in views.values()} == {"metadata"}
        assert not plan.breaking
        assert views["driver_stats"].old_version == views["driver_stats"].new_version == 1
        assert "inferred_key_types added ({'driver_id': 'Int64'})" in views["driver_stats"].details
        # Same namespace (version 1): the materialized rows are found, now on the fast path.
        assert plan_reads(store)["driver_stats"] == ((Int64,), True)
        assert answer(store, rows) == before
    finally:
        store.teardown()
        store.close()


def _apply_error(root: Path, objects: list[Definition]) -> str:
    store = make_store(root, "sqlite")
    try:
        store.apply([o for o in objects if isinstance(o, Entity)])  # creates the registry
        with pytest.raises(SourceSchemaError) as caught:
            store.apply(objects)
        assert store.registry.list(store.project, "feature_view") == []  # nothing written
        return str(caught.value)
    finally:
        store.close()


def _driver_view(name: str, driver: Entity, path: str) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[driver],
        schema=[Field(name="conv_rate", dtype=Float64)],
        source=FileSource(path=path),
    )


def test_views_whose_sources_disagree_on_a_key_type_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_sources(root)
    pd.DataFrame({"driver_id": ["a"], "event_timestamp": [T], "conv_rate": [0.1]}).to_parquet(
        root / "data" / "text_drivers.parquet"
    )
    driver = Entity(name="driver", join_keys=["driver_id"])
    message = _apply_error(
        root,
        [
            driver,
            _driver_view("numbers", driver, "data/drivers.parquet"),
            _driver_view("texts", driver, "data/text_drivers.parquet"),
        ],
    )
    assert message == (
        "entity 'driver': its join key 'driver_id' has different types in the sources of the "
        "views that use it ('numbers': Int64, 'texts': String); make the source columns agree, "
        "or declare the entity's value_type"
    )


def test_a_new_view_must_agree_with_the_registered_ones(tmp_path: Path) -> None:
    store = make_store(tmp_path / "repo", "sqlite")
    try:
        driver = Entity(name="driver", join_keys=["driver_id"])
        store.apply([driver, _driver_view("numbers", driver, "data/drivers.parquet")])
        pd.DataFrame({"driver_id": ["a"], "event_timestamp": [T], "conv_rate": [0.1]}).to_parquet(
            tmp_path / "repo" / "data" / "text_drivers.parquet"
        )
        with pytest.raises(SourceSchemaError, match="'numbers': Int64, 'texts': String"):
            store.apply([driver, _driver_view("texts", driver, "data/text_drivers.parquet")])
        assert store.registry.kinds_named(store.project, "texts") == []
    finally:
        store.close()


def test_files_of_one_source_that_disagree_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_sources(root)
    folder = root / "data" / "mixed"
    folder.mkdir()
    for name, ids in (("a.parquet", [1]), ("b.parquet", ["x"])):
        pd.DataFrame({"driver_id": ids, "event_timestamp": [T], "conv_rate": [0.1]}).to_parquet(
            folder / name
        )
    driver = Entity(name="driver", join_keys=["driver_id"])
    message = _apply_error(root, [driver, _driver_view("mixed", driver, "data/mixed")])
    assert message.startswith("feature view 'mixed': join key 'driver_id' has different types")
    assert "a.parquet: Int64" in message
    assert "b.parquet: String" in message


def test_a_declared_type_is_still_checked_against_the_source(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_sources(root)
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=String)
    message = _apply_error(root, [driver, _driver_view("numbers", driver, "data/drivers.parquet")])
    assert "cannot serve join key 'driver_id' declared String" in message


def test_a_key_column_with_no_inferable_type_stays_untyped(tmp_path: Path) -> None:
    store = make_store(tmp_path / "repo", "sqlite")
    try:
        pd.DataFrame({"driver_id": [1.5], "event_timestamp": [T], "conv_rate": [0.1]}).to_parquet(
            tmp_path / "repo" / "data" / "float_drivers.parquet"
        )
        driver = Entity(name="driver", join_keys=["driver_id"])
        store.apply([driver, _driver_view("floats", driver, "data/float_drivers.parquet")])
        view = store.get_feature_view("floats")
        assert view.join_key_types == {"driver_id": None}
        assert "inferred_key_types" not in view.meta()
    finally:
        store.close()


def test_a_denied_principal_is_refused_on_the_fast_path_too(tmp_path: Path) -> None:
    root = tmp_path / "acl"
    write_sources(root)
    (root / "featurestore.yaml").write_text(
        f"project: keys_{uuid.uuid4().hex[:10]}\nonline_store: {{type: sqlite, path: data/online.db}}\n"
    )
    policies = [
        Policy(name="admins", roles=["admin"], actions=["admin"]),
        Policy(name="readers", principals=["bob"], actions=["describe", "read_online"]),
        Policy(
            name="no-weather",
            effect="deny",
            principals=["bob"],
            actions=["read_online"],
            resources=[Resource(kind="feature_view", name="city_weather")],
        ),
    ]
    bob = Principal("bob", frozenset())
    with FeatureStore(root, principal=Principal("root", frozenset({"admin"}))) as admin:
        admin.apply([*definitions(typed=False), *policies])
        admin.materialize(T - timedelta(days=1), T)
    with FeatureStore(root) as store:  # opened after the policies, as a service would be
        assert plan_reads(store)["city_weather"] == ((String,), True)
        allowed = store.get_online_features(
            REFS[:2], entity_rows=[{"driver_id": 1}], as_of=T, principal=bob
        )
        assert allowed.to_dict()["conv_rate"] == [0.5]
        with pytest.raises(AccessDeniedError, match="city_weather"):
            store.get_online_features(
                REFS, entity_rows=[{"driver_id": 1, "city_id": "1"}], as_of=T, principal=bob
            )
