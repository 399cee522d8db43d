"""The registry interface and the records it returns.

A registry keeps every version of every definition of a project, keyed by (project, kind, name).
:class:`Registry` is the contract; ``registry/sql.py`` implements it once for every SQL database.

    registry = open_registry("sqlite:////abs/path/registry.db")
    plan = registry.apply("demo", [driver, driver_stats], delete_missing=True)
    print(plan.render())
    registry.get("demo", "feature_view", "driver_stats", version=1)
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from featurestore.definitions import Definition
from featurestore.registry.plan import Plan
from featurestore.registry.probe import ChangeProbe

HistoryChange = Literal["added", "changed", "metadata", "deleted", "restored"]

#: What :meth:`Registry.apply` may be given to run inside its transaction: it gets the plan about
#: to be written and the project's live objects as stored at that moment (by ``(kind, name)``),
#: and raises to refuse the apply, which then writes nothing. Access checks run here so that
#: they judge the very plan that is committed, not one computed before the registry was locked.
ApplyCheck = Callable[[Plan, Mapping[tuple[str, str], Definition]], None]


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded change of one object, as :meth:`Registry.history` returns it.

    ``version`` is the object's version after the change (for a deletion: the version deleted).
    """

    kind: str
    name: str
    version: int
    change: HistoryChange
    content_hash: str
    applied_at: datetime
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Watermark:
    """How far one view version has been materialized (see :mod:`featurestore.materialize`).

    Every source row with ``event_ts <= end`` and ``created_ts <= created`` was online when it was
    recorded. ``created`` is ``None`` when the source has no created column (or none was seen);
    ``rows`` is how many keys the recording run sent to the online store.
    """

    end: datetime
    created: datetime | None
    rows: int
    updated_at: datetime


class Registry(ABC):
    """Versioned storage of a project's entities, feature views and feature services.

    ``kind`` arguments are one of :data:`KINDS`. Reads return definitions rebuilt with their
    classes' ``from_dict``; a feature service is resolved against the project's current views.
    """

    @abstractmethod
    def plan(self, project: str, objects: Sequence[Definition], *, delete_missing: bool) -> Plan:
        """What :meth:`apply` would do with ``objects``, without writing anything."""

    @abstractmethod
    def apply(
        self,
        project: str,
        objects: Sequence[Definition],
        *,
        delete_missing: bool,
        check: ApplyCheck | None = None,
    ) -> Plan:
        """Validate and write ``objects`` in one transaction; returns the plan applied.

        With ``delete_missing`` the project's current objects not in ``objects`` are deleted
        (softly: their history and versions stay). ``check`` runs on the plan computed under
        the transaction's lock, before anything is written. On any error nothing is written.
        """

    @abstractmethod
    def get(self, project: str, kind: str, name: str, version: int | None = None) -> Definition:
        """An object at ``version`` (default: current; a deleted object needs a version)."""

    @abstractmethod
    def get_versions(self, project: str, kind: str, name: str) -> dict[int, Definition]:
        """Every stored version of one object (deleted or not), by version, read at once: what
        :meth:`get` would answer for each. ObjectNotFoundError if it never existed."""

    @abstractmethod
    def latest(self, project: str, kind: str, name: str) -> Definition:
        """An object at its current version with its latest metadata, even when deleted: what
        decides access to any of its versions. ObjectNotFoundError if it never existed."""

    @abstractmethod
    def list(self, project: str, kind: str) -> list[Definition]:
        """The current, not deleted objects of one kind, sorted by name."""

    @abstractmethod
    def kinds_named(self, project: str, name: str) -> builtins.list[str]:
        """The kinds that have an object called ``name`` (deleted ones included)."""

    @abstractmethod
    def versions(self, project: str, kind: str) -> dict[str, builtins.list[int]]:
        """Every stored version of every object of one kind, deleted objects included, by name
        (sorted); what may still have data somewhere (online namespaces, for erasure)."""

    @abstractmethod
    def current_version(self, project: str, kind: str, name: str) -> int:
        """The current version of a live object; ObjectNotFoundError if missing or deleted."""

    @abstractmethod
    def history(
        self, project: str, name: str, kind: str | None = None
    ) -> builtins.list[HistoryEntry]:
        """Every recorded change of objects called ``name`` (optionally of one kind), oldest first."""

    @abstractmethod
    def history_page(
        self, project: str, name: str, kind: str, *, offset: int, limit: int
    ) -> tuple[builtins.list[HistoryEntry], int]:
        """``limit`` recorded changes of the ``kind`` object ``name`` from ``offset``, newest
        first, and how many there are in all (a page of :meth:`history`, read as one)."""

    @abstractmethod
    def state_token(self, project: str) -> str:
        """A cheap token that changes whenever an apply changes anything in ``project``."""

    @abstractmethod
    def get_watermark(
        self, project: str, view: str, version: int, *, online_store: str
    ) -> Watermark | None:
        """The watermark of a view version in the online store ``online_store`` (an
        :attr:`~featurestore.online.OnlineStore.identity`), or ``None`` before its first run."""

    @abstractmethod
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
        """Record a view version's watermark for one online store in a transaction of its own;
        returns it."""

    @abstractmethod
    def list_watermarks(
        self, project: str, *, online_store: str
    ) -> dict[tuple[str, int], Watermark]:
        """Every watermark of ``project`` in one online store, by (view name, version)."""

    @abstractmethod
    def delete_watermarks(self, project: str, *, online_store: str) -> int:
        """Forget every watermark of ``project`` in one online store (its online data is gone);
        returns how many."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """A read transaction on the registry database, for the tables of other layers
        (governance: audit log, keys, lineage); errors become RegistryError."""

    @abstractmethod
    def writing(self, *, touch: str | None = None) -> AbstractContextManager[Connection]:
        """A write transaction on the registry database (see :meth:`reading`); with ``touch``,
        that project's state token changes in the same transaction, so whoever watches it (a
        :meth:`change_probe`) sees the write as soon as it is committed, never without it."""

    @abstractmethod
    def touch(self, project: str) -> None:
        """Change ``project``'s state token (caches keyed on it reload), e.g. on key revocation."""

    @abstractmethod
    def change_probe(self, project: str) -> ChangeProbe:
        """A probe cheap enough to ask on every request whether ``project``'s registry changed
        (see :mod:`featurestore.registry.probe`); its owner closes it."""

    @abstractmethod
    def close(self) -> None:
        """Release the database connections."""

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
