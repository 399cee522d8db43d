"""The apply plan on its own: diffs, breaking-change rules, validation and rendering (no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore.definitions import Definition
from featurestore.errors import DefinitionError, RegistryConflictError
from featurestore.registry.plan import ObjectChange, Plan, StoredObject, build_plan
from featurestore.types import Float32, Float64, Int64, String


def stored(obj: Definition, version: int = 1, *, deleted: bool = False) -> StoredObject:
    """The registry's record of ``obj`` at ``version``."""
    return StoredObject(
        kind=obj.kind,
        name=obj.name,
        version=version,
        content_hash=obj.content_hash,
        meta_hash=obj.meta_hash,
        spec=obj.spec(),
        meta=obj.meta(),
        deleted=deleted,
    )


def change_of(plan: Plan, name: str) -> ObjectChange:
    [found] = [c for c in plan.changes if c.name == name]
    return found


def test_new_objects_are_added_in_dependency_order(defs):
    plan = build_plan([], [defs.service(), defs.view(), defs.entity()], delete_missing=True)
    assert [(c.kind, c.change, c.new_version) for c in plan.changes] == [
        ("entity", "added", 1),
        ("feature_view", "added", 1),
        ("feature_service", "added", 1),
    ]
    assert plan.has_changes
    assert plan.breaking == []


def test_unchanged_objects_make_an_empty_plan(defs):
    state = [stored(defs.entity()), stored(defs.view(), 3)]
    plan = build_plan(state, [defs.entity(), defs.view()], delete_missing=True)
    assert [(c.change, c.old_version, c.new_version) for c in plan.changes] == [
        ("unchanged", 1, 1),
        ("unchanged", 3, 3),
    ]
    assert not plan.has_changes


@pytest.mark.parametrize(
    ("new_view", "details"),
    [
        ({"ttl": timedelta(hours=3)}, ["ttl: 2:00:00 -> 3:00:00"]),
        ({"ttl": None}, ["ttl: 2:00:00 -> none"]),
        (
            {"path": "data/other.parquet"},
            [
                "source path: 'data/driver_stats.parquet' -> 'data/other.parquet'",
                "source name: 'driver_stats' -> 'other'",
            ],
        ),
        (
            {"features": [("conv_rate", Float32), ("acc_rate", Float32), ("trips", Int64)]},
            ["feature trips added"],
        ),
        (
            {"features": [("acc_rate", Float32), ("conv_rate", Float32)]},
            ["features reordered: ['conv_rate', 'acc_rate'] -> ['acc_rate', 'conv_rate']"],
        ),
    ],
)
def test_non_breaking_view_changes_bump_the_version(defs, new_view, details):
    state = [stored(defs.entity()), stored(defs.view())]
    plan = build_plan(state, [defs.entity(), defs.view(**new_view)], delete_missing=True)
    change = change_of(plan, "driver_stats")
    assert (change.change, change.old_version, change.new_version) == ("changed", 1, 2)
    assert change.details == details
    assert change.breaking == []


def test_view_losing_or_retyping_features_is_breaking(defs):
    state = [stored(defs.entity()), stored(defs.view())]
    new = defs.view(features=[("conv_rate", Float64)])
    change = change_of(build_plan(state, [defs.entity(), new], delete_missing=True), "driver_stats")
    assert change.breaking == ["feature conv_rate: Float32 -> Float64", "feature acc_rate removed"]


def test_view_entity_and_join_key_changes_are_breaking(defs):
    customer = defs.entity("customer", keys=["customer_id"])
    state = [stored(defs.entity()), stored(customer), stored(defs.view())]
    new = defs.view(entities=[defs.entity(), customer])
    plan = build_plan(state, [defs.entity(), customer, new], delete_missing=True)
    assert change_of(plan, "driver_stats").breaking == [
        "entities: ['driver'] -> ['driver', 'customer']",
        "join key customer_id added",
    ]


def test_entity_join_key_changes_are_breaking(defs):
    state = [stored(defs.entity())]
    retyped = defs.entity(dtype=String)
    change = change_of(build_plan(state, [retyped], delete_missing=False), "driver")
    assert change.breaking == ["join key driver_id: Int64 -> String"]
    renamed = defs.entity(keys=["id"])
    change = change_of(build_plan(state, [renamed], delete_missing=False), "driver")
    assert change.breaking == ["join key driver_id removed", "join key id added"]


def test_service_losing_a_view_or_feature_is_breaking_and_gaining_one_is_not(defs):
    view, trips = defs.view(), defs.view("trips", features=[("trips", Int64)])
    base = [stored(defs.entity()), stored(view), stored(trips)]
    both = defs.service(features=[view, trips])
    state = [*base, stored(both)]
    fewer = defs.service(features=[view[["conv_rate"]]])
    change = change_of(
        build_plan(state, [defs.entity(), view, trips, fewer], delete_missing=True), "driver_model"
    )
    assert change.breaking == [
        "feature driver_stats:acc_rate removed",
        "feature view trips removed",
    ]
    only_view = defs.service(features=[view])
    state = [*base, stored(only_view)]
    change = change_of(
        build_plan(state, [defs.entity(), view, trips, both], delete_missing=True), "driver_model"
    )
    assert (change.change, change.details, change.breaking) == (
        "changed",
        ["feature view trips added"],
        [],
    )


def test_metadata_only_changes_keep_the_version(defs):
    state = [stored(defs.entity()), stored(defs.view(), 2)]
    described = defs.view(description="new words", tags={"team": "ml"})
    change = change_of(
        build_plan(state, [defs.entity(), described], delete_missing=True), "driver_stats"
    )
    assert (change.change, change.old_version, change.new_version) == ("metadata", 2, 2)
    assert change.details == ["description changed", "tag team added ('ml')"]


def test_deletions_only_with_delete_missing_and_always_breaking(defs):
    state = [stored(defs.entity()), stored(defs.view())]
    assert build_plan(state, [defs.entity()], delete_missing=False).changes[0].change == "unchanged"
    plan = build_plan(state, [defs.entity()], delete_missing=True)
    change = change_of(plan, "driver_stats")
    assert (change.change, change.old_version, change.new_version) == ("deleted", 1, None)
    assert change.breaking == ["feature view 'driver_stats' deleted"]


def test_deleted_objects_stay_deleted_unless_applied_again(defs):
    state = [stored(defs.entity()), stored(defs.view(), 4, deleted=True)]
    assert [c.name for c in build_plan(state, [defs.entity()], delete_missing=True).changes] == [
        "driver"
    ]
    same = change_of(
        build_plan(state, [defs.entity(), defs.view()], delete_missing=True), "driver_stats"
    )
    assert (same.change, same.restored, same.old_version, same.new_version) == ("added", True, 4, 4)
    changed = defs.view(ttl=None)
    other = change_of(
        build_plan(state, [defs.entity(), changed], delete_missing=True), "driver_stats"
    )
    assert (other.old_version, other.new_version, other.breaking) == (4, 5, [])
    assert other.details[0] == "restored (was deleted at v4)"


def test_two_different_objects_with_one_name_conflict(defs):
    with pytest.raises(
        RegistryConflictError, match="two different definitions of feature view 'driver_stats'"
    ):
        build_plan([], [defs.entity(), defs.view(), defs.view(ttl=None)], delete_missing=True)


def test_an_entity_and_a_view_may_share_a_name(defs):
    same = defs.entity("driver_stats", keys=["k"])
    plan = build_plan([], [defs.entity(), same, defs.view()], delete_missing=True)
    assert [(c.kind, c.name) for c in plan.changes] == [
        ("entity", "driver"),
        ("entity", "driver_stats"),
        ("feature_view", "driver_stats"),
    ]


def test_validation_reports_every_dangling_reference(defs):
    service = defs.service(features=[defs.view(), defs.view("trips", features=[("trips", Int64)])])
    with pytest.raises(DefinitionError) as info:
        build_plan([], [defs.view(), service], delete_missing=True)
    message = str(info.value)
    assert "nothing was written" in message
    assert (
        "feature view 'driver_stats' uses entity 'driver', which is neither registered nor in this apply"
        in message
    )
    assert "feature service 'driver_model' uses feature view 'trips'" in message


def test_deleting_an_entity_a_view_still_uses_is_rejected(defs):
    state = [stored(defs.entity()), stored(defs.view())]
    with pytest.raises(
        DefinitionError,
        match="cannot delete entity 'driver': feature view 'driver_stats' still uses it",
    ):
        build_plan(state, [defs.view()], delete_missing=True)


def test_a_view_change_may_not_drop_a_feature_a_remaining_service_projects(defs):
    view = defs.view()
    state = [
        stored(defs.entity()),
        stored(view),
        stored(defs.service(features=[view[["acc_rate"]]])),
    ]
    narrowed = defs.view(features=[("conv_rate", Float32)])
    with pytest.raises(DefinitionError, match="feature 'acc_rate' of feature view 'driver_stats'"):
        build_plan(state, [narrowed], delete_missing=False)


def test_a_service_exposing_one_feature_name_twice_is_rejected(defs):
    stats, other = defs.view(), defs.view("driver_daily", features=[("conv_rate", Float64)])
    clashing = defs.service(features=[stats, other])
    with pytest.raises(DefinitionError) as caught:
        build_plan([], [defs.entity(), stats, other, clashing], delete_missing=True)
    message = str(caught.value)
    assert "apply rejected, nothing was written" in message
    assert (
        "feature service 'driver_model' exposes the feature name 'conv_rate' more than once "
        "(driver_stats:conv_rate and driver_daily:conv_rate)"
    ) in message
    assert "acc_rate" not in message
    # Projecting one of them away resolves it.
    fine = defs.service(features=[stats[["acc_rate"]], other])
    plan = build_plan([], [defs.entity(), stats, other, fine], delete_missing=True)
    assert [c.change for c in plan.changes] == ["added"] * 4


def test_a_view_gaining_a_feature_a_service_already_exposes_is_rejected(defs):
    stats = defs.view()
    daily = defs.view("driver_daily", features=[("trips", Int64)])
    state = [stored(defs.entity()), stored(stats), stored(daily)]
    state.append(stored(defs.service(features=[stats, daily])))
    grown = defs.view("driver_daily", features=[("trips", Int64), ("acc_rate", Float32)])
    with pytest.raises(DefinitionError, match="exposes the feature name 'acc_rate' more than once"):
        build_plan(state, [grown], delete_missing=False)


def test_only_definitions_can_be_applied(defs):
    with pytest.raises(
        DefinitionError,
        match="expected an Entity, FeatureView, OnDemandFeatureView, FeatureService or Policy",
    ):
        build_plan([], [defs.entity(), "driver"], delete_missing=True)  # type: ignore[list-item]


def test_render_groups_by_kind_and_marks_breaking_changes(defs):
    state = [stored(defs.entity()), stored(defs.view()), stored(defs.view("old"))]
    new = defs.view(
        features=[("conv_rate", Float64), ("acc_rate", Float32)], ttl=timedelta(hours=3)
    )
    text = build_plan(state, [defs.entity(), new, defs.service()], delete_missing=True).render()
    assert text.splitlines() == [
        "Entities",
        "  = driver        unchanged  v1",
        "Feature views",
        "  ~ driver_stats  changed    v1 -> v2    BREAKING",
        "      ! feature conv_rate: Float32 -> Float64",
        "      - ttl: 2:00:00 -> 3:00:00",
        "  - old           deleted    v1          BREAKING",
        "      - deleted (v1 stays in the history)",
        "      ! feature view 'old' deleted",
        "Feature services",
        "  + driver_model  added      v1",
        "Plan: 1 added, 1 changed, 1 unchanged, 1 deleted; 2 BREAKING",
    ]


def test_render_of_a_plan_without_changes(defs):
    text = build_plan([stored(defs.entity())], [defs.entity()], delete_missing=True).render()
    assert text.endswith("No changes (1 unchanged).")
    assert Plan([]).render() == "Nothing to apply: no objects given."
