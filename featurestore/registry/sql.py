"""The registry on any SQL database, written once with SQLAlchemy Core.

Whatever differs between SQLite and PostgreSQL is asked of the :class:`DatabaseDialect`.
An apply runs in one write transaction: lock the project, read its state, plan against that
state, write every change, bump the state token. Any error rolls all of it back.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from featurestore.definitions import (
    Definition,
    canonical_json,
)
from featurestore.errors import (
    ObjectNotFoundError,
    RegistryError,
    RegistryNotFoundError,
    did_you_mean,
)
from featurestore.registry import schema
from featurestore.registry.base import (
    ApplyCheck,
    HistoryChange,
    HistoryEntry,
    Registry,
    Watermark,
)
from featurestore.registry.dialects import DatabaseDialect, dialect_for
from featurestore.registry.file_watch import RegistryFileWatch, missing_registry_message
from featurestore.registry.migrations import migrate
from featurestore.registry.plan import KINDS, ObjectChange, Plan, StoredObject, build_plan, label
from featurestore.registry.probe import ChangeProbe, TokenProbe
from featurestore.registry.rebuild import as_data, live_objects, rebuild, rebuild_version, views_of

_NO_STATE = "empty"


def open_registry(url: str, *, create: bool = True) -> Registry:
    """Open (creating or upgrading as needed) the registry at a SQLAlchemy URL.

        open_registry("sqlite:////srv/repo/data/registry.db")
        open_registry("postgresql+psycopg://featurestore@db:5432/registry")

    With ``create=False`` a SQLite file that does not exist is a
    :class:`RegistryNotFoundError` instead of a new, empty registry (the facade creates one
    only to apply). Raises :class:`RegistryError` with a password-free message when the
    database is unusable.
    """
    dialect = dialect_for(url)
    path = dialect.database_file
    if path is not None and not create and not path.exists():
        raise RegistryNotFoundError(missing_registry_message(path))
    try:
        engine = dialect.create_engine()
    except OSError as exc:
        raise RegistryError(f"cannot create the registry {dialect.display_url}: {exc}") from None
    try:
        migrate(engine, dialect)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise RegistryError(
            f"cannot open the registry {dialect.display_url}: {dialect.describe(exc)}"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return SqlRegistry(engine, dialect, None if path is None else RegistryFileWatch(path))


class SqlRegistry(Registry):
    """:class:`Registry` on SQLite or PostgreSQL; build it with :func:`open_registry`."""

    def __init__(
        self, engine: Engine, dialect: DatabaseDialect, file: RegistryFileWatch | None = None
    ) -> None:
        self._engine = engine
        self._dialect = dialect
        self._file = file

    def __repr__(self) -> str:
        return f"SqlRegistry({self._dialect.display_url!r})"

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise RegistryError(
                f"registry {self._dialect.display_url}: {self._dialect.describe(exc)}"
            ) from exc

    def _check_file(self) -> None:
        """Fail if the registry file was deleted; follow it if it was replaced."""
        if self._file is not None and self._file.replaced():
            # Pooled connections still read the old file: drop them, bring the new one up to date.
            self._engine.dispose()
            with self._database_errors():
                migrate(self._engine, self._dialect)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_file()
        # One transaction per read, so that a read of several rows sees one consistent state.
        with self._database_errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self._check_file()
        with (
            self._database_errors(),
            self._engine.connect().execution_options(**self._dialect.write_options()) as conn,
            conn.begin(),
        ):
            yield conn

    def reading(self) -> AbstractContextManager[Connection]:
        return self._read()

    def writing(self, *, touch: str | None = None) -> AbstractContextManager[Connection]:
        if touch is None:
            return self._write()
        _check_project(touch)
        return self._write_and_touch(touch)

    @contextmanager
    def _write_and_touch(self, project: str) -> Iterator[Connection]:
        with self._write() as conn:
            yield conn
            self._bump_state(conn, project)

    def touch(self, project: str) -> None:
        _check_project(project)
        with self._write() as conn:
            self._bump_state(conn, project)

    def _bump_state(self, conn: Connection, project: str) -> None:
        row = {"name": project, "state_token": uuid.uuid4().hex, "updated_at": _utcnow()}
        self._dialect.lock_project(conn, schema.projects, row)
        conn.execute(
            update(schema.projects)
            .where(schema.projects.c.name == project)
            .values(state_token=uuid.uuid4().hex, updated_at=_utcnow())
        )

    # -- plan and apply ------------------------------------------------------------------------

    def plan(self, project: str, objects: Sequence[Definition], *, delete_missing: bool) -> Plan:
        _check_project(project)
        with self._read() as conn:
            return build_plan(
                self._state(conn, project), list(objects), delete_missing=delete_missing
            )

    def apply(
        self,
        project: str,
        objects: Sequence[Definition],
        *,
        delete_missing: bool,
        check: ApplyCheck | None = None,
    ) -> Plan:
        _check_project(project)
        objects = list(objects)
        with self._write() as conn:
            row = {"name": project, "state_token": uuid.uuid4().hex, "updated_at": _utcnow()}
            self._dialect.lock_project(conn, schema.projects, row)
            # Taken under the lock, so that history times follow the order applies land in.
            now = _utcnow()
            # The plan is computed from the state read under the lock: no concurrent apply lost.
            stored = self._state(conn, project)
            plan = build_plan(stored, objects, delete_missing=delete_missing)
            if check is not None:
                check(plan, live_objects(stored))
            if plan.has_changes:
                incoming = {(o.kind, o.name): o for o in objects}
                records = {(s.kind, s.name): s for s in stored}
                for change in plan.changes:
                    if change.change != "unchanged":
                        key = (change.kind, change.name)
                        self._write_change(
                            conn, project, change, incoming.get(key), records.get(key), now
                        )
                conn.execute(
                    update(schema.projects)
                    .where(schema.projects.c.name == project)
                    .values(state_token=uuid.uuid4().hex, updated_at=now)
                )
        return plan

    def _state(self, conn: Connection, project: str) -> list[StoredObject]:
        o, v = schema.objects, schema.object_versions
        query = (
            select(o, v.c.spec_json, v.c.content_hash)
            .join(
                v,
                and_(
                    v.c.project == o.c.project,
                    v.c.kind == o.c.kind,
                    v.c.name == o.c.name,
                    v.c.version == o.c.current_version,
                ),
            )
            .where(o.c.project == project)
        )
        return [
            StoredObject(
                kind=r.kind,
                name=r.name,
                version=r.current_version,
                content_hash=r.content_hash,
                meta_hash=r.meta_hash,
                spec=json.loads(r.spec_json),
                meta=json.loads(r.meta_json),
                deleted=bool(r.deleted),
            )
            for r in conn.execute(query)
        ]

    def _write_change(
        self,
        conn: Connection,
        project: str,
        change: ObjectChange,
        obj: Definition | None,
        record: StoredObject | None,
        now: datetime,
    ) -> None:
        """Write one object's change and its history entry."""
        key = {"project": project, "kind": change.kind, "name": change.name}
        where = and_(*(getattr(schema.objects.c, col) == value for col, value in key.items()))
        if change.change == "deleted":
            assert record is not None
            conn.execute(update(schema.objects).where(where).values(deleted=True, updated_at=now))
            version, digest = record.version, record.content_hash
        else:
            assert obj is not None
            assert change.new_version is not None
            version, digest = change.new_version, obj.content_hash
            meta_json = canonical_json(obj.meta())
            current = {
                "current_version": version,
                "deleted": False,
                "meta_json": meta_json,
                "meta_hash": obj.meta_hash,
                "updated_at": now,
            }
            if record is None:
                conn.execute(insert(schema.objects).values(**key, **current))
            else:
                conn.execute(update(schema.objects).where(where).values(**current))
            if record is None or version != record.version:
                conn.execute(
                    insert(schema.object_versions).values(
                        **key,
                        version=version,
                        spec_json=canonical_json(obj.spec()),
                        meta_json=meta_json,
                        content_hash=digest,
                        created_at=now,
                    )
                )
        conn.execute(
            insert(schema.history).values(
                **key,
                version=version,
                change="restored" if change.restored else change.change,
                content_hash=digest,
                applied_at=now,
                details_json=json.dumps(change.details),
            )
        )

    # -- reads ---------------------------------------------------------------------------------

    def get(self, project: str, kind: str, name: str, version: int | None = None) -> Definition:
        _check_kind(kind)
        with self._read() as conn:
            return self._get(conn, project, kind, name, version, include_deleted=False)

    def latest(self, project: str, kind: str, name: str) -> Definition:
        _check_kind(kind)
        with self._read() as conn:
            return self._get(conn, project, kind, name, None, include_deleted=True)

    def _get(
        self,
        conn: Connection,
        project: str,
        kind: str,
        name: str,
        version: int | None,
        *,
        include_deleted: bool,
    ) -> Definition:
        row = self._object_row(conn, project, kind, name)
        if row is None:
            raise ObjectNotFoundError(
                self._not_found(conn, project, kind, name), kind=kind, name=name
            )
        v = schema.object_versions
        versions = [
            int(n)
            for n in conn.execute(
                select(v.c.version)
                .where(v.c.project == project, v.c.kind == kind, v.c.name == name)
                .order_by(v.c.version)
            ).scalars()
        ]
        if version is None:
            if row.deleted and not include_deleted:
                raise ObjectNotFoundError(
                    f"{label(kind, name)} was deleted from project {project!r}; "
                    f"its versions {versions} can still be read by asking for one explicitly"
                )
            version = int(row.current_version)
        elif version not in versions:
            raise ObjectNotFoundError(
                f"{label(kind, name)} in project {project!r} has no version {version}; "
                f"available versions: {versions}",
                kind=kind,
                name=name,
                version=version,
            )
        stored = conn.execute(
            select(v.c.version, v.c.spec_json, v.c.meta_json).where(
                v.c.project == project,
                v.c.kind == kind,
                v.c.name == name,
                v.c.version == version,
            )
        ).one()
        views = views_of(self._state(conn, project)) if kind == "feature_service" else {}
        return rebuild_version(kind, name, row, stored, views)

    def get_versions(self, project: str, kind: str, name: str) -> dict[int, Definition]:
        _check_kind(kind)
        v = schema.object_versions
        with self._read() as conn:
            row = self._object_row(conn, project, kind, name)
            if row is None:
                raise ObjectNotFoundError(
                    self._not_found(conn, project, kind, name), kind=kind, name=name
                )
            stored = conn.execute(
                select(v.c.version, v.c.spec_json, v.c.meta_json)
                .where(v.c.project == project, v.c.kind == kind, v.c.name == name)
                .order_by(v.c.version)
            ).all()
            views = views_of(self._state(conn, project)) if kind == "feature_service" else {}
        return {int(s.version): rebuild_version(kind, name, row, s, views) for s in stored}

    def list(self, project: str, kind: str) -> list[Definition]:
        _check_kind(kind)
        with self._read() as conn:
            state = self._state(conn, project)
        views = views_of(state) if kind == "feature_service" else {}
        live = sorted((s for s in state if s.kind == kind and not s.deleted), key=lambda s: s.name)
        return [rebuild(as_data(s), views, s.version) for s in live]

    def kinds_named(self, project: str, name: str) -> builtins.list[str]:
        o = schema.objects
        with self._read() as conn:
            found = set(
                conn.execute(
                    select(o.c.kind).where(o.c.project == project, o.c.name == name)
                ).scalars()
            )
        return [k for k in KINDS if k in found]

    def versions(self, project: str, kind: str) -> dict[str, builtins.list[int]]:
        _check_kind(kind)
        v = schema.object_versions
        found: dict[str, builtins.list[int]] = {}
        with self._read() as conn:
            rows = conn.execute(
                select(v.c.name, v.c.version)
                .where(v.c.project == project, v.c.kind == kind)
                .order_by(v.c.name, v.c.version)
            ).all()
        for name, version in rows:
            found.setdefault(str(name), []).append(int(version))
        return found

    def current_version(self, project: str, kind: str, name: str) -> int:
        _check_kind(kind)
        with self._read() as conn:
            row = self._object_row(conn, project, kind, name)
            if row is None:
                raise ObjectNotFoundError(
                    self._not_found(conn, project, kind, name), kind=kind, name=name
                )
        if row.deleted:
            raise ObjectNotFoundError(
                f"{label(kind, name)} was deleted from project {project!r} at version "
                f"{row.current_version}",
                kind=kind,
                name=name,
            )
        return int(row.current_version)

    def history(
        self, project: str, name: str, kind: str | None = None
    ) -> builtins.list[HistoryEntry]:
        h = schema.history
        query = select(h).where(h.c.project == project, h.c.name == name).order_by(h.c.id)
        if kind is not None:
            _check_kind(kind)
            query = query.where(h.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_history_entry(r) for r in rows]

    def history_page(
        self, project: str, name: str, kind: str, *, offset: int, limit: int
    ) -> tuple[builtins.list[HistoryEntry], int]:
        _check_kind(kind)
        h = schema.history
        where = (h.c.project == project, h.c.name == name, h.c.kind == kind)
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(h).where(*where)).scalar_one()
            rows = conn.execute(
                select(h).where(*where).order_by(h.c.id.desc()).offset(offset).limit(limit)
            ).all()
        return [_history_entry(r) for r in rows], int(total)

    def state_token(self, project: str) -> str:
        p = schema.projects
        with self._read() as conn:
            token = conn.execute(select(p.c.state_token).where(p.c.name == project)).scalar()
        return _NO_STATE if token is None else str(token)

    # -- watermarks ----------------------------------------------------------------------------

    def get_watermark(
        self, project: str, view: str, version: int, *, online_store: str
    ) -> Watermark | None:
        w = schema.watermarks
        where = _watermark_key(project, view, version, online_store)
        with self._read() as conn:
            row = conn.execute(select(w).where(where)).one_or_none()
        return None if row is None else _watermark(row)

    def set_watermark(
        self,
        project: str,
        view: str,
        version: int,
        *,
        online_store: str,
        end: datetime,
        created: datetime | None,
        rows: int,
    ) -> Watermark:
        _check_project(project)
        w = schema.watermarks
        key = {"project": project, "online_store": online_store, "view": view, "version": version}
        values = {
            "end_ts": end,
            "created_watermark": created,
            "rows": rows,
            "updated_at": _utcnow(),
        }
        where = _watermark_key(project, view, version, online_store)
        with self._write() as conn:
            # Update first; insert-or-ignore then update again covers a concurrent first insert.
            if conn.execute(update(w).where(where).values(**values)).rowcount == 0:
                conn.execute(self._dialect.insert_ignore(w, {**key, **values}))
                conn.execute(update(w).where(where).values(**values))
            row = conn.execute(select(w).where(where)).one()
        return _watermark(row)

    def list_watermarks(
        self, project: str, *, online_store: str
    ) -> dict[tuple[str, int], Watermark]:
        w = schema.watermarks
        with self._read() as conn:
            rows = conn.execute(
                select(w)
                .where(w.c.project == project, w.c.online_store == online_store)
                .order_by(w.c.view, w.c.version)
            ).all()
        return {(r.view, int(r.version)): _watermark(r) for r in rows}

    def delete_watermarks(self, project: str, *, online_store: str) -> int:
        w = schema.watermarks
        where = and_(w.c.project == project, w.c.online_store == online_store)
        with self._write() as conn:
            return int(conn.execute(delete(w).where(where)).rowcount)

    def change_probe(self, project: str) -> ChangeProbe:
        _check_project(project)
        probe = self._dialect.change_probe(self._engine, project)
        return probe if probe is not None else TokenProbe(lambda: self.state_token(project))

    def close(self) -> None:
        self._engine.dispose()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _object_row(conn: Connection, project: str, kind: str, name: str) -> Row[Any] | None:
        o = schema.objects
        return conn.execute(
            select(o).where(o.c.project == project, o.c.kind == kind, o.c.name == name)
        ).one_or_none()

    @staticmethod
    def _not_found(conn: Connection, project: str, kind: str, name: str) -> str:
        o = schema.objects
        others = sorted(
            conn.execute(select(o.c.kind).where(o.c.project == project, o.c.name == name)).scalars()
        )
        found = " and ".join(k.replace("_", " ") for k in others)
        hint = f"; {name!r} exists as: {found}" if others else ""
        if not others:
            live = conn.execute(
                select(o.c.name).where(o.c.project == project, o.c.kind == kind, ~o.c.deleted)
            ).scalars()
            hint = did_you_mean(name, live)
        return f"no {label(kind, name)} in project {project!r} (no versions){hint}"


def _history_entry(row: Row[Any]) -> HistoryEntry:
    return HistoryEntry(
        kind=row.kind,
        name=row.name,
        version=int(row.version),
        change=cast(HistoryChange, row.change),
        content_hash=row.content_hash,
        applied_at=row.applied_at,
        details=list(json.loads(row.details_json)),
    )


def _watermark_key(project: str, view: str, version: int, online_store: str) -> Any:
    w = schema.watermarks
    return and_(
        w.c.project == project,
        w.c.online_store == online_store,
        w.c.view == view,
        w.c.version == version,
    )


def _watermark(row: Row[Any]) -> Watermark:
    return Watermark(
        end=row.end_ts, created=row.created_watermark, rows=int(row.rows), updated_at=row.updated_at
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown object kind {kind!r}: use one of {list(KINDS)}")


def _check_project(project: str) -> None:
    if not isinstance(project, str) or not project or len(project) > schema.NAME:
        raise RegistryError(
            f"invalid project name {project!r}: a non-empty name of at most {schema.NAME} characters"
        )


__all__ = ["SqlRegistry", "open_registry"]
