"""Retention: how long the store keeps and serves a view's rows, and the runs that enforce it.

A view's effective retention is its own ``retention``, else the project default
(``retention: {default: 365d}`` in ``featurestore.yaml``), else none. At an instant ``now`` its
cut-off is ``now - retention``: a row whose event time is *before* the cut-off is gone, a row
exactly at it stays (the bound is inclusive, like the TTL's).

* Retrieval never serves gone rows, wherever they are: the point-in-time join and
  materialization drop them in the source scan, and online lookups answer ``NOT_FOUND`` for a
  stored row older than the cut-off. User-owned source files are filtered, never changed.
* :func:`enforce_retention` deletes them from what the store owns (see
  :mod:`featurestore.governance.holdings`): every online namespace of the view (every stored
  version), the Parquet files pushed to its push source, and saved datasets. It also deletes
  the stale staged files interrupted writes left (their rows were never published).

Data shared by views with different windows is kept for the *shortest* of them, since retention
is a limit on how long data may be kept: a push source's files for the shortest window among the
views reading it, a saved dataset for the shortest among the views it was built from (rows are
dropped by their entity timestamp). The audit log is never shortened.

    rules = RetentionRules(registry, "demo", default=timedelta(days=365))
    report = enforce_retention(holdings, online, rules, now=datetime.now(timezone.utc))
    print(report.summary())
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import ObjectNotFoundError, RetentionError
from featurestore.governance.holdings import (
    Holdings,
    Removal,
    StoredView,
    remove_stale,
    totals,
)
from featurestore.governance.parquet_rows import RowFilterError, older_than, remove_rows
from featurestore.offline.base import FeatureRequest
from featurestore.online.base import Namespace, OnlineStore, SupportsRowDeletion
from featurestore.registry.base import Registry

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // _MICROSECOND


def run_instant(now: datetime | None) -> datetime:
    """The instant a run counts back from: ``now`` (naive = UTC) or the current time. A later
    instant is refused: it would delete rows that are still inside their window."""
    current = datetime.now(timezone.utc)
    if now is None:
        return current
    if not isinstance(now, datetime):
        raise RetentionError(f"retention: now must be a datetime, got {now!r}")
    moment = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
    if moment > current:
        raise RetentionError(
            f"retention: now={moment.isoformat()} is in the future; it would remove rows that "
            "are still within their retention window"
        )
    return moment.astimezone(timezone.utc)


class RetentionRules:
    """The effective retention of views: a view's own window, else the project default.

    Retention is governance metadata, read from the view's latest definition by name, so a
    pinned older version (``view@1:f``) follows the current setting too.
    """

    def __init__(self, registry: Registry, project: str, default: timedelta | None) -> None:
        self.registry = registry
        self.project = project
        self.default = default

    def effective(self, latest: FeatureView) -> timedelta | None:
        """The window of a view given its latest definition."""
        return latest.retention if latest.retention is not None else self.default

    def of(self, view: FeatureView) -> timedelta | None:
        """The window of ``view`` (any version of it), from its current definition."""
        try:
            current = self.registry.get(self.project, "feature_view", view.name)
        except ObjectNotFoundError:  # deleted, or never applied: the definition at hand
            current = view
        assert isinstance(current, FeatureView)
        return self.effective(current)

    def cutoff_us(self, view: FeatureView, now_us: int) -> int | None:
        """The oldest event time still kept at ``now_us`` (None: no retention)."""
        window = self.of(view)
        return None if window is None else now_us - window // _MICROSECOND

    def apply(self, requests: Sequence[FeatureRequest], now_us: int) -> list[FeatureRequest]:
        """``requests`` with each view's cut-off set (unchanged where there is none)."""
        return [
            replace(request, not_before_us=cutoff)
            if (cutoff := self.cutoff_us(request.view, now_us)) is not None
            else request
            for request in requests
        ]


@dataclass
class RetentionReport:
    """What one retention run removed (``dry_run``: would remove), counted back from ``now``.

    ``windows`` holds every view's effective retention (None: kept however old); ``removed``
    the places that had rows older than their cut-off; ``notes`` what was passed over and why.
    """

    #: The run's name in OpenLineage job names (``<project>.retention.<view>``).
    job: ClassVar[str] = "retention"

    project: str
    now: datetime
    dry_run: bool
    windows: dict[str, timedelta | None] = field(default_factory=dict)
    removed: list[Removal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows and keys removed in all."""
        return sum(r.rows for r in self.removed)

    @property
    def outcome(self) -> str:
        """The audit record's outcome."""
        return "ok"

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"retention of project {self.project!r} at {self.now.isoformat()}: {verb} "
            f"{self.total} row(s) and key(s) in {len(self.removed)} place(s)"
        ]
        for name, window in sorted(self.windows.items()):
            lines.append(f"  window {name}: {_duration(window)}")
        lines.extend(f"  {verb} {removal.describe()}" for removal in self.removed)
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def audit_detail(self) -> dict[str, Any]:
        """The audit record's detail: the run's kind, totals per place, and each place."""
        return {
            "run": "retention",
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "removed": totals(self.removed),
            "places": [r.describe() for r in self.removed],
            "notes": self.notes,
        }


def enforce_retention(
    holdings: Holdings,
    online: OnlineStore,
    rules: RetentionRules,
    *,
    now: datetime,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete (``dry_run``: count) every row older than its view's window from what the store
    owns. Safe to re-run: a run that fails part way leaves what it removed removed."""
    report = RetentionReport(holdings.project, now, dry_run)
    now_us = epoch_us(now)
    stored = holdings.views()
    cutoffs: dict[str, int | None] = {}
    for view in stored:
        window = rules.effective(view.latest)
        report.windows[view.view.name] = window
        cutoffs[view.view.name] = None if window is None else now_us - window // _MICROSECOND
    _online(online, stored, cutoffs, report)
    _pushed(holdings, cutoffs, report)
    _datasets(holdings, cutoffs, rules, now_us, report)
    for path in holdings.data.staged_files():
        stale = remove_stale(path, dry_run=dry_run)
        if stale is not None:
            report.removed.append(stale)
    return report


def _online(
    online: OnlineStore,
    stored: Sequence[StoredView],
    cutoffs: dict[str, int | None],
    report: RetentionReport,
) -> None:
    namespaces: dict[Namespace, int] = {}
    by_namespace: dict[Namespace, StoredView] = {}
    for view in stored:
        cutoff = cutoffs[view.view.name]
        if cutoff is not None:
            namespaces[view.namespace] = cutoff
            by_namespace[view.namespace] = view
    if not namespaces:
        return
    if not isinstance(online, SupportsRowDeletion):
        raise RetentionError(
            f"the online store {online!r} cannot delete rows by age, so retention cannot be "
            "enforced online; use the sqlite or redis online store"
        )
    for namespace, rows in online.delete_older_than(namespaces, dry_run=report.dry_run).items():
        if rows:
            view = by_namespace[namespace]
            report.removed.append(Removal("online", view.label, rows, view.view.name))


def _shortest(cutoffs: Iterable[int | None]) -> int | None:
    """The strictest of several cut-offs (the latest instant); None when none applies."""
    known = [c for c in cutoffs if c is not None]
    return max(known) if known else None


def _pushed(holdings: Holdings, cutoffs: dict[str, int | None], report: RetentionReport) -> None:
    for pushed in holdings.pushed():
        if not pushed.readers:
            report.notes.append(
                f"push source {pushed.source!r}: no stored view reads it, so its timestamp "
                "column is unknown and its files were left as they are"
            )
            continue
        cutoff = _shortest(cutoffs[reader.view.name] for reader in pushed.readers)
        if cutoff is None:
            continue
        # Every view reading a push source shares its definition, timestamp column included.
        row_filter = older_than(pushed.readers[-1].view.source.timestamp_field, cutoff)
        with holdings.data.push_lock(pushed.source) as files:  # one rewriter at a time
            for path in files:
                try:
                    rows = remove_rows(path, row_filter, dry_run=report.dry_run)
                except RowFilterError as exc:
                    raise RetentionError(
                        f"retention of push source {pushed.source!r}: cannot filter {exc}; "
                        "rows removed before this stay removed"
                    ) from exc
                if rows:
                    report.removed.append(
                        Removal("pushed", str(path), rows, pushed.source, str(path))
                    )


def _datasets(
    holdings: Holdings,
    cutoffs: dict[str, int | None],
    rules: RetentionRules,
    now_us: int,
    report: RetentionReport,
) -> None:
    default = None if rules.default is None else now_us - rules.default // _MICROSECOND
    for dataset in holdings.datasets():
        if not dataset.owned:
            continue  # saved outside the store's folder: its owner's file, never rewritten
        known = [cutoffs[v] for v in dataset.views if v in cutoffs]
        # Built from views the registry does not know (or not recorded): the project default.
        cutoff = _shortest(known) if known else default
        if cutoff is None:
            continue
        if dataset.timestamp_column is None:
            report.notes.append(
                f"saved dataset {dataset.name!r}: its entity timestamp column is unknown "
                "(no 'event_timestamp' entity column, nor exactly one other timestamp entity column), "
                "so it was left as it is"
            )
            continue
        try:
            rows = remove_rows(
                dataset.path,
                older_than(dataset.timestamp_column, cutoff),
                dry_run=report.dry_run,
                keep_empty=True,
            )
        except RowFilterError as exc:
            raise RetentionError(
                f"retention of saved dataset {dataset.name!r}: cannot filter {exc}; "
                f"rows removed before this stay removed"
            ) from exc
        if rows:
            report.removed.append(
                Removal("dataset", dataset.name, rows, dataset.name, str(dataset.path))
            )
            if not report.dry_run:
                holdings.recount_dataset(dataset)


def _duration(window: timedelta | None) -> str:
    if window is None:
        return "none (kept however old)"
    seconds = window.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
