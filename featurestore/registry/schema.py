"""The registry's tables, as the current code reads and writes them.

``projects``          one row per project: the lock row writers take, and the state token
``objects``           one row per (project, kind, name): current version, deleted flag, current meta
``object_versions``   every version ever written: spec JSON, meta JSON at that time, content hash
``history``           every recorded change, in order
``watermarks``        per online store and view version: how far materialization got (migrations 3, 6)
``audit_log``         append-only record of who did what to which resource, and the outcome
``access_keys``       hashed API keys: principal, roles, revocation (migration 4, as the next two)
``lineage_edges``     edges of the lineage graph: sources, view versions, services, datasets, runs
``saved_datasets``    training sets saved with ``job.save_dataset``: location and view versions
``validation_results`` every validation of a view's rows: trigger, mode, outcome, checks (migration 5)
``feature_statistics`` column statistics per view and window, or per saved dataset (migration 5)
``drift_reports``     every drift comparison of a view: reference, current window, outcome (migration 5)
``online_freshness``  per online store and view version: the newest event time written online,
                      and when (migration 7)
``schema_version``    which migrations have run (see ``migrations.py``)

JSON is stored as canonical text (sorted keys) rather than a JSON column, so the stored bytes
hash to the content hash on every database. A change here needs a migration in ``migrations.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

NAME = 200
#: Longest online store identity (a type and a normalized path or URL).
ONLINE_STORE_IDENTITY = 1000
HASH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so values are written as naive UTC there and made aware on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"registry timestamps must be timezone-aware, got {value!r}")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return (
            value.replace(tzinfo=timezone.utc)
            if value.tzinfo is None
            else value.astimezone(timezone.utc)
        )


# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere a 64-bit key is worth having.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(NAME), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("state_token", String(HASH), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

objects = Table(
    "objects",
    metadata,
    Column("project", String(NAME), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("meta_json", Text, nullable=False),
    Column("meta_hash", String(HASH), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

object_versions = Table(
    "object_versions",
    metadata,
    Column("project", String(NAME), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("spec_json", Text, nullable=False),
    Column("meta_json", Text, nullable=False),
    Column("content_hash", String(HASH), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

history = Table(
    "history",
    metadata,
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

# Added by migration 2: `history(project, name)` is the CLI's most common question.
history_by_name = Index("ix_history_project_name", history.c.project, history.c.name, history.c.id)

# Added by migration 3, keyed by online store since migration 6 (a watermark says how far one
# store was filled). No foreign key to object_versions: a watermark outlives a soft delete.
watermarks = Table(
    "watermarks",
    metadata,
    Column("project", String(NAME), primary_key=True),
    Column("online_store", String(ONLINE_STORE_IDENTITY), primary_key=True),
    Column("view", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("end_ts", UTCDateTime, nullable=False),
    Column("created_watermark", UTCDateTime, nullable=True),
    Column("rows", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Added by migration 4: the governance layer's tables (see featurestore.governance).
online_freshness = Table(
    "online_freshness",
    metadata,
    Column("project", String(NAME), primary_key=True),
    Column("online_store", String(ONLINE_STORE_IDENTITY), primary_key=True),
    Column("view", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("newest_event", UTCDateTime, nullable=False),
    Column("written_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
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
audit_by_time = Index("ix_audit_log_project_at", audit_log.c.project, audit_log.c.at)

access_keys = Table(
    "access_keys",
    metadata,
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
access_keys_by_hash = Index("ix_access_keys_hash", access_keys.c.key_hash, unique=True)

lineage_edges = Table(
    "lineage_edges",
    metadata,
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
lineage_by_source = Index(
    "ix_lineage_source",
    lineage_edges.c.project,
    lineage_edges.c.source_kind,
    lineage_edges.c.source_name,
)
lineage_by_target = Index(
    "ix_lineage_target",
    lineage_edges.c.project,
    lineage_edges.c.target_kind,
    lineage_edges.c.target_name,
)

saved_datasets = Table(
    "saved_datasets",
    metadata,
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

validation_results = Table(
    "validation_results",
    metadata,
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
validation_by_view = Index(
    "ix_validation_results_view",
    validation_results.c.project,
    validation_results.c.view,
    validation_results.c.started_at,
)

feature_statistics = Table(
    "feature_statistics",
    metadata,
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
statistics_by_subject = Index(
    "ix_feature_statistics_subject",
    feature_statistics.c.project,
    feature_statistics.c.subject_kind,
    feature_statistics.c.subject,
)

drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("project", String(NAME), nullable=False),
    Column("view", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reference", Text, nullable=False),
    Column("current", Text, nullable=False),
    Column("drifted", Boolean, nullable=False),
    Column("report_json", Text, nullable=False),
)
drift_by_view = Index(
    "ix_drift_reports_view", drift_reports.c.project, drift_reports.c.view, drift_reports.c.at
)
