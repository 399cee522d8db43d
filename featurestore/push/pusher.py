"""Push ingestion: rows sent at run time to the online store, the offline store, or both.

    pusher = Pusher(config, registry, online)
    report = pusher.push("driver_stats_push", df, to=PushMode.ONLINE_AND_OFFLINE)

A push names a push source; every feature view reading it (at its current version) receives the
rows. In order:

1. the rows are checked and converted (:mod:`featurestore.push.frame`); a bad push raises
   :class:`~featurestore.errors.PushError` and nothing is written; then ``validate`` (the quality
   layer) sees them, and a strict validation that fails stops the push here too;
2. offline: the rows are written to a staged Parquet file in the store's data folder
   (:mod:`featurestore.offline.store_data`), not yet visible;
3. online: per online view, the latest pushed row per entity key goes to the store with the
   never-overwrite-newer rule (a push older than what is stored changes nothing), and the
   write-time on-demand views reading it are computed for those keys
   (:mod:`featurestore.transform.write_time`, told through :attr:`Pusher.freshness`);
4. the staged file is published, and the next historical retrieval sees the rows.

If an online write fails, the staged file is dropped and the error (an
:class:`~featurestore.errors.OnlineStoreError`) says which views already took the rows; pushing
the same rows again is safe, since writes are idempotent.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource
from featurestore.errors import (
    ObjectNotFoundError,
    OnlineStoreError,
    PushError,
    TransformationError,
    did_you_mean,
)
from featurestore.offline.store_data import StagedFile, StoreData
from featurestore.online.aggregation_views import events_by_key, next_push_seq, push_events
from featurestore.online.base import (
    CREATED_TS,
    EVENT_TS,
    Namespace,
    OnlineStore,
    WriteListener,
    WriteResult,
)
from featurestore.online.batches import (
    aggregated_schema,
    conform,
    epoch_micros,
    latest_per_key,
    online_schema,
)
from featurestore.push.frame import PushColumns, PushFrame, PushInput, push_columns, push_frame
from featurestore.push.online_write import (
    OnlineWriteReport,
    WriteValidation,
    online_write_batch,
)
from featurestore.registry.base import Registry
from featurestore.registry.freshness import FreshnessGate


class PushMode(enum.Enum):
    """Where pushed rows go (Feast's names)."""

    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"

    @classmethod
    def parse(cls, value: PushMode | str) -> PushMode:
        if isinstance(value, PushMode):
            return value
        if isinstance(value, str):
            for mode in cls:
                if value.lower() in (mode.value, mode.name.lower()):
                    return mode
        raise PushError(f"push: 'to' must be one of {[m.value for m in cls]}, got {value!r}")

    @property
    def online(self) -> bool:
        return self is not PushMode.OFFLINE

    @property
    def offline(self) -> bool:
        return self is not PushMode.ONLINE


@dataclass(frozen=True)
class PushTarget:
    """A push source and the views (at their current versions) that read it."""

    source: PushSource
    views: tuple[tuple[FeatureView, int], ...]
    columns: PushColumns


@dataclass
class ViewPush:
    """What one view's online namespace did with a push."""

    view: str
    version: int
    keys: int
    result: WriteResult


@dataclass
class PushReport:
    """The outcome of one push."""

    source: str
    mode: PushMode
    rows: int
    online: list[ViewPush] = field(default_factory=list)
    offline_file: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"pushed {self.rows} row(s) to {self.source!r} ({self.mode.value})"]
        for view in self.online:
            r = view.result
            parts.append(
                f"{view.view} v{view.version}: {r.written} written, {r.skipped_older} older than "
                f"stored, {r.expired} already expired"
            )
        if self.offline_file is not None:
            parts.append(f"offline: {self.offline_file}")
        if self.ignored_columns:
            parts.append(f"ignored columns: {self.ignored_columns}")
        return "; ".join(parts)


#: Sees a push's converted rows before anything is written; raises to stop the push.
PushValidation = Callable[[PushTarget, PushFrame], None]


def view_features(view: FeatureView, frame: PushFrame) -> pa.Table:
    """Every pushed row's features of ``view`` (an aggregated view's source columns), named as
    the view names them, in their declared types (validation sees what would be written)."""
    source = frame.columns.source
    try:
        return pa.table(
            {
                f.name: frame.table.column(source.source_column(f.name)).cast(f.dtype.to_arrow())
                for f in view.columns
            }
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PushError(
            f"push to {source.name!r}: a value does not fit the type {view.label} declares: {exc}"
        ) from None


class Pusher:
    """Pushes rows for one project; resolved push sources are cached per registry state."""

    def __init__(
        self,
        config: RepoConfig,
        registry: Registry,
        online: OnlineStore,
        *,
        freshness_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.project = config.project
        self.registry = registry
        self.online = online
        self.data = StoreData(config)
        self._gate = FreshnessGate(registry, self.project, interval=freshness_interval)
        self._targets: dict[str, PushTarget] = {}
        self._lock = threading.Lock()
        #: Told of every online write: the freshness log (see featurestore.online.freshness)
        #: and the write-time on-demand views (see featurestore.transform.write_time).
        self.freshness: WriteListener | None = None

    def push(
        self,
        source: str,
        data: PushInput,
        to: PushMode | str = PushMode.ONLINE,
        *,
        validate: PushValidation | None = None,
        offline_metadata: dict[bytes, bytes] | None = None,
        positions: Sequence[tuple[int, int]] | None = None,
    ) -> PushReport:
        """Check, then write ``data`` to the views reading push source ``source``
        (``offline_metadata``: kept in the offline file's metadata, as a stream's positions;
        ``positions``: each row's stream position, so an aggregated view skips the rows its
        state already merged when a stream consumer replays a batch)."""
        began = time.perf_counter()
        mode = PushMode.parse(to)
        target = self.target(source)
        frame = push_frame(data, target.columns)
        if positions is not None and len(positions) != frame.rows:
            raise PushError(
                f"push to {source!r}: {len(positions)} stream positions for {frame.rows} rows"
            )
        if validate is not None and frame.rows:
            validate(target, frame)
        report = PushReport(
            source=source, mode=mode, rows=frame.rows, ignored_columns=frame.ignored_columns
        )
        if frame.rows:
            batches = self._online_batches(target, frame) if mode.online else []
            staged = (
                self.data.stage(source, frame.table, offline_metadata) if mode.offline else None
            )
            self._write_online(target, batches, staged, report, positions)
            if staged is not None:
                report.offline_file = str(staged.commit())
        report.seconds = time.perf_counter() - began
        return report

    # -- resolving the push source -------------------------------------------------------------

    def target(self, name: str) -> PushTarget:
        """The push source called ``name`` and its views, from the cache when unchanged."""
        if self._gate.changed():
            with self._lock:
                self._targets.clear()
        cached = self._targets.get(name)
        if cached is not None:
            return cached
        with self._lock:
            target = self._resolve(name)
            self._targets[name] = target
        return target

    def _resolve(self, name: str) -> PushTarget:
        views = [
            v
            for v in self.registry.list(self.project, "feature_view")
            if isinstance(v, FeatureView) and isinstance(v.source, PushSource)
        ]
        readers = [v for v in views if v.source.name == name]
        if not readers:
            known = sorted({v.source.name for v in views})
            raise ObjectNotFoundError(
                f"no feature view in project {self.project!r} reads push source {name!r}; "
                f"push sources in use: {known}{did_you_mean(name, known)}",
                kind="push_source",
                name=name,
            )
        source = readers[0].source
        assert isinstance(source, PushSource)
        for view in readers[1:]:
            if view.source != source:
                raise PushError(
                    f"push source {name!r} is defined differently by {readers[0].label} and "
                    f"{view.label}; give both views the same PushSource object"
                )
        versioned = tuple(
            (v, self.registry.current_version(self.project, "feature_view", v.name))
            for v in readers
        )
        columns = push_columns(source, readers, self.config.repo_path)
        return PushTarget(source=source, views=versioned, columns=columns)

    # -- one view's rows, straight online (Feast's write_to_online_store) ----------------------

    def online_view(self, name: str) -> tuple[FeatureView, int]:
        """The online feature view called ``name`` and its current version."""
        view = self.registry.get(self.project, "feature_view", name)
        assert isinstance(view, FeatureView)
        if not view.online:
            raise PushError(
                f"{view.label} is not served online (online=False): nothing can be written to "
                "its online namespace"
            )
        return view, self.registry.current_version(self.project, "feature_view", name)

    def write_view(
        self,
        view: FeatureView,
        version: int,
        data: PushInput,
        validate: WriteValidation | None = None,
    ) -> OnlineWriteReport:
        """Write rows named as ``view`` names them to its namespace at ``version`` (see
        :mod:`featurestore.push.online_write`); a row never replaces a newer one. ``validate``
        (the quality layer) sees the rows first, as a push's, and may stop the write."""
        if view.is_aggregated:
            raise PushError(
                f"{view.label} is aggregated: its online state is built from events; push "
                "them to its push source (store.push) instead of writing rows to the view"
            )
        write = online_write_batch(view, data)
        if validate is not None and write.rows:
            validate(view, version, write.features)
        report = OnlineWriteReport(
            view.name,
            version,
            write.rows,
            write.batch.num_rows,
            ignored_columns=write.ignored_columns,
        )
        if write.batch.num_rows:
            namespace = Namespace(self.project, view, version)
            report.result = self.online.write_batch(namespace, write.batch)
            if self.freshness is not None:
                self.freshness.note(namespace, write.batch)
        return report

    # -- writing -------------------------------------------------------------------------------

    def _online_batches(
        self, target: PushTarget, frame: PushFrame
    ) -> list[tuple[Namespace, pa.RecordBatch]]:
        online = [(v, version) for v, version in target.views if v.online]
        if not online:
            raise PushError(
                f"push to {target.source.name!r}: no view reading it is served online "
                f"({[v.name for v, _ in target.views]} are online=False); push with "
                "to='offline'"
            )
        return [
            (Namespace(self.project, view, version), _online_batch(view, frame))
            for view, version in online
        ]

    def _write_online(
        self,
        target: PushTarget,
        batches: Sequence[tuple[Namespace, pa.RecordBatch]],
        staged: StagedFile | None,
        report: PushReport,
        positions: Sequence[tuple[int, int]] | None,
    ) -> None:
        done: list[str] = []
        for namespace, batch in batches:
            try:
                result = self._write_view(namespace, batch, positions)
                if self.freshness is not None:
                    self.freshness.note(namespace, batch)
            except TransformationError:  # a write-time view's function failed on the rows
                if staged is not None:
                    staged.discard()
                raise
            except OnlineStoreError as exc:
                if staged is not None:
                    staged.discard()
                already = f"; {done} already took the rows" if done else ""
                raise OnlineStoreError(
                    f"push to {target.source.name!r}: writing {namespace.view.label} online "
                    f"failed, so nothing was written offline{already} (pushing again is safe): "
                    f"{exc}"
                ) from exc
            done.append(namespace.view.name)
            report.online.append(
                ViewPush(namespace.view.name, namespace.version, batch.num_rows, result)
            )

    def _write_view(
        self,
        namespace: Namespace,
        batch: pa.RecordBatch,
        positions: Sequence[tuple[int, int]] | None,
    ) -> WriteResult:
        """A plain view takes the latest row per key (idempotent); an aggregated one merges
        every event into its keys' states (``positions``: of every pushed row, in order)."""
        if not namespace.view.is_aggregated:
            return self.online.write_batch(namespace, batch)
        seq = next_push_seq(batch.num_rows)
        events = events_by_key(namespace.view, batch, seq_start=seq, positions=positions)
        return WriteResult(written=push_events(self.online, namespace, events))


def _online_batch(view: FeatureView, frame: PushFrame) -> pa.RecordBatch:
    """The view's write batch from pushed rows: declared types, one (latest) row per key."""
    source = frame.columns.source
    table = frame.table
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        key: table.column(source.source_column(key)) for key in view.join_keys
    }
    columns[EVENT_TS] = epoch_micros(table.column(source.timestamp_field))
    created = source.created_timestamp_column
    columns[CREATED_TS] = (
        epoch_micros(table.column(created))
        if created is not None
        else pa.nulls(table.num_rows, pa.int64())
    )
    for name in (c.name for c in view.columns):
        columns[name] = table.column(source.source_column(name))
    if view.is_aggregated:  # every event counts, not only the latest per key
        [batch] = pa.table(columns).combine_chunks().to_batches()
        schema = aggregated_schema(view)
    else:
        latest = latest_per_key(pa.table(columns), view.join_keys).combine_chunks()
        [batch] = latest.to_batches()  # callers never push zero rows
        schema = online_schema(view)
    try:
        return conform(batch, schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PushError(
            f"push to {source.name!r}: a value does not fit the type {view.label} declares: {exc}"
        ) from None
