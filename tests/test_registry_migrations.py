"""Registry schema migrations: fresh databases, a hand-built v1 database, and refusals.

The v1 database is written here with plain SQL, independently of ``migrations.py``, the way a
registry created by featurestore at schema version 1 looks on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from featurestore.definitions import canonical_json
from featurestore.errors import RegistryError
from featurestore.registry import migrations, open_registry, schema
from featurestore.registry.dialects import dialect_for

V1_DDL = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL PRIMARY KEY, description VARCHAR(200) NOT NULL,
    applied_at {ts} NOT NULL);
CREATE TABLE projects (
    name VARCHAR(200) NOT NULL PRIMARY KEY, state_token VARCHAR(64) NOT NULL,
    updated_at {ts} NOT NULL);
CREATE TABLE objects (
    project VARCHAR(200) NOT NULL, kind VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL,
    current_version INTEGER NOT NULL, deleted BOOLEAN NOT NULL, meta_json TEXT NOT NULL,
    meta_hash VARCHAR(64) NOT NULL, updated_at {ts} NOT NULL,
    PRIMARY KEY (project, kind, name));
CREATE TABLE object_versions (
    project VARCHAR(200) NOT NULL, kind VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL,
    version INTEGER NOT NULL, spec_json TEXT NOT NULL, meta_json TEXT NOT NULL,
    content_hash VARCHAR(64) NOT NULL, created_at {ts} NOT NULL,
    PRIMARY KEY (project, kind, name, version));
CREATE TABLE history (
    id {id} NOT NULL PRIMARY KEY, project VARCHAR(200) NOT NULL, kind VARCHAR(32) NOT NULL,
    name VARCHAR(200) NOT NULL, version INTEGER NOT NULL, change VARCHAR(16) NOT NULL,
    content_hash VARCHAR(64) NOT NULL, applied_at {ts} NOT NULL, details_json TEXT NOT NULL);
"""

APPLIED = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


class MigrationContract:
    """Migration behaviour every backend must show; subclasses give the URL and SQL types."""

    __test__ = False
    timestamp_type: str
    id_type: str

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    def timestamp(self, value: datetime) -> Any:
        """How the v1 code stored a timestamp on this backend."""
        return value

    @pytest.fixture
    def engine(self, url: str) -> Iterator[sa.Engine]:
        engine = sa.create_engine(url)
        yield engine
        engine.dispose()

    def build_v1(self, engine: sa.Engine, defs: Any) -> dict[str, Any]:
        """A v1 registry with an entity, a view at v2 (v1 kept) and its history."""
        entity, old, new = defs.entity(), defs.view(), defs.view(ttl=timedelta(hours=3))
        ts = self.timestamp(APPLIED)
        with engine.begin() as conn:
            for statement in V1_DDL.format(ts=self.timestamp_type, id=self.id_type).split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
            insert = conn.execute
            insert(sa.text("INSERT INTO schema_version VALUES (1, 'v1 schema', :ts)"), {"ts": ts})
            insert(sa.text("INSERT INTO projects VALUES ('demo', 'token-v1', :ts)"), {"ts": ts})
            for obj, version in ((entity, 1), (new, 2)):
                insert(
                    sa.text(
                        "INSERT INTO objects VALUES ('demo', :kind, :name, :version, :deleted,"
                        " :meta, :meta_hash, :ts)"
                    ),
                    {
                        "kind": obj.kind,
                        "name": obj.name,
                        "version": version,
                        "deleted": False,
                        "meta": canonical_json(obj.meta()),
                        "meta_hash": obj.meta_hash,
                        "ts": ts,
                    },
                )
            rows = [(entity, 1, "added"), (old, 1, "added"), (new, 2, "changed")]
            for obj, version, change in rows:
                params = {
                    "kind": obj.kind,
                    "name": obj.name,
                    "version": version,
                    "spec": canonical_json(obj.spec()),
                    "meta": canonical_json(obj.meta()),
                    "hash": obj.content_hash,
                    "ts": ts,
                    "change": change,
                }
                insert(
                    sa.text(
                        "INSERT INTO object_versions VALUES ('demo', :kind, :name, :version,"
                        " :spec, :meta, :hash, :ts)"
                    ),
                    params,
                )
                insert(
                    sa.text(
                        "INSERT INTO history (project, kind, name, version, change,"
                        " content_hash, applied_at, details_json) VALUES ('demo', :kind,"
                        " :name, :version, :change, :hash, :ts, '[]')"
                    ),
                    params,
                )
        return {"entity": entity, "old": old, "new": new}

    @staticmethod
    def versions(engine: sa.Engine) -> list[int]:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.text("SELECT version FROM schema_version ORDER BY 1")).scalars()
            )

    @staticmethod
    def assert_matches_schema_py(engine: sa.Engine) -> None:
        inspector = sa.inspect(engine)
        assert set(inspector.get_table_names()) == set(schema.metadata.tables)
        for table in schema.metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
            assert set(pk) == {c.name for c in table.primary_key.columns}, table.name
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
            assert indexes == {i.name: [c.name for c in i.columns] for i in table.indexes}

    def test_a_new_registry_runs_every_migration(self, url, engine):
        open_registry(url).close()
        assert (
            self.versions(engine)
            == [m.version for m in migrations.MIGRATIONS]
            == [1, 2, 3, 4, 5, 6, 7]
        )
        self.assert_matches_schema_py(engine)

    def test_opening_twice_migrates_once(self, url, engine):
        open_registry(url).close()
        open_registry(url).close()
        assert self.versions(engine) == [1, 2, 3, 4, 5, 6, 7]

    def test_a_v1_registry_is_upgraded_and_keeps_its_data(self, url, engine, defs):
        built = self.build_v1(engine, defs)
        with open_registry(url) as registry:
            assert self.versions(engine) == [1, 2, 3, 4, 5, 6, 7]
            self.assert_matches_schema_py(engine)
            assert registry.get("demo", "entity", "driver") == built["entity"]
            assert registry.get("demo", "feature_view", "driver_stats") == built["new"]
            assert registry.get("demo", "feature_view", "driver_stats", version=1) == built["old"]
            history = registry.history("demo", "driver_stats")
            assert [(e.version, e.change, e.applied_at) for e in history] == [
                (1, "added", APPLIED),
                (2, "changed", APPLIED),
            ]
            assert registry.state_token("demo") == "token-v1"
            newer = defs.view(ttl=timedelta(hours=4))
            plan = registry.apply("demo", [built["entity"], newer], delete_missing=True)
            assert [c.new_version for c in plan.changes] == [1, 3]
            assert registry.state_token("demo") != "token-v1"

    def test_v5_watermarks_are_kept_for_no_online_store(self, url, engine):
        # A registry at version 5 with a watermark, written with that version's DDL.
        dialect = dialect_for(url)
        registry_engine = dialect.create_engine()
        try:
            migrations.migrate(registry_engine, dialect, target=5)
        finally:
            registry_engine.dispose()
        ts = self.timestamp(APPLIED)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO watermarks (project, view, version, end_ts, created_watermark,"
                    " rows, updated_at) VALUES ('demo', 'driver_stats', 2, :ts, NULL, 7, :ts)"
                ),
                {"ts": ts},
            )
        with open_registry(url) as registry:
            assert self.versions(engine) == [1, 2, 3, 4, 5, 6, 7]
            self.assert_matches_schema_py(engine)
            # Nobody knows which store it described: it stays, under no store's identity, so
            # every store's next incremental run starts from scratch.
            unknown = migrations.UNKNOWN_ONLINE_STORE
            kept = registry.get_watermark("demo", "driver_stats", 2, online_store=unknown)
            assert kept is not None
            assert (kept.end, kept.created, kept.rows) == (APPLIED, None, 7)
            store = "sqlite:/data/online.db"
            assert registry.list_watermarks("demo", online_store=store) == {}
            registry.set_watermark(
                "demo", "driver_stats", 2, online_store=store, end=APPLIED, created=None, rows=1
            )
            assert set(registry.list_watermarks("demo", online_store=store)) == {
                ("driver_stats", 2)
            }

    def test_a_failed_upgrade_changes_nothing(self, url, engine, defs, monkeypatch):
        self.build_v1(engine, defs)

        def broken(conn: sa.Connection) -> None:
            raise RuntimeError("migration 8 failed")

        steps = (*migrations.MIGRATIONS, migrations.Migration(8, "broken", broken))
        monkeypatch.setattr(migrations, "MIGRATIONS", steps)
        monkeypatch.setattr(migrations, "LATEST", 8)
        dialect = dialect_for(url)
        registry_engine = dialect.create_engine()
        try:
            with pytest.raises(RuntimeError, match="migration 8 failed"):
                migrations.migrate(registry_engine, dialect, target=8)
        finally:
            registry_engine.dispose()
        assert self.versions(engine) == [1]
        assert sa.inspect(engine).get_indexes("history") == []
        assert not sa.inspect(engine).has_table("watermarks")
        assert not sa.inspect(engine).has_table("audit_log")
        assert not sa.inspect(engine).has_table("validation_results")
        assert not sa.inspect(engine).has_table("online_freshness")

    def test_a_registry_newer_than_the_code_is_refused(self, url, engine):
        open_registry(url).close()
        with engine.begin() as conn:
            conn.execute(
                schema.schema_version.insert().values(
                    version=99, description="from the future", applied_at=APPLIED
                )
            )
        with pytest.raises(
            RegistryError, match=r"schema version 99.*up to 7.*upgrade featurestore"
        ):
            open_registry(url)


class TestSQLiteMigrations(MigrationContract):
    """Migrations of a SQLite registry file."""

    __test__ = True
    timestamp_type = "DATETIME"
    id_type = "INTEGER"

    @pytest.fixture
    def url(self, sqlite_url: str, tmp_path: Any) -> str:
        (tmp_path / "registry").mkdir(exist_ok=True)
        return sqlite_url

    def timestamp(self, value: datetime) -> Any:
        # SQLAlchemy's SQLite DATETIME stores naive ISO text; the registry writes UTC.
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.postgres
class TestPostgresMigrations(MigrationContract):
    """Migrations of a PostgreSQL registry, one schema per test."""

    __test__ = True
    timestamp_type = "TIMESTAMP WITH TIME ZONE"
    id_type = "BIGSERIAL"

    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
