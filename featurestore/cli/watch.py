"""``featurestore materialize --watch``: materialize views as new data lands in their sources
(new files, a table's new version)."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timezone
from types import FrameType

from featurestore.cli.app import CliContext
from featurestore.materialize import MaterializationReport
from featurestore.materialize.watch import online_views, watch_and_materialize, watched_views
from featurestore.offline.store_data import StoreData


def run_watch(state: CliContext, views: list[str] | None, debounce: float) -> None:
    store = state.store
    console = state.console
    targets = online_views(store.registry.list(store.project, "feature_view"), views)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def materialize(names: list[str]) -> MaterializationReport:
        return store.materialize_incremental(datetime.now(timezone.utc), names, progress=False)

    data = StoreData(store.config)
    watched = watched_views(targets, data, store.offline)  # an unwatchable source fails first
    caught_up = materialize([v.name for v in targets])
    console.print(f"caught up: {caught_up.summary()}")

    def ready() -> None:
        folders = sorted({str(f) for item in watched for f in item.folders})
        console.print(
            f"watching {len(folders)} folder(s) for {len(watched)} view(s): {', '.join(folders)}"
        )

    def on_run(hits: dict[str, list[str]], report: MaterializationReport) -> None:
        files = sum(len(f) for f in hits.values())
        console.print(
            f"new data in {files} file(s) for {', '.join(sorted(hits))}: {report.summary()}"
        )

    runs = watch_and_materialize(
        watched, data, materialize, on_run, debounce=debounce, stop=stop, ready=ready
    )
    console.print(f"stopped after {runs} run(s)")
