"""Feature references: parsing, version pins, clash detection."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.errors import FeatureReferenceError
from featurestore.references import FeatureRef, parse_reference, resolve_requests
from featurestore.types import Float32, Int64


def view(name: str, *features: str) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[Entity(name="driver", join_keys=["driver_id"], value_type=Int64)],
        ttl=timedelta(hours=1),
        schema=[Field(name=f, dtype=Float32) for f in features],
        source=FileSource(path=f"{name}.parquet"),
    )


VIEWS = {"a": view("a", "x", "y"), "b": view("b", "x", "z")}


def lookup(name: str, version: int | None) -> FeatureView:
    if name not in VIEWS:
        raise FeatureReferenceError(f"no feature view {name!r}")
    return VIEWS[name]


def test_parse() -> None:
    assert parse_reference("driver_stats:conv_rate") == FeatureRef(
        "driver_stats", None, "conv_rate"
    )
    assert parse_reference("driver_stats@2:conv_rate") == FeatureRef("driver_stats", 2, "conv_rate")
    assert str(parse_reference("v@3:f")) == "v@3:f"


@pytest.mark.parametrize("bad", ["conv_rate", "a:b:c", "a@x:b", "a@0:b", ":b", "a:"])
def test_malformed_references(bad: str) -> None:
    with pytest.raises(FeatureReferenceError, match=r"malformed|versions start at 1"):
        parse_reference(bad)


def test_clash_needs_full_feature_names() -> None:
    with pytest.raises(
        FeatureReferenceError,
        match=r"a:x and b:x would both be returned as column 'x'.*full_feature_names",
    ):
        resolve_requests(["a:x", "b:x"], lookup, full_feature_names=False)
    requests = resolve_requests(["a:x", "b:x", "b:z"], lookup, full_feature_names=True)
    assert [r.output_names for r in requests] == [("a__x",), ("b__x", "b__z")]


def test_unknown_feature_and_view() -> None:
    with pytest.raises(FeatureReferenceError, match="'a' has no feature 'nope'"):
        resolve_requests(["a:nope"], lookup, full_feature_names=False)
    with pytest.raises(FeatureReferenceError, match="no feature view 'c'"):
        resolve_requests(["c:x"], lookup, full_feature_names=False)


def test_requests_group_by_view_in_first_seen_order() -> None:
    requests = resolve_requests(["b:z", "a:y", "b:x"], lookup, full_feature_names=False)
    assert [(r.view.name, r.features) for r in requests] == [("b", ("z", "x")), ("a", ("y",))]


def test_duplicate_and_empty_requests() -> None:
    with pytest.raises(FeatureReferenceError, match="requested twice"):
        resolve_requests(["a:x", "a:x"], lookup, full_feature_names=False)
    with pytest.raises(FeatureReferenceError, match="no features requested"):
        resolve_requests([], lookup, full_feature_names=False)


def test_same_view_at_two_versions() -> None:
    with pytest.raises(FeatureReferenceError, match="view_vN__feature"):
        resolve_requests(["a@1:x", "a:x"], lookup, full_feature_names=False)
    requests = resolve_requests(["a@1:x", "a:x"], lookup, full_feature_names=True)
    assert [r.output_names for r in requests] == [("a_v1__x",), ("a__x",)]
