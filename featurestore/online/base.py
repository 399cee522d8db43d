"""The online store interface: the latest feature row per entity key, per view version.

A store keeps, for each ``(project, view, version)`` namespace and each entity key, one packed row:
the event timestamp, the created timestamp and the view's feature values. Writes never replace a
newer row (later event timestamp, then later created timestamp; an equal-time row with a later
created timestamp does replace). Rows expire ``ttl + expiry_grace`` after their event time when the
view has a TTL, so stale rows do not pile up; whether a row is too old to serve is decided at
lookup time from its event timestamp, not by expiry.

Column conventions (shared by the materializer, push, and the stores):

* write batches carry the view's join-key columns (declared types), :data:`EVENT_TS` and
  :data:`CREATED_TS` (int64 epoch microseconds, UTC; a null created timestamp is older than any
  other), and every feature column of the view (declared types);
* reads take a table of join-key columns and return, row for row, :data:`FOUND` (bool),
  :data:`EVENT_TS` (int64, null when not found) and the requested feature columns.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView

EVENT_TS = "__fs_event_ts"
CREATED_TS = "__fs_created_ts"
FOUND = "__fs_found"


@dataclass(frozen=True)
class Namespace:
    """Where one view version's rows live: never shared between versions, so materializing
    version 2 leaves version 1 serving until the switch."""

    project: str
    view: FeatureView
    version: int


class WriteListener(Protocol):
    """Told of every online write batch once it is durable (materialization, push, direct
    write, stream batch): the freshness log, and the write-time on-demand views computed
    from what was written."""

    def note(self, namespace: Namespace, batch: pa.RecordBatch) -> None: ...


class WriteListeners:
    """Several :class:`WriteListener` as one, told in order."""

    def __init__(self, *listeners: WriteListener) -> None:
        self.listeners = listeners

    def note(self, namespace: Namespace, batch: pa.RecordBatch) -> None:
        for listener in self.listeners:
            listener.note(namespace, batch)


@dataclass
class WriteResult:
    """What one write did: rows written (an identical re-write counts as written), rows skipped
    because a newer row was stored, and rows not written because their expiry had already passed
    (they could never be served)."""

    written: int = 0
    skipped_older: int = 0
    expired: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.written += other.written
        self.skipped_older += other.skipped_older
        self.expired += other.expired
        return self


class OnlineStore(ABC):
    """Latest-row-per-key storage for online lookups."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """Which store this is, stable across processes and free of secrets: the type and the
        normalized location (``sqlite:/abs/path/online.db``, ``redis://host:6379/0 prefix fs:``).

        Materialization watermarks are recorded per identity, so pointing a repository at
        another store makes the next incremental run fill that store from scratch."""

    @abstractmethod
    def write_batch(self, namespace: Namespace, batch: pa.RecordBatch) -> WriteResult:
        """Write rows (one per key at most) with the never-overwrite-newer rule; durable on return."""

    @abstractmethod
    def read(self, namespace: Namespace, keys: pa.Table, features: Sequence[str]) -> pa.Table:
        """Look up ``keys`` (join-key columns); one result row per key row, in order."""

    @abstractmethod
    def read_packed(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """Stored packed rows for already encoded entity keys (see ``codec``), per read in order;
        None where nothing (or only an expired row) is stored. Stores that can serve several
        namespaces in one round trip do so: this is the path of small, latency-bound lookups."""

    async def read_packed_async(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """:meth:`read_packed` for an event loop. Stores with an async client (Redis) answer
        without blocking the loop; the default runs :meth:`read_packed` in a worker thread."""
        return await asyncio.to_thread(self.read_packed, reads)

    @abstractmethod
    def delete_project(self, project: str) -> int:
        """Remove every row of ``project``; returns how many keys were removed."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`~featurestore.errors.OnlineStoreError` when the store is unreachable."""

    def close(self) -> None:  # noqa: B027 - stores without resources keep the default
        """Release connections."""

    async def aclose(self) -> None:  # noqa: B027 - stores without async resources keep it
        """Release the running event loop's async connections (before the loop ends)."""


class SupportsRowDeletion(ABC):
    """Capability of online stores whose rows can be removed one by one: erasure (by entity
    key) and retention (by age). Both built-in stores have it; the governance layer asks for it
    with ``isinstance`` and says so when a store lacks it.

    Entity keys are the encoded keys of :func:`featurestore.online.codec.encode_keys`. Counts
    are of rows physically stored, including rows past their expiry that a store has not purged
    yet (reads never return those, but they are still there). ``dry_run`` counts without
    removing anything.
    """

    @abstractmethod
    def scan_entity_keys(
        self, namespace: Namespace, *, batch_size: int = 1000
    ) -> Iterator[list[bytes]]:
        """Every entity key stored in ``namespace``, in batches of at most ``batch_size``."""

    @abstractmethod
    def delete_entity_keys(
        self, namespace: Namespace, entity_keys: Sequence[bytes], *, dry_run: bool = False
    ) -> int:
        """Remove the rows of ``entity_keys``; returns how many of them were stored."""

    @abstractmethod
    def delete_older_than(
        self, cutoffs: Mapping[Namespace, int], *, dry_run: bool = False
    ) -> dict[Namespace, int]:
        """Remove, per namespace, the rows whose event time is strictly before its cut-off
        (epoch µs; a row exactly at the cut-off stays); returns how many rows that was per
        namespace. Decided per row at the moment it is removed, so a row a concurrent write has
        just made newer stays. Stores go over their data once for all namespaces where they can
        (Redis: one ``SCAN`` per project)."""


@dataclass(frozen=True)
class StoredState:
    """A whole per-key value to store (an aggregation state, see
    :mod:`featurestore.online.aggregation_state`): its bytes, its newest event time (what
    retention compares) and how long after that it is still needed (µs; None: forever). A store
    keeps it that long plus its ``expiry_grace``."""

    value: bytes
    newest_us: int
    needed_for_us: int | None

    def expires_at_us(self, grace: timedelta) -> int | None:
        """When the stored value may go (epoch µs; None: never)."""
        if self.needed_for_us is None:
            return None
        return self.newest_us + self.needed_for_us + grace // timedelta(microseconds=1)


#: Given an entity key and its stored value (None: nothing stored), the value to store instead
#: (None: leave it). Must be a pure function of its inputs: a store may call it again for a key
#: a concurrent writer changed in between.
StateUpdate = Callable[[bytes, bytes | None], StoredState | None]


class SupportsStateUpdates(ABC):
    """Capability of online stores that update a key's whole stored value from the current one,
    atomically per key: what aggregated views need (a push merges its events into the state a
    key already has). Both built-in stores have it. The values live under the same keys as
    plain rows, so reads (:meth:`OnlineStore.read_packed`), erasure and retention work on them
    unchanged."""

    @abstractmethod
    def update_states(
        self, namespace: Namespace, entity_keys: Sequence[bytes], update: StateUpdate
    ) -> int:
        """Apply ``update`` to every distinct key of ``entity_keys``; returns how many keys were
        written. Durable on return."""
