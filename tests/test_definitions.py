"""Definitions: construction errors name the object; hashes separate spec from metadata."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore import Entity, FeatureService, FeatureView, Field, FileSource
from featurestore.errors import DefinitionError
from featurestore.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    from_name,
)

ALL_SCALARS = [Int32, Int64, Float32, Float64, String, Bool, Bytes, UnixTimestamp]


def make_view(**overrides: object) -> FeatureView:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
    kwargs: dict[str, object] = {
        "name": "driver_stats",
        "entities": [driver],
        "ttl": timedelta(hours=2),
        "schema": [Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        "source": FileSource(path="data/driver_stats.parquet", created_timestamp_column="created"),
        "description": "hourly stats",
        "tags": {"team": "ops"},
        "owner": "ops@example.com",
    }
    kwargs.update(overrides)
    return FeatureView(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ALL_SCALARS + [Array(t) for t in ALL_SCALARS])
def test_every_type_round_trips_by_name(dtype: object) -> None:
    assert from_name(dtype.name) == dtype  # type: ignore[attr-defined]


def test_unsupported_type_is_named() -> None:
    with pytest.raises(DefinitionError, match=r"field 'x': unsupported type"):
        Field(name="x", dtype=float)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="unsupported value type 'Decimal'"):
        from_name("Decimal")
    with pytest.raises(DefinitionError, match="arrays of arrays"):
        Array(Array(Int64))  # type: ignore[arg-type]


def test_metadata_change_keeps_hash_but_spec_change_does_not() -> None:
    base = make_view()
    relabeled = make_view(
        description="other words", tags={"team": "growth"}, owner="x@y", online=False
    )
    assert base.content_hash == relabeled.content_hash
    assert base.meta_hash != relabeled.meta_hash
    retyped = make_view(
        schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64)]
    )
    assert retyped.content_hash != base.content_hash
    assert make_view(ttl=timedelta(hours=3)).content_hash != base.content_hash


def test_field_description_is_metadata() -> None:
    plain = make_view()
    described = make_view(
        schema=[
            Field(name="conv_rate", dtype=Float32, description="share"),
            Field(name="trips", dtype=Int64),
        ]
    )
    assert plain.content_hash == described.content_hash
    assert plain.meta_hash != described.meta_hash


def test_serialization_round_trip() -> None:
    view = make_view()
    again = FeatureView.from_dict(view.to_dict())
    assert again == view
    assert again.content_hash == view.content_hash
    entity = Entity(
        name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64}
    )
    assert Entity.from_dict(entity.to_dict()) == entity
    service = FeatureService(name="svc", features=[view[["trips"]]])
    assert FeatureService.from_dict(service.to_dict(), {"driver_stats": view}) == service


def test_ttl_zero_means_no_bound() -> None:
    assert make_view(ttl=timedelta(0)).ttl is None
    assert make_view(ttl=timedelta(0)).content_hash == make_view(ttl=None).content_hash
    with pytest.raises(DefinitionError, match="'driver_stats': ttl must not be negative"):
        make_view(ttl=timedelta(seconds=-1))


def test_schema_errors_name_the_view() -> None:
    with pytest.raises(DefinitionError, match="'driver_stats': field 'a' appears twice"):
        make_view(schema=[Field(name="a", dtype=Int64), Field(name="a", dtype=Int64)])
    with pytest.raises(DefinitionError, match="'driver_stats': the schema declares no feature"):
        make_view(schema=[Field(name="driver_id", dtype=Int64)])
    with pytest.raises(
        DefinitionError, match="join key 'driver_id' is Int64 in its entity but String"
    ):
        make_view(schema=[Field(name="driver_id", dtype=String), Field(name="a", dtype=Int64)])
    with pytest.raises(DefinitionError, match="timestamp column"):
        make_view(schema=[Field(name="created", dtype=Int64)])


def test_join_key_fields_declare_key_types() -> None:
    untyped = Entity(name="rider")
    view = make_view(
        entities=[untyped],
        schema=[Field(name="rider", dtype=String), Field(name="score", dtype=Float64)],
    )
    assert view.join_keys == ["rider"]
    assert view.feature_names == ["score"]
    assert view.join_key_types["rider"] == String


def test_entity_errors() -> None:
    with pytest.raises(DefinitionError, match="entity 'e': join_keys must be a list"):
        Entity(name="e", join_keys="id")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="repeat a name"):
        Entity(name="e", join_keys=["a", "a"])
    with pytest.raises(DefinitionError, match="not join keys"):
        Entity(name="e", join_keys=["a"], value_type={"b": Int64})
    with pytest.raises(DefinitionError, match="entity name 'bad name' is invalid"):
        Entity(name="bad name")


def test_two_entities_sharing_a_join_key_are_rejected() -> None:
    a = Entity(name="a", join_keys=["id"])
    b = Entity(name="b", join_keys=["id"])
    with pytest.raises(DefinitionError, match="share a join key name"):
        make_view(entities=[a, b])


def test_global_view_has_no_keys() -> None:
    view = make_view(entities=[])
    assert view.join_keys == []


def test_feature_service_projections() -> None:
    view = make_view()
    with pytest.raises(DefinitionError, match="has no feature 'nope'"):
        view[["nope"]]
    service = FeatureService(name="svc", features=[view[["trips"]]])
    assert service.feature_refs() == ["driver_stats:trips"]
    whole = FeatureService(name="svc", features=[view])
    assert whole.feature_refs() == ["driver_stats:conv_rate", "driver_stats:trips"]
    with pytest.raises(DefinitionError, match="lists a view twice"):
        FeatureService(name="svc", features=[view, view[["trips"]]])
    with pytest.raises(DefinitionError, match="feature service 'svc': lists no feature"):
        FeatureService(name="svc", features=[])


def test_source_errors() -> None:
    with pytest.raises(DefinitionError, match="FileSource: path must be a non-empty string"):
        FileSource(path="")
    with pytest.raises(DefinitionError, match="maps two columns to one name"):
        FileSource(path="x.parquet", field_mapping={"a": "z", "b": "z"})
    source = FileSource(path="x.parquet", field_mapping={"conv": "conv_rate"})
    assert source.source_column("conv_rate") == "conv"
    assert source.source_column("other") == "other"
