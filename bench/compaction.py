"""Retrieval after many small pushes, before and after ``featurestore compact``.

    python bench/compaction.py                       # 10,000 pushes of 10 rows, 100k entity rows
    python bench/compaction.py --pushes 2000 --entity-rows 20000

Three copies of one push-fed view hold the same rows: **baseline** got them in one push (one
file), **pushed** in ``--pushes`` small pushes (one file each), **compacted** is ``pushed`` after
``store.compact()`` (its merged small files kept for the grace period, for readers that listed the
folder before), **compacted, swept** the same once the next compaction past the grace period
deleted them (``grace_seconds=0``). Each answers the same point-in-time retrieval (best of ``--repeat`` runs);
the table prints seconds, files read and the ratio to the baseline (the issue's goal: compacted
within 1.2x), plus the time of the pushes and of the compaction, and this process's peak memory.
All the frames must be equal, or the run fails.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_summary, peak_rss_mb, work_dir

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from featurestore.offline.store_data import StoreData
from featurestore.types import Float64, Int64

END = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
VIEW = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(hours=2),
    schema=[Field(name="rate", dtype=Float64), Field(name="trips", dtype=Int64)],
    source=PushSource(
        name="stats_push",
        batch_source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
    ),
)
FEATURES = ["driver_stats:rate", "driver_stats:trips"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--rows-per-push", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--drivers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    batch = _rows(rng, args.batch_rows, args.drivers, days=30)
    pushed = _rows(rng, args.pushes * args.rows_per_push, args.drivers, days=1)
    entities = pd.DataFrame(
        {
            "driver_id": rng.integers(0, args.drivers, args.entity_rows),
            "event_timestamp": END
            - pd.to_timedelta(rng.integers(0, 86_400, args.entity_rows), "s"),
        }
    )
    print(machine_summary())
    print(
        f"{args.batch_rows:,} batch rows; {len(pushed):,} pushed rows in {args.pushes:,} pushes "
        f"of {args.rows_per_push}; {args.entity_rows:,} entity rows"
    )
    with work_dir(args.keep) as work:
        baseline = _store(work / "baseline", batch)
        baseline.push("stats_push", pushed, to="offline")
        many = _store(work / "pushed", batch)
        started = time.perf_counter()
        for start in range(0, len(pushed), args.rows_per_push):
            many.push("stats_push", pushed.iloc[start : start + args.rows_per_push], to="offline")
        push_seconds = time.perf_counter() - started
        print(
            f"pushes: {args.pushes:,} in {push_seconds:.1f} s ({args.pushes / push_seconds:,.0f}/s)"
        )

        base_s, base_df = _retrieve(baseline, entities, args.repeat)
        many_s, many_df = _retrieve(many, entities, args.repeat)
        many_files = _files(many)
        report = many.compact()
        print(
            f"compact: {report.merged:,} files merged into "
            f"{sum(len(s.written) for s in report.sources)} in {report.seconds:.2f} s"
        )
        comp_s, comp_df = _retrieve(many, entities, args.repeat)
        comp_files, comp_folder = _files(many), _folder(many)
        # The merged small files stay for an hour (readers that listed the folder before may
        # still open them); the next compaction past that deletes them. grace 0 = that run.
        swept = many.compact(grace_seconds=0)
        swept_s, swept_df = _retrieve(many, entities, args.repeat)
        for name, frame in (
            ("pushed", many_df),
            ("compacted", comp_df),
            ("compacted, swept", swept_df),
        ):
            pd.testing.assert_frame_equal(frame, base_df, obj=f"{name} vs baseline")
        print(
            f"\n{'layout':<17} {'files':>7} {'in folder':>10} {'retrieval s':>12} {'x baseline':>11}"
        )
        for name, files, folder, seconds in (
            ("baseline", _files(baseline), _folder(baseline), base_s),
            ("pushed", many_files, many_files, many_s),
            ("compacted", comp_files, comp_folder, comp_s),
            ("compacted, swept", _files(many), _folder(many), swept_s),
        ):
            print(
                f"{name:<17} {files:>7,} {folder:>10,} {seconds:>12.3f} {seconds / base_s:>10.2f}x"
            )
        print(f"swept: {sum(s.deleted for s in swept.sources):,} merged files deleted")
        print(f"\nsame frames: yes; peak memory of this process: {peak_rss_mb():,.0f} MiB")
        print(
            f"goal: compacted within 1.2x of the baseline -> {comp_s / base_s:.2f}x right after "
            f"compaction (merged files still in the folder), {swept_s / base_s:.2f}x once they "
            "are deleted"
        )
        for store in (baseline, many):
            store.close()
    return 0


def _rows(rng: np.random.Generator, n: int, drivers: int, days: int) -> pd.DataFrame:
    event = END - pd.to_timedelta(rng.integers(0, days * 86_400, n), "s")
    return pd.DataFrame(
        {
            "driver_id": rng.integers(0, drivers, n),
            "event_timestamp": event,
            "created": event + pd.to_timedelta(rng.integers(0, 600, n), "s"),
            "rate": rng.random(n),
            "trips": rng.integers(0, 1000, n),
        }
    )


def _store(root: Path, batch: pd.DataFrame) -> FeatureStore:
    (root / "data").mkdir(parents=True)
    batch.to_parquet(root / "data" / "stats.parquet")
    (root / "featurestore.yaml").write_text(
        f"project: compaction_{uuid.uuid4().hex[:8]}\n"
        f"online_store: {{type: sqlite, path: {root / 'online.db'}}}\n"
    )
    store = FeatureStore(root)
    store.apply([DRIVER, VIEW])
    return store


def _retrieve(
    store: FeatureStore, entities: pd.DataFrame, repeat: int
) -> tuple[float, pd.DataFrame]:
    best, frame = float("inf"), pd.DataFrame()
    for _ in range(repeat):
        started = time.perf_counter()
        frame = store.get_historical_features(entities, FEATURES).to_pandas()
        best = min(best, time.perf_counter() - started)
    return best, frame


def _files(store: FeatureStore) -> int:
    """Files a retrieval reads: the batch file and the live pushed files."""
    return len(StoreData(store.config).readable_pushed_files("stats_push")) + 1


def _folder(store: FeatureStore) -> int:
    """Files in the folders: the batch file and every pushed file, merged ones included."""
    return len(StoreData(store.config).pushed_files("stats_push")) + 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
