"""Schema migrations, run in order when a registry is opened.

``schema_version`` records each migration that has run. Opening a registry upgrades it to
:data:`LATEST` inside one transaction (all pending migrations or none), under a lock so that
processes opening the same new registry at once do not race. A registry written by a newer
featurestore is refused rather than misread.

Migrations are frozen: each one states the DDL of its own step and never reads ``schema.py``'s
tables, which describe only the newest schema. To change the schema, add a migration here and
change ``schema.py`` to match; a test compares a migrated database with ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.schema import CreateIndex

from featurestore.errors import RegistryError
from featurestore.registry import schema
from featurestore.registry.dialects import DatabaseDialect
from featurestore.registry.schema import HASH, NAME, AutoId, UTCDateTime


@dataclass(frozen=True)
class Migration:
    """One schema step: run on a connection inside the migration transaction."""

    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _create_v1_tables(conn: Connection) -> None:
    v1 = MetaData()
    Table(
        "projects",
        v1,
        Column("name", String(NAME), primary_key=True),
        Column("state_token", String(HASH), nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    Table(
        "objects",
        v1,
        Column("project", String(NAME), primary_key=True),
        Column("kind", String(32), primary_key=True),
        Column("name", String(NAME), primary_key=True),
        Column("current_version", Integer, nullable=False),
        Column("deleted", Boolean, nullable=False),
        Column("meta_json", Text, nullable=False),
        Column("meta_hash", String(HASH), nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    Table(
        "object_versions",
        v1,
        Column("project", String(NAME), primary_key=True),
        Column("kind", String(32), primary_key=True),
        Column("name", String(NAME), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("spec_json", Text, nullable=False),
        Column("meta_json", Text, nullable=False),
        Column("content_hash", String(HASH), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )
    Table(
        "history",
        v1,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("name", String(NAME), nullable=False),
        Column("version", Integer, nullable=False),
        Column("change", String(16), nullable=False),
        Column("content_hash", String(HASH), nullable=False),
        Column("applied_at", UTCDateTime, nullable=False),
        Column("details_json", Text, nullable=False),
    )
    v1.create_all(conn)


def _index_history_by_name(conn: Connection) -> None:
    # `featurestore history NAME` filters on (project, name); v1 scanned the whole table.
    conn.execute(CreateIndex(schema.history_by_name))


def _create_watermarks(conn: Connection) -> None:
    # Materialization records, per view version, how far it got; see featurestore.materialize.
    v3 = MetaData()
    Table(
        "watermarks",
        v3,
        Column("project", String(NAME), primary_key=True),
        Column("view", String(NAME), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("end_ts", UTCDateTime, nullable=False),
        Column("created_watermark", UTCDateTime, nullable=True),
        Column("rows", BigInteger, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    v3.create_all(conn)


def _create_governance_tables(conn: Connection) -> None:
    # The governance layer: audit log, API keys, lineage and saved datasets.
    v4 = MetaData()
    audit = Table(
        "audit_log",
        v4,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("principal", String(NAME), nullable=True),
        Column("action", String(32), nullable=False),
        Column("resource", String(2 * NAME), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("count", BigInteger, nullable=False),
        Column("detail_json", Text, nullable=False),
    )
    Index("ix_audit_log_project_at", audit.c.project, audit.c.at)
    keys = Table(
        "access_keys",
        v4,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("key_hash", String(HASH), nullable=False),
        Column("key_prefix", String(16), nullable=False),
        Column("principal", String(NAME), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("roles_json", Text, nullable=False),
        Column("description", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("revoked_at", UTCDateTime, nullable=True),
    )
    Index("ix_access_keys_hash", keys.c.key_hash, unique=True)
    lineage = Table(
        "lineage_edges",
        v4,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("source_kind", String(32), nullable=False),
        Column("source_name", String(2 * NAME), nullable=False),
        Column("source_version", Integer, nullable=True),
        Column("target_kind", String(32), nullable=False),
        Column("target_name", String(2 * NAME), nullable=False),
        Column("target_version", Integer, nullable=True),
        Column("relation", String(32), nullable=False),
        Column("run_id", String(64), nullable=True),
        Column("detail_json", Text, nullable=False),
    )
    Index("ix_lineage_source", lineage.c.project, lineage.c.source_kind, lineage.c.source_name)
    Index("ix_lineage_target", lineage.c.project, lineage.c.target_kind, lineage.c.target_name)
    Table(
        "saved_datasets",
        v4,
        Column("project", String(NAME), primary_key=True),
        Column("name", String(NAME), primary_key=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("principal", String(NAME), nullable=True),
        Column("location", Text, nullable=False),
        Column("fingerprint", String(HASH), nullable=False),
        Column("views_json", Text, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("detail_json", Text, nullable=False),
    )
    v4.create_all(conn)


def _create_quality_tables(conn: Connection) -> None:
    v5 = MetaData()
    results = Table(
        "validation_results",
        v5,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("view", String(NAME), nullable=False),
        Column("version", Integer, nullable=True),
        Column("trigger", String(16), nullable=False),
        Column("mode", String(16), nullable=False),
        Column("success", Boolean, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("started_at", UTCDateTime, nullable=False),
        Column("window_start", UTCDateTime, nullable=True),
        Column("window_end", UTCDateTime, nullable=True),
        Column("result_json", Text, nullable=False),
    )
    Index("ix_validation_results_view", results.c.project, results.c.view, results.c.started_at)
    statistics = Table(
        "feature_statistics",
        v5,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("subject_kind", String(32), nullable=False),
        Column("subject", String(NAME), nullable=False),
        Column("version", Integer, nullable=True),
        Column("window_start", UTCDateTime, nullable=True),
        Column("window_end", UTCDateTime, nullable=True),
        Column("computed_at", UTCDateTime, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("profile_json", Text, nullable=False),
    )
    Index(
        "ix_feature_statistics_subject",
        statistics.c.project,
        statistics.c.subject_kind,
        statistics.c.subject,
    )
    drift = Table(
        "drift_reports",
        v5,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("project", String(NAME), nullable=False),
        Column("view", String(NAME), nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("reference", Text, nullable=False),
        Column("current", Text, nullable=False),
        Column("drifted", Boolean, nullable=False),
        Column("report_json", Text, nullable=False),
    )
    Index("ix_drift_reports_view", drift.c.project, drift.c.view, drift.c.at)
    v5.create_all(conn)


#: The online store of watermarks recorded before migration 6, which did not say which store
#: they were for: no store has this identity, so each store's first incremental run after the
#: upgrade starts from scratch (safe: writes never replace a newer row).
UNKNOWN_ONLINE_STORE = ""


def _key_watermarks_by_online_store(conn: Connection) -> None:
    # A watermark says how far one online store was filled: switching stores must not reuse it.
    # The primary key changes, which SQLite cannot ALTER: the (small) table is rebuilt.
    v3 = MetaData()
    old = Table(
        "watermarks",
        v3,
        Column("project", String(NAME), primary_key=True),
        Column("view", String(NAME), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("end_ts", UTCDateTime, nullable=False),
        Column("created_watermark", UTCDateTime, nullable=True),
        Column("rows", BigInteger, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    kept = [dict(row._mapping) for row in conn.execute(select(old))]
    old.drop(conn)
    v6 = MetaData()
    new = Table(
        "watermarks",
        v6,
        Column("project", String(NAME), primary_key=True),
        Column("online_store", String(1000), primary_key=True),
        Column("view", String(NAME), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("end_ts", UTCDateTime, nullable=False),
        Column("created_watermark", UTCDateTime, nullable=True),
        Column("rows", BigInteger, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    new.create(conn)
    if kept:
        conn.execute(new.insert(), [{**row, "online_store": UNKNOWN_ONLINE_STORE} for row in kept])


def _create_online_freshness(conn: Connection) -> None:
    Table(
        "online_freshness",
        MetaData(),
        Column("project", String(NAME), primary_key=True),
        Column("online_store", String(schema.ONLINE_STORE_IDENTITY), primary_key=True),
        Column("view", String(NAME), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("newest_event", UTCDateTime, nullable=False),
        Column("written_at", UTCDateTime, nullable=False),
    ).create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "projects, objects, versions and history", _create_v1_tables),
    Migration(2, "index history by project and name", _index_history_by_name),
    Migration(3, "materialization watermarks per view version", _create_watermarks),
    Migration(
        4, "governance: audit log, access keys, lineage, saved datasets", _create_governance_tables
    ),
    Migration(
        5, "quality: validation results, feature statistics, drift reports", _create_quality_tables
    ),
    Migration(6, "watermarks per online store", _key_watermarks_by_online_store),
    Migration(7, "online freshness per view version and online store", _create_online_freshness),
)
LATEST = MIGRATIONS[-1].version


def schema_version(conn: Connection) -> int:
    """The registry's schema version: 0 for an empty database."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0)


def migrate(engine: Engine, dialect: DatabaseDialect, target: int = LATEST) -> int:
    """Upgrade the registry to ``target`` (default: the newest schema); returns the version."""
    with engine.connect() as conn, conn.begin():
        found = schema_version(conn)
    _refuse_newer(found, dialect)
    if found >= target:
        return found
    with engine.connect().execution_options(**dialect.write_options()) as conn, conn.begin():
        dialect.lock_migrations(conn)
        # Another process may have migrated while this one waited for the lock.
        found = schema_version(conn)
        _refuse_newer(found, dialect)
        schema.schema_version.create(conn, checkfirst=True)
        for step in MIGRATIONS:
            if found < step.version <= target:
                step.upgrade(conn)
                conn.execute(
                    schema.schema_version.insert().values(
                        version=step.version,
                        description=step.description,
                        applied_at=datetime.now(timezone.utc),
                    )
                )
                found = step.version
    return found


def _refuse_newer(found: int, dialect: DatabaseDialect) -> None:
    if found > LATEST:
        raise RegistryError(
            f"the registry {dialect.display_url} has schema version {found}, but this featurestore "
            f"understands versions up to {LATEST}: upgrade featurestore to use this registry"
        )
