"""Write-time on-demand views (``write_to_online_store=True``): computed when rows are written.

:class:`WriteTimeViews` is told of every durable online write (it is a
:class:`~featurestore.online.base.WriteListener`, next to the freshness log). When the write
went to the current version of a source view of a write-time view, for the keys written it

1. reads back every source view's stored row (the written view's too: a row older than the one
   stored was not written, and the stored one is what lookups serve);
2. treats an input as null where its view has no row, or a row older than its TTL allows at the
   newest input's event time: the point-in-time join at that instant gives the same inputs;
3. runs the function (the same :class:`~featurestore.transform.execute.Transform` as offline)
   and writes the outputs to the view's own namespace (:class:`WriteTimeStorage`, at the view's
   current version) with the newest input's event time, and the moment its inputs were read as
   created time, so a recomputation replaces what an earlier one stored, and of two racing
   writers the one that read last (having seen both writes) wins.

So when only one of two source views is written, the other contributes its latest stored values
for the key. Unpinned lookups read the stored values; a pinned reference (``view@N:feature``) is
computed at request time from the stored inputs, with version N's code. A function that
raises stops the write with a :class:`~featurestore.errors.TransformationError` naming the view;
the source rows already written stay (writing them again is safe).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView, WriteTimeStorage
from featurestore.online.base import (
    CREATED_TS,
    EVENT_TS,
    Namespace,
    OnlineStore,
    WriteListener,
)
from featurestore.online.batches import conform, online_schema
from featurestore.registry import Registry
from featurestore.registry.freshness import FreshnessGate
from featurestore.transform.execute import Transform

KIND = "on_demand_feature_view"
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class WriteTimeView:
    """One write-time view at its current version, with its source views at theirs."""

    transform: Transform
    storage: WriteTimeStorage
    sources: tuple[tuple[FeatureView, int], ...]

    @property
    def version(self) -> int:
        return self.transform.version

    def reads(self, namespace: Namespace) -> bool:
        """Whether ``namespace`` is one of the source views, at its current version."""
        return any(
            view.name == namespace.view.name and version == namespace.version
            for view, version in self.sources
        )


class WriteTimeViews:
    """The project's write-time views (resolved once per registry state); see the module."""

    def __init__(
        self,
        registry: Registry,
        project: str,
        online: OnlineStore,
        *,
        listener: WriteListener | None = None,
        freshness_interval: float = 1.0,
    ) -> None:
        self.registry = registry
        self.project = project
        self.online = online
        #: Told of the writes this makes (the freshness log).
        self.listener = listener
        self._gate = FreshnessGate(registry, project, interval=freshness_interval)
        self._views: dict[str, WriteTimeView] | None = None
        self._lock = threading.Lock()

    # -- resolving -----------------------------------------------------------------------------

    def views(self) -> dict[str, WriteTimeView]:
        """Every write-time view by name (current versions)."""
        if self._gate.changed():
            with self._lock:
                self._views = None
        views = self._views
        if views is None:
            views = self._resolve()
            with self._lock:
                self._views = views
        return views

    def _resolve(self) -> dict[str, WriteTimeView]:
        found: dict[str, WriteTimeView] = {}
        for view in self.registry.list(self.project, KIND):
            assert isinstance(view, OnDemandFeatureView)
            if not view.write_to_online_store:
                continue
            version = self.registry.current_version(self.project, KIND, view.name)
            sources = tuple(self._source(name) for name in view.view_sources)
            storage = WriteTimeStorage(view, [s for s, _ in sources])
            found[view.name] = WriteTimeView(Transform(view, version), storage, sources)
        return found

    def _source(self, name: str) -> tuple[FeatureView, int]:
        view = self.registry.get(self.project, "feature_view", name)
        assert isinstance(view, FeatureView)
        return view, self.registry.current_version(self.project, "feature_view", name)

    def stored(self, name: str, pin: int | None) -> tuple[FeatureView, int] | None:
        """Where lookups read ``name`` from: its storage and current version when it is a
        write-time view asked unpinned; None otherwise (a pinned reference, whatever the
        version, is computed at request time, so that its column is named as offline)."""
        found = self.views().get(name)
        if found is None or pin is not None:
            return None
        return found.storage, found.version

    # -- computing -----------------------------------------------------------------------------

    def note(self, namespace: Namespace, batch: pa.RecordBatch) -> None:
        """Recompute the write-time views reading ``namespace`` (at its current version) for
        the keys of ``batch``, just written there."""
        if not batch.num_rows or namespace.project != self.project:
            return
        for view in self.views().values():
            if view.reads(namespace):
                self.compute(view, batch.select(view.storage.join_keys))

    def compute(self, view: WriteTimeView, keys: pa.RecordBatch | pa.Table) -> int:
        """Compute and store ``view`` for ``keys`` (join-key columns, one row per key) from the
        stored inputs; returns how many rows were written."""
        table = pa.Table.from_batches([keys]) if isinstance(keys, pa.RecordBatch) else keys
        # Stamped when the inputs are read, not when the result is written: of two writers of
        # different inputs racing for a key, the later reader has seen both writes (each writes
        # its input before reading), and its result must win a tie on event time.
        read_at_us = time.time_ns() // 1000
        newest, columns, ttl_bounds = _stored_inputs(self.online, self.project, view, table)
        present = pc.is_valid(newest)
        if not pc.any(present).as_py():
            return 0
        # The point-in-time join at the newest input's instant: a row past its TTL is null.
        transform = view.transform
        arrays = []
        for name, dtype in transform.inputs.items():
            column, event_ts, ttl_us = columns[name], *ttl_bounds[name]
            valid = pc.is_valid(event_ts)
            if ttl_us is not None:
                valid = pc.and_(valid, pc.greater_equal(event_ts, pc.subtract(newest, ttl_us)))
            nulls = pa.nulls(len(column), dtype.to_arrow())
            arrays.append(pc.if_else(pc.fill_null(valid, False), column, nulls))
        inputs = pa.Table.from_arrays(arrays, schema=transform.input_types).filter(present)
        outputs = transform.run_table(inputs)
        written = table.filter(present)
        batch_columns = {k: written.column(k).combine_chunks() for k in view.storage.join_keys}
        batch_columns[EVENT_TS] = newest.filter(present)
        batch_columns[CREATED_TS] = pa.array([read_at_us] * written.num_rows, pa.int64())
        batch_columns.update(zip(transform.outputs, outputs, strict=True))
        batch = conform(pa.RecordBatch.from_pydict(batch_columns), online_schema(view.storage))
        namespace = Namespace(self.project, view.storage, view.version)
        self.online.write_batch(namespace, batch)
        if self.listener is not None:
            self.listener.note(namespace, batch)
        written_rows: int = batch.num_rows
        return written_rows


def _stored_inputs(
    online: OnlineStore, project: str, view: WriteTimeView, keys: pa.Table
) -> tuple[pa.Array, dict[str, pa.Array], dict[str, tuple[pa.Array, int | None]]]:
    """The newest event time of any stored input per key (null: none stored), each input
    column, and per input its row's event time and its view's TTL (µs)."""
    columns: dict[str, pa.Array] = {}
    bounds: dict[str, tuple[pa.Array, int | None]] = {}
    newest: pa.Array = pa.nulls(keys.num_rows, pa.int64())
    features = {v.name: f for v, f in view.storage.inputs}
    for source, version in view.sources:
        read = online.read(Namespace(project, source, version), keys, features[source.name])
        # Null where nothing is stored (the read's contract), whatever FOUND says.
        event_ts = read.column(EVENT_TS).combine_chunks()
        newest = pc.max_element_wise(newest, event_ts, skip_nulls=True)
        ttl = None if source.ttl is None else source.ttl // _MICROSECOND
        for feature in features[source.name]:
            columns[feature] = read.column(feature).combine_chunks()
            bounds[feature] = (event_ts, ttl)
    return newest, columns, bounds
