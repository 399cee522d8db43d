"""Event-driven materialization: ``featurestore materialize --watch``.

The watcher asks the operating system to report changes under each view's source folder
(inotify on Linux, through ``watchfiles``), so nothing is re-read while nothing changes. When a
Parquet file a view reads appears or changes, the view is materialized incrementally up to now,
with the usual watermark rules (late rows included); changes arriving together are gathered
for ``debounce`` seconds first, so a writer producing ten files triggers one run.

Files no reader lists are ignored: dot-names (a write being staged) and anything a view's source
does not match. A push source's view is also watched in the store's own push folder (rows pushed
to the offline store). Deleting a file triggers nothing (it brings no new row). A table source's
view is watched where the offline engine says the table lives, and a new version of the table
triggers it (:mod:`featurestore.materialize.watch_tables`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, watch

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource, SparkSource
from featurestore.errors import ObjectNotFoundError, did_you_mean
from featurestore.materialize import MaterializationReport
from featurestore.materialize.watch_tables import new_versions, table_folders
from featurestore.offline.base import OfflineEngine
from featurestore.offline.store_data import StoreData


def online_views(registered: Iterable[object], names: Sequence[str] | None) -> list[FeatureView]:
    """The online views among ``registered`` named by ``names`` (default: all of them)."""
    views = {v.name: v for v in registered if isinstance(v, FeatureView) and v.online}
    if names is None:
        return list(views.values())
    for name in names:
        if name not in views:
            raise ObjectNotFoundError(
                f"no online feature view {name!r} to watch; online views: "
                f"{sorted(views)}{did_you_mean(name, views)}",
                kind="feature_view",
                name=name,
            )
    return [views[name] for name in names]


@dataclass(frozen=True)
class WatchedView:
    """A view and the folders whose changes may bring it new rows (``table``: the folders
    are a table's locations, where a new version counts, not the files a source lists)."""

    view: FeatureView
    folders: tuple[Path, ...]
    table: bool = False


def watched_views(
    views: Iterable[FeatureView], data: StoreData, engine: OfflineEngine
) -> list[WatchedView]:
    """Each view with the folders to watch (created when missing, so a first file is seen);
    ``engine`` tells where a table source lives."""
    watched = []
    for view in views:
        if isinstance(view.source, SparkSource):
            watched.append(WatchedView(view, table_folders(view, engine), table=True))
            continue
        pattern = view.source.resolve(data.repo_path)
        fixed = Path(pattern.split("*")[0].split("?")[0].split("[")[0])
        folder = fixed if fixed.is_dir() or pattern.endswith("/") else fixed.parent
        folders = [folder]
        if isinstance(view.source, PushSource):
            folders.append(data.push_folder(view.source.name))
        for path in folders:
            path.mkdir(parents=True, exist_ok=True)
        watched.append(WatchedView(view, tuple(p.resolve() for p in folders)))
    return watched


def affected(
    watched: Sequence[WatchedView], changes: Iterable[tuple[Change, str]], data: StoreData
) -> dict[str, list[str]]:
    """View name -> the changed files it reads (added or modified, never deleted ones)."""
    found: dict[str, list[str]] = {}
    paths = {Path(p).resolve() for kind, p in changes if kind != Change.deleted}
    parquet = {p for p in paths if p.suffix == ".parquet" and not p.name.startswith(".")}
    for item in watched:
        if item.table:
            hits = sorted({str(p) for f in item.folders for p in new_versions(paths, f)})
        else:
            reads = {Path(f).resolve() for f in data.view_files(item.view)}
            hits = sorted(str(p) for p in parquet if p in reads)
        if hits:
            found[item.view.name] = hits
    return found


def watch_and_materialize(
    watched: Sequence[WatchedView],
    data: StoreData,
    materialize: Callable[[list[str]], MaterializationReport],
    on_run: Callable[[dict[str, list[str]], MaterializationReport], None],
    *,
    debounce: float = 1.0,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Materialize the affected views after each burst of changes until ``stop`` is set;
    returns the number of runs."""
    folders = sorted({str(f) for item in watched for f in item.folders})
    runs = 0
    if ready is not None:
        ready()
    for changes in watch(
        *folders,
        debounce=max(1, int(debounce * 1000)),
        step=50,
        stop_event=stop,
        rust_timeout=500,
        yield_on_timeout=False,
    ):
        hits = affected(watched, changes, data)
        if not hits:
            continue
        report = materialize(sorted(hits))
        runs += 1
        on_run(hits, report)
    return runs
