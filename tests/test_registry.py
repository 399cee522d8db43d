"""The registry contract, run on a real SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from featurestore.errors import (
    DefinitionError,
    ObjectNotFoundError,
    RegistryConflictError,
    RegistryError,
)
from featurestore.registry import Registry, open_registry, schema
from featurestore.registry.sql import SqlRegistry
from featurestore.types import Float64, String

PROJECT = "demo"


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every registry table, in key order: "exactly as before" means equal dumps."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
                ]
                for table in schema.metadata.sorted_tables
            }
    finally:
        engine.dispose()


class RegistryContract:
    """What every registry backend must do; subclasses provide the ``url`` fixture."""

    __test__ = False

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, url: str) -> Iterator[Registry]:
        reg = open_registry(url)
        yield reg
        reg.close()

    # -- versions ------------------------------------------------------------------------------

    def test_first_apply_adds_version_one_of_each_object(self, registry, defs):
        entity, view, service = defs.entity(), defs.view(), defs.service()
        plan = registry.apply(PROJECT, [entity, view, service], delete_missing=True)
        assert [(c.kind, c.name, c.change, c.old_version, c.new_version) for c in plan.changes] == [
            ("entity", "driver", "added", None, 1),
            ("feature_view", "driver_stats", "added", None, 1),
            ("feature_service", "driver_model", "added", None, 1),
        ]
        assert registry.get(PROJECT, "entity", "driver") == entity
        assert registry.get(PROJECT, "feature_view", "driver_stats") == view
        assert registry.get(PROJECT, "feature_service", "driver_model") == service
        assert registry.current_version(PROJECT, "feature_view", "driver_stats") == 1
        [entry] = registry.history(PROJECT, "driver_stats")
        assert (entry.kind, entry.version, entry.change) == ("feature_view", 1, "added")
        assert entry.content_hash == view.content_hash
        assert entry.applied_at.tzinfo is not None
        assert entry.applied_at.utcoffset() == timedelta(0)

    def test_identical_apply_writes_nothing(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        before, token = dump(url), registry.state_token(PROJECT)
        plan = registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        assert not plan.has_changes
        assert {c.change for c in plan.changes} == {"unchanged"}
        assert dump(url) == before
        assert registry.state_token(PROJECT) == token

    def test_spec_change_makes_a_new_version_and_old_versions_stay_readable(self, registry, defs):
        old = defs.view()
        new = defs.view(ttl=timedelta(hours=3))
        registry.apply(PROJECT, [defs.entity(), old], delete_missing=True)
        plan = registry.apply(PROJECT, [defs.entity(), new], delete_missing=True)
        [change] = [c for c in plan.changes if c.kind == "feature_view"]
        assert (change.change, change.old_version, change.new_version) == ("changed", 1, 2)
        assert change.details == ["ttl: 2:00:00 -> 3:00:00"]
        assert change.breaking == []
        assert registry.get(PROJECT, "feature_view", "driver_stats") == new
        assert registry.get(PROJECT, "feature_view", "driver_stats", version=1) == old
        assert registry.get(PROJECT, "feature_view", "driver_stats", version=2) == new
        assert [e.change for e in registry.history(PROJECT, "driver_stats")] == ["added", "changed"]

    def test_metadata_change_is_recorded_without_a_new_version(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        token = registry.state_token(PROJECT)
        described = defs.view(description="conversion stats", tags={"team": "ml"})
        plan = registry.apply(PROJECT, [defs.entity(), described], delete_missing=True)
        [change] = [c for c in plan.changes if c.kind == "feature_view"]
        assert (change.change, change.old_version, change.new_version) == ("metadata", 1, 1)
        assert change.details == ["description changed", "tag team added ('ml')"]
        assert registry.current_version(PROJECT, "feature_view", "driver_stats") == 1
        current = registry.get(PROJECT, "feature_view", "driver_stats")
        assert (current.description, current.tags) == ("conversion stats", {"team": "ml"})
        assert [(e.change, e.version) for e in registry.history(PROJECT, "driver_stats")] == [
            ("added", 1),
            ("metadata", 1),
        ]
        assert registry.state_token(PROJECT) != token

    def test_breaking_changes_are_flagged_with_reasons(self, registry, defs):
        service = defs.service(features=[defs.view()[["conv_rate", "acc_rate"]]])
        registry.apply(PROJECT, [defs.entity(), defs.view(), service], delete_missing=True)
        retyped = defs.view(features=[("conv_rate", Float64)])
        narrowed = defs.service(features=[retyped[["conv_rate"]]])
        plan = registry.plan(PROJECT, [defs.entity(), retyped, narrowed], delete_missing=True)
        reasons = {c.name: c.breaking for c in plan.breaking}
        assert reasons == {
            "driver_stats": ["feature conv_rate: Float32 -> Float64", "feature acc_rate removed"],
            "driver_model": ["feature driver_stats:acc_rate removed"],
        }
        rendered = plan.render()
        assert "v1 -> v2" in rendered
        assert "BREAKING" in rendered

    def test_plan_writes_nothing(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity()], delete_missing=True)
        before = dump(url)
        plan = registry.plan(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        assert [c.change for c in plan.changes] == ["unchanged", "added"]
        assert dump(url) == before

    # -- deletion ------------------------------------------------------------------------------

    def test_delete_missing_deletes_softly(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        plan = registry.apply(PROJECT, [defs.entity()], delete_missing=True)
        [change] = [c for c in plan.changes if c.change == "deleted"]
        assert (change.kind, change.name, change.old_version) == ("feature_view", "driver_stats", 1)
        assert change.breaking == ["feature view 'driver_stats' deleted"]
        with pytest.raises(ObjectNotFoundError, match=r"driver_stats.*deleted.*\[1\]"):
            registry.get(PROJECT, "feature_view", "driver_stats")
        with pytest.raises(ObjectNotFoundError, match="deleted"):
            registry.current_version(PROJECT, "feature_view", "driver_stats")
        assert registry.get(PROJECT, "feature_view", "driver_stats", version=1) == defs.view()
        assert registry.list(PROJECT, "feature_view") == []
        assert registry.kinds_named(PROJECT, "driver_stats") == ["feature_view"]
        assert [e.change for e in registry.history(PROJECT, "driver_stats")] == ["added", "deleted"]

    def test_readding_a_deleted_object_restores_it(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        registry.apply(PROJECT, [defs.entity()], delete_missing=True)
        same = registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        [change] = [c for c in same.changes if c.kind == "feature_view"]
        assert (change.change, change.restored, change.new_version) == ("added", True, 1)
        registry.apply(PROJECT, [defs.entity()], delete_missing=True)
        changed = defs.view(ttl=timedelta(hours=5))
        plan = registry.apply(PROJECT, [defs.entity(), changed], delete_missing=True)
        [change] = [c for c in plan.changes if c.kind == "feature_view"]
        assert (change.old_version, change.new_version) == (1, 2)
        assert registry.get(PROJECT, "feature_view", "driver_stats") == changed
        assert [(e.change, e.version) for e in registry.history(PROJECT, "driver_stats")] == [
            ("added", 1),
            ("deleted", 1),
            ("restored", 1),
            ("deleted", 1),
            ("restored", 2),
        ]

    def test_without_delete_missing_apply_only_upserts(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        other = defs.view("trips", features=[("trips", Float64)])
        plan = registry.apply(PROJECT, [other], delete_missing=False)
        assert [(c.name, c.change) for c in plan.changes] == [("trips", "added")]
        names = [v.name for v in registry.list(PROJECT, "feature_view")]
        assert names == ["driver_stats", "trips"]

    # -- validation and atomicity --------------------------------------------------------------

    def test_two_different_objects_with_one_name_conflict(self, registry, defs, url):
        before = dump(url)
        a, b = defs.view(), defs.view(ttl=timedelta(hours=9))
        with pytest.raises(RegistryConflictError) as info:
            registry.apply(PROJECT, [defs.entity(), a, b], delete_missing=True)
        message = str(info.value)
        assert "feature view 'driver_stats'" in message
        assert a.content_hash[:12] in message
        assert b.content_hash[:12] in message
        assert dump(url) == before

    def test_the_same_object_twice_is_fine(self, registry, defs):
        plan = registry.apply(
            PROJECT, [defs.entity(), defs.view(), defs.view()], delete_missing=True
        )
        assert [c.name for c in plan.changes] == ["driver", "driver_stats"]

    def test_view_needs_a_registered_or_applied_entity(self, registry, defs, url):
        with pytest.raises(
            DefinitionError, match="feature view 'driver_stats' uses entity 'driver'"
        ):
            registry.apply(PROJECT, [defs.view()], delete_missing=False)
        registry.apply(PROJECT, [defs.entity()], delete_missing=False)
        plan = registry.apply(PROJECT, [defs.view()], delete_missing=False)
        assert [c.change for c in plan.changes] == ["added"]

    def test_service_needs_its_views_and_features(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity()], delete_missing=False)
        with pytest.raises(
            DefinitionError, match="feature service 'driver_model' uses feature view"
        ):
            registry.apply(PROJECT, [defs.service()], delete_missing=False)
        narrowed = defs.view(features=[("conv_rate", defs.view().feature("conv_rate").dtype)])
        service = defs.service(features=[defs.view()[["acc_rate"]]])
        with pytest.raises(
            DefinitionError, match="feature 'acc_rate' of feature view 'driver_stats'"
        ):
            registry.apply(PROJECT, [narrowed, service], delete_missing=False)
        assert registry.list(PROJECT, "feature_view") == []

    def test_cannot_delete_a_view_a_remaining_service_uses(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity(), defs.view(), defs.service()], delete_missing=True)
        before = dump(url)
        with pytest.raises(
            DefinitionError,
            match="cannot delete feature view 'driver_stats': feature service 'driver_model'",
        ):
            registry.apply(PROJECT, [defs.entity(), defs.service()], delete_missing=True)
        assert dump(url) == before

    def test_a_failure_part_way_through_the_writes_leaves_the_registry_as_it_was(
        self, registry, defs, url, monkeypatch
    ):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        before, token = dump(url), registry.state_token(PROJECT)
        real_write = SqlRegistry._write_change
        written: list[str] = []

        def fail_after_first(self, conn, project, change, *args):
            if written:
                raise RuntimeError("simulated crash after the first object was written")
            real_write(self, conn, project, change, *args)
            written.append(change.name)

        monkeypatch.setattr(SqlRegistry, "_write_change", fail_after_first)
        changes = [defs.entity(), defs.view(ttl=timedelta(hours=4)), defs.service()]
        with pytest.raises(RuntimeError, match="simulated crash"):
            registry.apply(PROJECT, changes, delete_missing=True)
        assert written == ["driver_stats"]
        assert dump(url) == before
        assert registry.state_token(PROJECT) == token

    def test_a_check_judges_the_locked_plan_and_a_refusal_writes_nothing(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        before = dump(url)
        seen: list[tuple[list[str], list[tuple[str, str]]]] = []

        def refuse(plan, stored):
            seen.append(([c.change for c in plan.changes], sorted(stored)))
            raise DefinitionError("refused by the check")

        with pytest.raises(DefinitionError, match="refused by the check"):
            registry.apply(PROJECT, [defs.entity()], delete_missing=True, check=refuse)
        assert seen == [
            (["unchanged", "deleted"], [("entity", "driver"), ("feature_view", "driver_stats")])
        ]
        assert dump(url) == before

    # -- reads ---------------------------------------------------------------------------------

    def test_latest_has_the_current_metadata_even_once_deleted(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        tagged = defs.view(ttl=timedelta(hours=3), tags={"pii": "true"})
        registry.apply(PROJECT, [defs.entity(), tagged], delete_missing=True)
        assert registry.get(PROJECT, "feature_view", "driver_stats", version=1).tags == {}
        assert registry.latest(PROJECT, "feature_view", "driver_stats") == tagged
        registry.apply(PROJECT, [defs.entity()], delete_missing=True)
        assert registry.latest(PROJECT, "feature_view", "driver_stats") == tagged
        with pytest.raises(ObjectNotFoundError, match="no feature view 'nope'"):
            registry.latest(PROJECT, "feature_view", "nope")

    def test_get_errors_name_the_object_and_the_versions(self, registry, defs):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        registry.apply(PROJECT, [defs.entity(), defs.view(ttl=None)], delete_missing=True)
        with pytest.raises(ObjectNotFoundError, match=r"feature view 'nope' in project 'demo'"):
            registry.get(PROJECT, "feature_view", "nope")
        with pytest.raises(
            ObjectNotFoundError, match=r"no version 7; available versions: \[1, 2\]"
        ):
            registry.get(PROJECT, "feature_view", "driver_stats", version=7)
        with pytest.raises(ObjectNotFoundError, match="'driver_stats' exists as: feature view"):
            registry.get(PROJECT, "feature_service", "driver_stats")
        with pytest.raises(RegistryError, match="unknown object kind 'view'"):
            registry.get(PROJECT, "view", "driver_stats")

    def test_a_service_is_resolved_against_the_current_views(self, registry, defs):
        whole = defs.service()
        registry.apply(PROJECT, [defs.entity(), defs.view(), whole], delete_missing=True)
        wider = defs.view(
            features=[
                ("conv_rate", defs.view().feature("conv_rate").dtype),
                ("acc_rate", defs.view().feature("acc_rate").dtype),
                ("city", String),
            ]
        )
        narrowed = defs.service(features=[wider[["city"]]])
        registry.apply(PROJECT, [defs.entity(), wider, narrowed], delete_missing=True)
        old = registry.get(PROJECT, "feature_service", "driver_model", version=1)
        assert old.feature_refs() == [
            "driver_stats:conv_rate",
            "driver_stats:acc_rate",
            "driver_stats:city",
        ]
        assert registry.get(PROJECT, "feature_service", "driver_model").feature_refs() == [
            "driver_stats:city"
        ]
        [listed] = registry.list(PROJECT, "feature_service")
        assert listed == narrowed

    def test_list_is_sorted_and_kinds_named_reports_every_kind(self, registry, defs):
        views = [defs.view(n) for n in ("zeta", "alpha", "mid")]
        same_name = defs.entity("alpha", keys=["alpha_id"])
        registry.apply(PROJECT, [defs.entity(), same_name, *views], delete_missing=True)
        assert [v.name for v in registry.list(PROJECT, "feature_view")] == ["alpha", "mid", "zeta"]
        assert [e.name for e in registry.list(PROJECT, "entity")] == ["alpha", "driver"]
        assert registry.kinds_named(PROJECT, "alpha") == ["entity", "feature_view"]
        assert registry.kinds_named(PROJECT, "nothing") == []

    def test_history_filters_by_kind_and_is_oldest_first(self, registry, defs):
        same_name = defs.entity("driver_stats", keys=["x"])
        registry.apply(PROJECT, [defs.entity(), same_name, defs.view()], delete_missing=True)
        registry.apply(
            PROJECT, [defs.entity(), same_name, defs.view(ttl=None)], delete_missing=True
        )
        entries = registry.history(PROJECT, "driver_stats")
        assert [(e.kind, e.version) for e in entries] == [
            ("entity", 1),
            ("feature_view", 1),
            ("feature_view", 2),
        ]
        assert [e.applied_at for e in entries] == sorted(e.applied_at for e in entries)
        assert all(e.applied_at.tzinfo == timezone.utc for e in entries)
        only = registry.history(PROJECT, "driver_stats", kind="feature_view")
        assert [e.version for e in only] == [1, 2]
        assert only[1].details == ["ttl: 2:00:00 -> none"]

    def test_history_page_is_a_slice_of_the_history_newest_first(self, registry, defs):
        # Versions, metadata changes, another kind of the same name and another object: the
        # page holds only the asked kind's entries of that name.
        same_name = defs.entity("driver_stats", keys=["x"])
        for hours in range(1, 8):
            other = defs.view("other", ttl=timedelta(hours=hours))
            for description in ("new version", "metadata only"):
                view = defs.view(ttl=timedelta(hours=hours), description=description)
                objects = [defs.entity(), same_name, view, other]
                registry.apply(PROJECT, objects, delete_missing=True)
        oracle = list(reversed(registry.history(PROJECT, "driver_stats", kind="feature_view")))
        assert {e.change for e in oracle} == {"added", "changed", "metadata"}
        for offset in range(len(oracle) + 2):
            for limit in (1, 3, len(oracle) + 5):
                page, total = registry.history_page(
                    PROJECT, "driver_stats", "feature_view", offset=offset, limit=limit
                )
                assert total == len(oracle)
                assert page == oracle[offset : offset + limit]
        assert registry.history_page(PROJECT, "nothing", "feature_view", offset=0, limit=5) == (
            [],
            0,
        )

    def test_get_versions_answers_as_get_does_for_each(self, registry, defs):
        for hours in (1, 2, 3):
            view = defs.view(ttl=timedelta(hours=hours), description=f"as of {hours}h")
            registry.apply(PROJECT, [defs.entity(), view], delete_missing=True)
        registry.apply(PROJECT, [defs.entity()], delete_missing=True)  # deleted: still read
        found = registry.get_versions(PROJECT, "feature_view", "driver_stats")
        assert list(found) == [1, 2, 3]
        for version, definition in found.items():
            assert definition == registry.get(PROJECT, "feature_view", "driver_stats", version)
            assert (
                definition.description
                == registry.get(PROJECT, "feature_view", "driver_stats", version).description
            )
        with pytest.raises(ObjectNotFoundError, match="nothing"):
            registry.get_versions(PROJECT, "feature_view", "nothing")

    def test_projects_are_separate(self, registry, defs):
        registry.apply("one", [defs.entity(), defs.view()], delete_missing=True)
        token = registry.state_token("one")
        assert registry.state_token("two") != token
        registry.apply("two", [defs.entity()], delete_missing=True)
        assert registry.list("two", "feature_view") == []
        assert registry.state_token("one") == token
        with pytest.raises(ObjectNotFoundError):
            registry.get("two", "feature_view", "driver_stats")

    def test_state_token_changes_with_every_change(self, registry, defs):
        tokens = [registry.state_token(PROJECT)]
        for objects in (
            [defs.entity()],
            [defs.entity(), defs.view()],
            [defs.entity(), defs.view(description="d")],
            [defs.entity()],
        ):
            registry.apply(PROJECT, objects, delete_missing=True)
            tokens.append(registry.state_token(PROJECT))
        assert len(set(tokens)) == len(tokens)

    def test_change_probe_sees_another_connections_change_on_the_next_call(
        self, registry, defs, url
    ):
        probe = registry.change_probe(PROJECT)
        try:
            assert probe.changed()  # the first look
            assert not probe.changed()
            with open_registry(url) as other:  # its own connections, as another process has
                other.touch(PROJECT)
                assert probe.changed()
                assert not probe.changed()
                other.apply(PROJECT, [defs.entity()], delete_missing=True)
                assert probe.changed()
            probe.close()
            assert probe.changed()  # reconnected: it cannot know what happened meanwhile
            assert not probe.changed()
        finally:
            probe.close()

    def test_data_survives_reopening(self, registry, defs, url):
        registry.apply(PROJECT, [defs.entity(), defs.view()], delete_missing=True)
        token = registry.state_token(PROJECT)
        registry.close()
        with open_registry(url) as reopened:
            assert reopened.get(PROJECT, "feature_view", "driver_stats") == defs.view()
            assert reopened.state_token(PROJECT) == token


class TestSQLiteRegistry(RegistryContract):
    """The contract on a SQLite file."""

    __test__ = True

    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresRegistry(RegistryContract):
    """The contract on PostgreSQL, one schema per test."""

    __test__ = True

    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


# -- opening: errors are RegistryErrors, readable, and never show a password --------------------


def test_unreachable_postgres_is_a_registry_error_without_the_password():
    url = "postgresql+psycopg://fs_user:s3cr3t-pw@127.0.0.1:1/registry?connect_timeout=2"
    with pytest.raises(RegistryError) as info:
        open_registry(url)
    message = str(info.value)
    assert "cannot open the registry" in message
    assert "127.0.0.1" in message
    assert "s3cr3t-pw" not in message


def test_bare_postgresql_url_uses_psycopg():
    url = "postgresql://fs_user:s3cr3t-pw@127.0.0.1:1/registry?connect_timeout=2"
    with pytest.raises(RegistryError) as info:
        open_registry(url)
    assert "psycopg2" not in str(info.value)
    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid registry URL"),
        ("mysql://u:s3cr3t-pw@localhost/db", "'mysql'.*not supported"),
    ],
)
def test_bad_urls_are_registry_errors(url, expected):
    with pytest.raises(RegistryError, match=expected) as info:
        open_registry(url)
    assert "s3cr3t-pw" not in str(info.value)


def test_sqlite_path_that_is_a_folder_is_a_registry_error(tmp_path):
    with pytest.raises(RegistryError, match="cannot open the registry"):
        open_registry(f"sqlite:///{tmp_path}")


def test_sqlite_creates_the_parent_folder(tmp_path):
    path = tmp_path / "a" / "b" / "registry.db"
    with open_registry(f"sqlite:///{path}"):
        pass
    assert path.is_file()
