"""What materializing an aggregated view leaves online, as rows its validation can check.

An aggregated view has no rows of its own to validate: its features are windows evaluated at an
instant. After a run to ``through_us``, a lookup at that instant answers, for each key the run
wrote, the view's aggregations evaluated from the key's new state. Those are the rows validated:
the join keys, the source's timestamp field set to the run's end, and one column per
aggregation in the view's declared type, named and typed as ``store.validate`` names and types
the view's values (see :mod:`featurestore.offline.duckdb.agg_instants`), so one suite fits both.

* A run that writes as it validates (``warn``) taps the states the write builds
  (:data:`~featurestore.online.aggregation_views.StateBuilt`): no extra pass.
* A strict run validates before writing anything: a first pass builds the same states through
  :class:`StatePreview`, which reads the stored states but never writes, and only when every
  batch passed does the normal write pass run (reading the events a second time).

    values = ValuesAtEnd(view, validator.add, through_us=end, kept_from_us=None,
                         batch_rows=100_000)
    for _ in materialize_stream(store, ns, values.tap(batches), through_us=end,
                                read_from_us=start, durable=None, built=values.built):
        values.flush()
    values.flush(final=True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import OnlineStoreError
from featurestore.online.aggregation_lookup import AggregatedRead
from featurestore.online.aggregation_state import KeyState
from featurestore.online.aggregation_views import materialize_stream, stores_states
from featurestore.online.base import (
    Namespace,
    OnlineStore,
    StateUpdate,
    SupportsStateUpdates,
    WriteResult,
)
from featurestore.online.codec import encode_keys

__all__ = ["StatePreview", "ValuesAtEnd", "preview_values"]

_OLDEST = -(2**63)
_UTC_MICROS = pa.timestamp("us", tz="UTC")


class ValuesAtEnd:
    """Turns the states a run builds into the rows of values a lookup at the run's end answers.

    :meth:`tap` remembers the join-key values of the events' keys as their batches go by (the
    states know only encoded keys); :meth:`built` is the write's
    :data:`~featurestore.online.aggregation_views.StateBuilt`; :meth:`flush` hands the rows to
    ``check`` in batches of ``batch_rows`` keys, like the latest rows of a plain view, so a
    suite's aggregate expectations see as many keys per batch whatever the events' batches
    hold (memory: about one batch of events' keys and one batch of values).
    """

    def __init__(
        self,
        view: FeatureView,
        check: Callable[[pa.RecordBatch], None],
        *,
        through_us: int,
        kept_from_us: int | None,
        batch_rows: int,
    ) -> None:
        self.view = view
        self.check = check
        self.through_us = through_us
        # Retention: a lookup counts only the events it still keeps, as here.
        self.kept_from_us = _OLDEST if kept_from_us is None else kept_from_us
        self.batch_rows = batch_rows
        self._read = AggregatedRead.of(view, view.feature_names)
        self._key_types: list[pa.DataType] = []
        self._keys: dict[bytes, tuple[Any, ...]] = {}
        self._built: dict[bytes, KeyState] = {}
        self._rows: list[tuple[tuple[Any, ...], list[Any]]] = []

    def tap(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``batches`` unchanged, with their keys remembered."""
        for batch in batches:
            self._remember(batch)
            yield batch

    def _remember(self, batch: pa.RecordBatch) -> None:
        join_keys = self.view.join_keys
        declared = self.view.join_key_types
        self._key_types = [
            dtype.to_arrow() if (dtype := declared[k]) is not None else batch.schema.field(k).type
            for k in join_keys
        ]
        encoded = encode_keys(batch, join_keys).to_pylist()
        columns = [batch.column(k).to_pylist() for k in join_keys]
        for i, key in enumerate(encoded):
            if key is not None and key not in self._keys:
                self._keys[key] = tuple(column[i] for column in columns)

    def built(self, key: bytes, state: KeyState) -> None:
        """Note ``key``'s new state (a state built again for the key replaces the earlier)."""
        self._built[key] = state

    def flush(self, *, final: bool = False) -> None:
        """Check every full batch of rows of the states built so far (``final``: and the
        rest)."""
        while (batch := self._take(final=final)) is not None:
            self.check(batch)

    def _take(self, *, final: bool) -> pa.RecordBatch | None:
        """The next batch of rows, once ``batch_rows`` states were built (``final``: the rest;
        None: no batch yet)."""
        for key, state in self._built.items():
            values, _ = self._read.values(state, self.through_us, self.kept_from_us)
            self._rows.append((self._keys.pop(key), values))
        self._built = {}
        if not self._rows or (len(self._rows) < self.batch_rows and not final):
            return None
        rows, self._rows = self._rows[: self.batch_rows], self._rows[self.batch_rows :]
        return self._batch(rows)

    def _batch(self, rows: Sequence[tuple[tuple[Any, ...], list[Any]]]) -> pa.RecordBatch:
        arrays: list[pa.Array] = [
            pa.array([key[i] for key, _ in rows], type=key_type)
            for i, key_type in enumerate(self._key_types)
        ]
        names = [*self.view.join_keys, self.view.source.timestamp_field]
        arrays.append(pa.array([self.through_us] * len(rows), pa.int64()).cast(_UTC_MICROS))
        for j, feature in enumerate(self.view.features):
            arrays.append(pa.array([values[j] for _, values in rows], feature.dtype.to_arrow()))
            names.append(feature.name)
        return pa.RecordBatch.from_arrays(arrays, names=names)


class StatePreview(OnlineStore, SupportsStateUpdates):
    """A store's states as an update would make them, computed without writing anything.

    It reads the stored states from ``store`` (so events pushed past the run's end are kept as
    the write would keep them) and gives them to the update, whose result it drops: a strict
    run's first pass goes through the same state building as its write pass. Every other write
    is refused.
    """

    def __init__(self, store: OnlineStore) -> None:
        self._store = store

    @property
    def identity(self) -> str:
        return self._store.identity

    def update_states(
        self, namespace: Namespace, entity_keys: Sequence[bytes], update: StateUpdate
    ) -> int:
        wanted = list(dict.fromkeys(entity_keys))
        [stored] = self._store.read_packed([(namespace, wanted)])
        built = 0
        for key, blob in zip(wanted, stored, strict=True):
            if update(key, blob) is not None:
                built += 1
        return built

    def read(self, namespace: Namespace, keys: pa.Table, features: Sequence[str]) -> pa.Table:
        return self._store.read(namespace, keys, features)

    def read_packed(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        return self._store.read_packed(reads)

    def ping(self) -> None:
        self._store.ping()

    def write_batch(self, namespace: Namespace, batch: pa.RecordBatch) -> WriteResult:
        raise self._refused("write rows")

    def delete_project(self, project: str) -> int:
        raise self._refused("delete a project")

    def _refused(self, what: str) -> OnlineStoreError:
        return OnlineStoreError(f"a preview of {self.identity} cannot {what}: it writes nothing")


def preview_values(
    store: OnlineStore,
    namespace: Namespace,
    batches: Iterable[pa.RecordBatch],
    values: ValuesAtEnd,
    *,
    read_from_us: int | None,
    durable: tuple[int, int] | None,
) -> int:
    """A strict run's first pass: build the states of the events ``batches`` as the write
    would (nothing is written) and check their values at the run's end batch by batch (see
    :class:`ValuesAtEnd`); returns how many keys were built. ``read_from_us`` and ``durable``:
    as for :func:`~featurestore.online.aggregation_views.materialize_stream`."""
    stores_states(store, namespace.view)  # the error the write pass would give, first
    keys = 0
    for _, built in materialize_stream(
        StatePreview(store),
        namespace,
        values.tap(batches),
        through_us=values.through_us,
        read_from_us=read_from_us,
        durable=durable,
        built=values.built,
    ):
        keys += built
        values.flush()
    values.flush(final=True)
    return keys
