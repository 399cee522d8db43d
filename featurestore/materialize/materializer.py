"""Materialization: the latest offline row per entity key, streamed into the online store.

For each online view, at its current registry version, the offline engine computes the latest
qualifying source row per key (the point-in-time join's tie-break: event time, created time, file
order) and streams it as bounded Arrow batches; each batch goes to
:meth:`OnlineStore.write_batch`, which keeps a stored row when it is newer (or identical). After
every batch of a view was written (``write_batch`` is durable on return), the view version's
watermark is recorded in the registry, in a transaction of its own, for the online store written
(its :attr:`~featurestore.online.OnlineStore.identity`: another store has its own watermarks, so
switching stores makes the next incremental run fill the new one from scratch). A failure anywhere before that
leaves the previous watermark; re-running converges to the same online state because writes are
idempotent and never replace newer rows.

Watermark ``W = (end, created)`` claims: every source row with ``event_ts <= end`` and
``created_ts <= created`` has been written. How runs use and move it:

* ``materialize_incremental(end)`` without ``W`` reads every row with ``event_ts <= end`` (from the
  beginning of the data: the first run is complete) and records ``(end, max created seen)``.
* ``materialize_incremental(end)`` with ``W`` reads rows with ``event_ts <= end`` that are new:
  ``event_ts > W.end`` or ``created_ts > W.created``. The second clause picks up late rows (an
  event time before the watermark, created after it). Together with what ``W`` covers, that is
  every row with ``event_ts <= end``, so it records ``(end, max(W.created, max created seen))``.
  With ``end < W.end`` late rows up to ``end`` are written but ``W`` stays: raising its created
  part would skip late rows between ``end`` and ``W.end``.
* ``materialize(start, end)`` without ``W`` records ``(end, max created seen)``: like Feast, the
  caller's ``start`` declares where the data of interest begins. With ``W`` and
  ``start <= W.end`` it records ``(max(end, W.end), W.created)``; after a gap
  (``start > W.end``) it leaves ``W`` alone so the next incremental run fills the gap.

Sources without a created-timestamp column can only be tracked by event time: a row that arrives
late with an event time at or before the watermark is not picked up by incremental runs (run
``materialize`` over its window). Likewise a row whose created timestamp is at or before the
recorded ``created`` watermark when it arrives is taken as already seen: created timestamps must
grow as data lands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import (
    MaterializationError,
    ObjectNotFoundError,
    OnlineStoreError,
    RegistryError,
    RetrievalError,
)
from featurestore.materialize.aggregated_values import ValuesAtEnd, preview_values
from featurestore.materialize.progress import (
    MaterializationReport,
    ProgressDisplay,
    ViewReport,
    progress_for,
)
from featurestore.materialize.spool import BatchSpool
from featurestore.offline.base import (
    LatestRows,
    LatestWindow,
    OfflineEngine,
    SupportsEventReads,
    missing_capability,
)
from featurestore.offline.file_positions import newest_position
from featurestore.online.aggregation_views import materialize_stream, read_from
from featurestore.online.base import Namespace, OnlineStore, WriteListener
from featurestore.online.batches import conform, online_schema
from featurestore.registry.base import Registry, Watermark

#: Rows per batch sent to the online store: bounds memory whatever the number of keys.
DEFAULT_BATCH_ROWS = 100_000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_utc(value: datetime, name: str) -> datetime:
    """``value`` as an aware UTC datetime; naive values are taken as UTC."""
    if not isinstance(value, datetime):
        raise MaterializationError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def epoch_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (value - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True)
class _Plan:
    """One view's run: which rows to read, and the watermark to record after success."""

    window: LatestWindow
    previous: Watermark | None
    # None: leave the watermark as it is. Otherwise (end, created) with created None meaning
    # "the largest created timestamp this run sees, or the previous one if larger".
    record_end: datetime | None
    keep_created: bool


#: Given a view version's current watermark, what its run reads and records.
_PlanFor = Callable[[Watermark | None], _Plan]

#: A view's effective retention (its own, else the project default; None: rows never age out).
RetentionOf = Callable[[FeatureView], timedelta | None]


class RunValidation(Protocol):
    """Validates one view's rows as they are materialized (the quality layer's hook).

    ``strict``: rows are held back (spooled) until :meth:`finish` passed, so a rejected run
    writes nothing. :meth:`finish` records the outcome, returns a one-line summary, and raises
    :class:`~featurestore.errors.ValidationFailedError` when a strict validation failed.
    """

    strict: bool

    def add(self, batch: pa.RecordBatch) -> None: ...

    def finish(self) -> str: ...


#: Given a view, its version and the run's window: the run's validation (None: none).
ValidationFor = Callable[[FeatureView, int, LatestWindow], RunValidation | None]


class MaterializationListener(Protocol):
    """Told about each view's run, e.g. by the lineage layer (which reports the runs)."""

    def view_started(self, view: FeatureView, version: int, window: LatestWindow) -> None: ...

    def view_finished(self, report: ViewReport) -> None: ...

    def view_failed(self, view: FeatureView, version: int, error: BaseException) -> None: ...


class Materializer:
    """Runs materializations of one project; the facade builds one per call.

    report = Materializer(project="demo", registry=registry, offline=engine,
                          online=online_store, progress=None).materialize(start, end)
    print(report.summary())

    With ``retention``, rows older than a view's retention window (counted back from the start
    of the run) are never candidates, so nothing that retrieval would not serve goes online.
    With ``validation``, each view's rows are validated as they stream; a strict validation
    spools them (in ``spool_dir``) and writes them only once every row passed.
    """

    def __init__(
        self,
        *,
        project: str,
        registry: Registry,
        offline: OfflineEngine,
        online: OnlineStore,
        progress: bool | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        retention: RetentionOf | None = None,
        listener: MaterializationListener | None = None,
        validation: ValidationFor | None = None,
        spool_dir: Path | None = None,
        freshness: WriteListener | None = None,
    ) -> None:
        if batch_rows < 1:
            raise MaterializationError(f"batch_rows must be at least 1, got {batch_rows}")
        self.project = project
        self.registry = registry
        self.offline = offline
        self.online = online
        self.progress = progress
        self.batch_rows = batch_rows
        self.retention = retention
        self.listener = listener
        self.validation = validation
        self.spool_dir = spool_dir
        self.freshness = freshness

    def materialize(
        self, start: datetime, end: datetime, feature_views: Sequence[str] | None = None
    ) -> MaterializationReport:
        """Write each view's latest row per key with ``start <= event_ts <= end``."""
        start, end = to_utc(start, "start"), to_utc(end, "end")
        if start > end:
            raise MaterializationError(
                f"materialize: start {start.isoformat()} is after end {end.isoformat()}"
            )

        def plan(previous: Watermark | None) -> _Plan:
            window = LatestWindow(start_us=epoch_us(start), end_us=epoch_us(end))
            if previous is None:
                return _Plan(window, None, end, keep_created=False)
            if start > previous.end:
                return _Plan(window, previous, None, keep_created=True)
            return _Plan(window, previous, max(end, previous.end), keep_created=True)

        return self._run(feature_views, plan)

    def materialize_incremental(
        self, end: datetime, feature_views: Sequence[str] | None = None
    ) -> MaterializationReport:
        """Write what is new since each view's watermark (late rows included) up to ``end``."""
        end = to_utc(end, "end")

        def plan(previous: Watermark | None) -> _Plan:
            if previous is None:
                window = LatestWindow(start_us=None, end_us=epoch_us(end))
                return _Plan(window, None, end, keep_created=False)
            created_after = None if previous.created is None else epoch_us(previous.created)
            window = LatestWindow(
                start_us=None,
                end_us=epoch_us(end),
                changed_after=(epoch_us(previous.end), created_after),
            )
            record = end if end >= previous.end else None
            return _Plan(window, previous, record, keep_created=False)

        return self._run(feature_views, plan)

    # -- one run -------------------------------------------------------------------------------

    def _run(self, names: Sequence[str] | None, plan_for: _PlanFor) -> MaterializationReport:
        views = self._views(names)
        try:
            # Fail before any work, and even when nothing is new, if the store is unreachable.
            self.online.ping()
        except OnlineStoreError as exc:
            raise MaterializationError(
                f"cannot materialize project {self.project!r}: {exc}; no watermark moved"
            ) from exc
        report = MaterializationReport(project=self.project)
        now_us = epoch_us(datetime.now(timezone.utc))
        with progress_for(self.progress) as display:
            for view, version in views:
                with self._registry_errors(view):
                    previous = self.registry.get_watermark(
                        self.project, view.name, version, online_store=self.online.identity
                    )
                    plan = self._retained(view, plan_for(previous), now_us)
                report.views.append(self._told(view, version, plan, display))
            display.finish(report)
        return report

    def _retained(self, view: FeatureView, plan: _Plan, now_us: int) -> _Plan:
        """``plan`` with the view's retention cut-off, when it has a retention window."""
        window = None if self.retention is None else self.retention(view)
        if window is None:
            return plan
        cutoff = now_us - window // _MICROSECOND
        return replace(plan, window=replace(plan.window, not_before_us=cutoff))

    def _told(
        self, view: FeatureView, version: int, plan: _Plan, display: ProgressDisplay
    ) -> ViewReport:
        """One view's run, with the listener told when it starts and how it ended."""
        if self.listener is None:
            return self._materialize_view(view, version, plan, display)
        self.listener.view_started(view, version, plan.window)
        try:
            done = self._materialize_view(view, version, plan, display)
        except BaseException as exc:
            self.listener.view_failed(view, version, exc)
            raise
        self.listener.view_finished(done)
        return done

    def _views(self, names: Sequence[str] | None) -> list[tuple[FeatureView, int]]:
        """The views to run, each with its current version."""
        try:
            if names is None:
                views = [
                    v
                    for v in self.registry.list(self.project, "feature_view")
                    if isinstance(v, FeatureView) and v.online
                ]
            else:
                # A lone name is one view, not a sequence of one-letter names.
                listed = [names] if isinstance(names, str) else names
                views = [self._named_view(name) for name in dict.fromkeys(listed)]
            return [
                (v, self.registry.current_version(self.project, "feature_view", v.name))
                for v in views
            ]
        except ObjectNotFoundError:
            raise  # a view the caller named that does not exist: already says so
        except RegistryError as exc:
            raise MaterializationError(
                f"materialize in project {self.project!r}: cannot read the views: {exc}"
            ) from exc

    def _named_view(self, name: str) -> FeatureView:
        try:
            view = self.registry.get(self.project, "feature_view", name)
        except ObjectNotFoundError as exc:
            # Still a not-found error (REST answers 404), saying what was being done.
            raise ObjectNotFoundError(
                f"cannot materialize feature view {name!r}: {exc}", kind="feature_view", name=name
            ) from None
        assert isinstance(view, FeatureView)
        if not view.online:
            raise MaterializationError(
                f"cannot materialize {view.label}: it is declared online=False"
            )
        return view

    def _materialize_view(
        self, view: FeatureView, version: int, plan: _Plan, display: ProgressDisplay
    ) -> ViewReport:
        if view.is_aggregated:
            return self._materialize_aggregated(view, version, plan, display)
        report = ViewReport(view=view.name, version=version)
        namespace = Namespace(self.project, view, version)
        validation = self._validation(view, version, plan)
        began = time.perf_counter()
        try:
            with closing(
                self.offline.latest_per_entity(view, plan.window, batch_rows=self.batch_rows)
            ) as rows:
                report.rows_read, report.keys = rows.rows_read, rows.keys
                max_created = rows.max_created_us
                schema = online_schema(view)
                batches = (conform(batch, schema) for batch in rows.batches())
                if validation is not None and validation.strict:
                    with BatchSpool(self.spool_dir) as spool:
                        for batch in batches:
                            validation.add(batch)
                            spool.add(batch)
                        # Raises when the run is rejected: nothing was written.
                        report.validation = validation.finish()
                        self._write(namespace, spool.replay(), report, display)
                else:
                    self._write(namespace, batches, report, display, validation)
                    if validation is not None:
                        report.validation = validation.finish()
        except (OnlineStoreError, RetrievalError) as exc:
            raise MaterializationError(self._failed(view, version, plan.previous, exc)) from exc
        return self._finish(view, version, plan, report, max_created, began)

    def _finish(
        self,
        view: FeatureView,
        version: int,
        plan: _Plan,
        report: ViewReport,
        max_created: int | None,
        began: float,
    ) -> ViewReport:
        """Record the run's watermark (when the plan moves it) and close the report."""
        watermark = plan.previous
        if plan.record_end is not None:
            with self._registry_errors(view):
                watermark = self.registry.set_watermark(
                    self.project,
                    view.name,
                    version,
                    online_store=self.online.identity,
                    end=plan.record_end,
                    created=_next_created(plan, max_created),
                    rows=report.keys,
                )
        report.watermark_end = None if watermark is None else watermark.end
        report.seconds = time.perf_counter() - began
        return report

    def _materialize_aggregated(
        self, view: FeatureView, version: int, plan: _Plan, display: ProgressDisplay
    ) -> ViewReport:
        """Rebuild each key's aggregation state as of the run's end from the offline events
        its windows need (see :mod:`featurestore.online.aggregation_views`): the run's start
        does not matter, only its end, so any run leaves the states equal to the offline
        data at that end, plus the events a stream consumer merged online whose offline file
        was published after the engine listed the files (told apart by stream position)."""
        report = ViewReport(view=view.name, version=version)
        namespace = Namespace(self.project, view, version)
        if not isinstance(self.offline, SupportsEventReads):
            raise missing_capability(self.offline, SupportsEventReads, "materialize " + view.label)
        through = plan.window.end_us
        validation = self._validation(view, version, plan)
        values = None if validation is None else self._values_at_end(view, plan, validation)
        began = time.perf_counter()
        try:
            if values is not None and validation is not None and validation.strict:
                with closing(self._events(self.offline, view, plan)) as rows:
                    preview_values(
                        self.online,
                        namespace,
                        rows.batches(),
                        values,
                        read_from_us=read_from(view, through),
                        durable=_stream_durable(view, rows.durable),
                    )
                # Raises when the run is rejected: nothing was written.
                report.validation = validation.finish()
                validation = values = None  # passed: the write pass needs no second check
            with closing(self._events(self.offline, view, plan)) as rows:
                report.rows_read, report.keys = rows.rows_read, rows.keys
                display.start_view(f"{view.name} v{version}", report.rows_read)
                for read, written in materialize_stream(
                    self.online,
                    namespace,
                    rows.batches() if values is None else values.tap(rows.batches()),
                    through_us=through,
                    read_from_us=read_from(view, through),
                    durable=_stream_durable(view, rows.durable),
                    built=None if values is None else values.built,
                ):
                    report.written += written
                    display.advance(read)
                    if values is not None:
                        values.flush()
            if values is not None and validation is not None:
                values.flush(final=True)
                report.validation = validation.finish()
        except (OnlineStoreError, RetrievalError) as exc:
            raise MaterializationError(self._failed(view, version, plan.previous, exc)) from exc
        return self._finish(view, version, plan, report, None, began)

    def _validation(self, view: FeatureView, version: int, plan: _Plan) -> RunValidation | None:
        return None if self.validation is None else self.validation(view, version, plan.window)

    def _values_at_end(
        self, view: FeatureView, plan: _Plan, validation: RunValidation
    ) -> ValuesAtEnd:
        """What validating an aggregated view's run checks: the values lookups at the run's
        end answer (its suite is about them, not about the events)."""
        return ValuesAtEnd(
            view,
            validation.add,
            through_us=plan.window.end_us,
            kept_from_us=plan.window.not_before_us,
            batch_rows=self.batch_rows,
        )

    def _events(self, offline: SupportsEventReads, view: FeatureView, plan: _Plan) -> LatestRows:
        """The events an aggregated view's run to the plan's end reads, ordered by key."""
        through = plan.window.end_us
        return offline.read_events(
            view,
            after_us=read_from(view, through),
            end_us=through,
            not_before_us=plan.window.not_before_us,
            batch_rows=self.batch_rows,
        )

    def _write(
        self,
        namespace: Namespace,
        batches: Iterable[pa.RecordBatch],
        report: ViewReport,
        display: ProgressDisplay,
        validation: RunValidation | None = None,
    ) -> None:
        """Write ``batches`` online (validating each first, when ``validation`` is given)."""
        display.start_view(f"{namespace.view.name} v{namespace.version}", report.keys)
        for batch in batches:
            if validation is not None:
                validation.add(batch)
            result = self.online.write_batch(namespace, batch)
            if self.freshness is not None:
                self.freshness.note(namespace, batch)
            report.written += result.written
            report.skipped_older += result.skipped_older
            report.expired += result.expired
            display.advance(batch.num_rows)

    @contextmanager
    def _registry_errors(self, view: FeatureView) -> Iterator[None]:
        try:
            yield
        except RegistryError as exc:
            raise MaterializationError(
                f"materializing {view.label}: the registry failed, so its watermark did not move "
                f"(rows already written stay; re-run to finish): {exc}"
            ) from exc

    def _failed(
        self, view: FeatureView, version: int, previous: Watermark | None, exc: Exception
    ) -> str:
        where = "none" if previous is None else previous.end.isoformat()
        return (
            f"materializing {view.label} v{version} of project {self.project!r} failed, so its "
            f"watermark did not move (still {where}); rows already written stay and a re-run "
            f"completes them: {exc}"
        )


def _stream_durable(view: FeatureView, durable: Mapping[str, str]) -> tuple[int, int] | None:
    """The newest position of ``view``'s stream that the read's files hold (None: the view
    reads no stream, or no streamed file was read)."""
    if not isinstance(view.source, StreamSource):
        return None
    return newest_position(durable, view.source.topic)


def _next_created(plan: _Plan, max_created_us: int | None) -> datetime | None:
    previous = None if plan.previous is None else plan.previous.created
    if plan.keep_created:
        return previous
    seen = None if max_created_us is None else from_epoch_us(max_created_us)
    candidates = [c for c in (previous, seen) if c is not None]
    return max(candidates) if candidates else None
