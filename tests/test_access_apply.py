"""Apply is authorized on the plan it commits, and every change it commits is audited.

The race: a principal computes what its apply will change, then someone else commits a policy,
then the apply runs. The registry re-plans under its lock, so the apply now also deletes that
policy (it is not in the applier's objects). The check must judge that committed plan, inside
the same transaction: a non-admin is refused and the policy stays; an admin's deletion goes
through and is audited like every other change.

The interleaving is real: the applier's ``registry.apply`` is wrapped so that, just before the
registry takes its lock, a second store (its own registry connection) applies the new policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from access_repo import (
    CUSTOMER,
    CUSTOMER_PROFILE,
    DRIVER,
    DRIVER_STATS,
    LEAKY,
    POLICIES,
    ROOT,
    SAFE,
    make_repo,
)

from featurestore import Entity, FeatureStore, FeatureView, Policy, Resource
from featurestore.definitions.base import Definition
from featurestore.errors import AccessDeniedError
from featurestore.governance.access import Principal
from featurestore.types import Int64

DEVELOPERS = Policy(name="developers", roles=["developer"], actions=["describe", "apply", "delete"])
FREEZE = Policy(
    name="freeze",
    effect="deny",
    roles=["developer"],
    actions=["apply"],
    resources=[Resource(kind="feature_view", name="customer_*")],
)
DEVELOPER = Principal("dev", frozenset({"developer"}))


def registered() -> list[Definition]:
    """Everything the fixture registered, plus the developers' policy."""
    return [
        DRIVER,
        CUSTOMER,
        DRIVER_STATS,
        CUSTOMER_PROFILE,
        LEAKY,
        SAFE,
        *POLICIES,
        DEVELOPERS,
    ]


def described(view: FeatureView, description: str) -> FeatureView:
    changed = FeatureView.from_dict(view.to_dict())
    changed.description = description
    return changed


def race(store: FeatureStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``store``'s next apply meet a policy committed by an admin just before its lock."""
    registry = store.registry
    real_apply = registry.apply

    def apply_after_someone_else(
        project: str, objects: Sequence[Definition], **options: Any
    ) -> Any:
        with FeatureStore(root, principal=ROOT) as admin:
            admin.apply([FREEZE])
        return real_apply(project, objects, **options)

    monkeypatch.setattr(registry, "apply", apply_after_someone_else)


def policy_names(root: Path) -> list[str]:
    with FeatureStore(root, principal=ROOT) as admin:
        return [p.name for p in admin.registry.list(admin.project, "policy")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def root(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The access repository, on a SQLite or a PostgreSQL registry (whose lock differs)."""
    registry = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    root, _ = make_repo(tmp_path, registry)
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply([DEVELOPERS])
    return root


def test_a_policy_committed_before_the_lock_is_not_deleted_by_a_non_admin(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FeatureStore(root, principal=DEVELOPER) as developer:
        objects = [*registered(), described(DRIVER_STATS, "rates per driver")]
        objects.remove(DRIVER_STATS)
        # Without the race this apply is allowed: it only changes a view's description.
        assert developer.plan(objects, delete_missing=True).has_changes
        race(developer, root, monkeypatch)
        with pytest.raises(AccessDeniedError, match=r"no policy allows admin on project:"):
            developer.apply(objects, delete_missing=True)
    assert "freeze" in policy_names(root)
    with FeatureStore(root, principal=ROOT) as admin:
        view = admin.get_feature_view("driver_stats")
        records = admin.audit_log(principal="dev")
    assert view.description == ""  # nothing of the refused apply was written
    assert [(r.action, r.outcome) for r in records] == [("admin", "denied")]


def test_an_admins_apply_audits_every_change_it_commits_policies_included(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vehicle = Entity(name="vehicle", join_keys=["vehicle_id"], value_type=Int64)
    readers = Policy(name="readers", roles=["reader"], actions=["describe"])
    objects = [
        *[o for o in registered() if o.name not in ("leaky", "developers")],
        vehicle,
        readers,
        described(CUSTOMER_PROFILE, "ages"),
    ]
    objects.remove(CUSTOMER_PROFILE)
    with FeatureStore(root, principal=ROOT) as admin:
        race(admin, root, monkeypatch)
        applied = admin.apply(objects, delete_missing=True)
        records = [r for r in admin.audit_log() if r.principal == "root" and r.outcome == "ok"]
    committed = {(c.kind, c.name, c.change) for c in applied.changes if c.change != "unchanged"}
    assert committed == {
        ("entity", "vehicle", "added"),
        ("policy", "readers", "added"),
        ("feature_view", "customer_profile", "metadata"),
        ("feature_service", "leaky", "deleted"),
        ("policy", "developers", "deleted"),
        ("policy", "freeze", "deleted"),  # committed by the race, after the applier looked
    }
    audited = {(r.action, r.resource, r.detail["change"]) for r in records[-len(committed) :]}
    assert audited == {
        ("apply", "entity:vehicle", "added"),
        ("admin", "policy:readers", "added"),
        ("apply", "feature_view:customer_profile", "metadata"),
        ("delete", "feature_service:leaky", "deleted"),
        ("admin", "policy:developers", "deleted"),
        ("admin", "policy:freeze", "deleted"),
    }
    assert policy_names(root) == sorted(p.name for p in [*POLICIES, readers])


def test_dropping_a_tag_in_the_same_apply_does_not_escape_a_deny_on_it(root: Path) -> None:
    with FeatureStore(root, principal=ROOT) as admin:
        protected = described(DRIVER_STATS, "")
        protected.tags = {"protected": "true"}
        guard = Policy(
            name="protected",
            effect="deny",
            roles=["developer"],
            actions=["apply", "delete"],
            resources=[Resource(kind="feature_view", tags={"protected": "true"})],
        )
        admin.apply([protected, guard])
    unprotected = described(DRIVER_STATS, "no longer protected")
    with (
        FeatureStore(root, principal=DEVELOPER) as developer,
        pytest.raises(AccessDeniedError, match="'protected' denies apply on feature_view:driver"),
    ):
        developer.apply([unprotected])
