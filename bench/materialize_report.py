"""What ``materialize.py`` prints: the timings of each engine's runs, and the check of its
result (a sample of entity keys looked up through both SDKs, compared value by value).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from common import (
    ChildResult,
    ViewSpec,
    run_child,
)
from engine_runs import EngineRun

#: Entity keys looked up through both SDKs after the runs.
SAMPLE_KEYS = 1_000
#: Status our SDK gives a value older than its view's TTL (Feast serves it as present).
OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"
#: The script whose ``--child lookup-*`` entry looks the sample up.
MATERIALIZE = str(Path(__file__).resolve().with_name("materialize.py"))


# -- counting ------------------------------------------------------------------------------------


def source_rows(
    data_dir: Path, views: Sequence[ViewSpec], window: tuple[datetime, datetime]
) -> int:
    """Source rows with an event time in ``window`` (both bounds inclusive), over all views."""
    start, end = window
    total = 0
    for view in views:
        dataset = ds.dataset(data_dir / view.file, format="parquet")
        column, kind = ds.field("event_timestamp"), dataset.schema.field("event_timestamp").type
        in_window = (column >= pa.scalar(start, kind)) & (column <= pa.scalar(end, kind))
        total += dataset.count_rows(filter=in_window)
    return total


# -- reporting -----------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> str:
    """``best (median, worst) over n`` for repeated timings."""
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return (
        f"best {min(values):.2f}, median {statistics.median(values):.2f}, "
        f"worst {max(values):.2f} over {len(values)} runs"
    )


def print_materialization(runs: Sequence[EngineRun | ChildResult], rows: int) -> None:
    """Per engine: seconds, peak MB, rows/s, keys written; every run; ratios Feast / ours."""
    print(f"\nmaterialization, {rows:,} source rows in the window")
    print(f"  {'engine':<18} {'seconds':>9} {'peak MB':>9} {'rows/s':>12} {'keys':>10}")
    for run in runs:
        if isinstance(run, ChildResult):
            print(f"  {run.label:<18} {'FAILED':>9}  {run.error}")
            continue
        best = run.best()
        if not best.ok:
            print(f"  {run.label:<18} {'FAILED':>9}  {best.error}")
            continue
        seconds, peak = best.seconds or math.nan, best.peak_mb or math.nan
        keys = best.detail.get("keys_in_store")
        if keys is None:
            keys = best.detail.get("keys")
        keys_text = "n/a" if keys is None else f"{keys:,}"
        print(
            f"  {run.label:<18} {seconds:>9.2f} {peak:>9.0f} "
            f"{rows / seconds:>12,.0f} {keys_text:>10}"
        )
    for run in runs:
        if isinstance(run, ChildResult):
            continue
        timings = [r.seconds for r in run.runs if r.ok and r.seconds is not None]
        peaks = [r.peak_mb for r in run.runs if r.ok and r.peak_mb is not None]
        failures = [r.error for r in run.runs if not r.ok]
        if timings:
            detail = run.best().detail
            reported = (
                f"; its report: {detail['rows_read']:,} rows read, {detail['written']:,} keys written"
                if "written" in detail
                else ""
            )
            print(
                f"  {run.label}: seconds {spread(timings)}; peak MB "
                f"{min(peaks):.0f}-{max(peaks):.0f}; {detail.get('engine')}{reported}"
            )
        for error in failures:
            print(f"  {run.label}: a run failed: {error}")
    if len(runs) != 2:
        return
    ours, theirs = runs
    if isinstance(ours, EngineRun) and isinstance(theirs, EngineRun) and ours.ok and theirs.ok:
        a, b = ours.best(), theirs.best()
        print(
            f"  {theirs.label} / {ours.label}: "
            f"time x{(b.seconds or math.nan) / (a.seconds or math.nan):.1f}, "
            f"peak memory x{(b.peak_mb or math.nan) / (a.peak_mb or math.nan):.2f}"
        )


# -- verification --------------------------------------------------------------------------------


def sample_keys(entity_file: Path, out: Path, seed: int, count: int = SAMPLE_KEYS) -> Path:
    """``count`` (driver_id, customer_id) pairs drawn from the entity frame with ``seed``.

    The frame includes ids that have no feature rows, so the sample has a few misses too.
    """
    table = pq.read_table(entity_file, columns=["driver_id", "customer_id"])
    rng = np.random.default_rng(seed)
    picked = rng.choice(table.num_rows, size=min(count, table.num_rows), replace=False)
    pq.write_table(table.take(pa.array(np.sort(picked))), out)
    return out


def lookup_sample(
    runs: Sequence[EngineRun], work: Path, keys: Path, refs: Sequence[str], end: datetime
) -> dict[str, Path]:
    """Each engine's lookup of the sample, in a child with its own SDK; the output files."""
    outputs: dict[str, Path] = {}
    for run in runs:
        out = work / f"lookup-{run.engine}.parquet"
        result = run_child(
            f"{run.label} lookup",
            [MATERIALIZE, "--child", f"lookup-{run.engine}", "--repo", str(run.repo), "--keys", str(keys),
             "--refs", ",".join(refs), "--out", str(out), "--end", end.isoformat()],
            python=run.python,
        )  # fmt: skip
        if result.ok:
            outputs[run.engine] = out
        else:
            print(f"  {run.label} lookup failed: {result.error}")
    return outputs


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def compare_lookups(ours_path: Path, feast_path: Path, features: Sequence[str]) -> int:
    """Value-by-value comparison of the two lookups (null == null); returns the mismatches.

    Ours is evaluated at the window's end (the consistency contract's instant). A value older
    than its view's TTL at that instant is null for us, with status ``OUTSIDE_MAX_AGE``, where
    Feast serves it as present (Feast does not check the TTL online): such cells are counted
    apart. Our lookup at the current time is summarized too (statuses only).
    """
    ours = pq.read_table(ours_path)
    theirs = pq.read_table(feast_path)
    print(f"\nlookup of {ours.num_rows:,} sampled entity keys through each SDK (null == null)")
    keys_equal = all(
        ours[k].equals(theirs[k].cast(ours[k].type)) for k in ("driver_id", "customer_id")
    )
    print(f"  same entity keys in the same order: {keys_equal}")
    print(
        f"  {'feature':<22} {'mismatch':>8} {'aged':>5} {'other':>5}   "
        f"{'nulls ours':>10} {'Feast':>6}   {OUTSIDE_MAX_AGE} now (ours)"
    )
    unexplained = 0
    for feature in features:
        a, b = _floats(ours[feature]), _floats(theirs[feature])
        bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        aged = bad & (ours[f"status:{feature}"].to_numpy(zero_copy_only=False) == OUTSIDE_MAX_AGE)
        other = np.flatnonzero(bad & ~aged)
        unexplained += other.size
        now_aged = int(
            (ours[f"status_now:{feature}"].to_numpy(zero_copy_only=False) == OUTSIDE_MAX_AGE).sum()
        )
        print(
            f"  {feature:<22} {int(bad.sum()):>8} {int(aged.sum()):>5} {other.size:>5}   "
            f"{int(np.isnan(a).sum()):>10} {int(np.isnan(b).sum()):>6}   {now_aged}"
        )
        for i in other[:5]:
            print(
                f"      driver_id={ours['driver_id'][i]} customer_id={ours['customer_id'][i]}: "
                f"ours {a[i]!r} ({ours[f'status:{feature}'][i]}), Feast {b[i]!r}"
            )
    print(
        "  aged: ours null as OUTSIDE_MAX_AGE at the window's end, Feast serves the stale value; "
        f"other: any other difference. {unexplained} other mismatching values in all"
    )
    return unexplained
