"""Synthetic workload for the example repository and the benchmarks.

Writes three Parquet files into the output folder (default: ``repo/data``):

- ``driver_stats.parquet``: one row per driver per hour over ``days`` days, minus 10% of the rows
  dropped at random (gaps); columns ``driver_id`` (int64), ``event_timestamp`` and ``created``
  (timestamp[us, UTC], ``created = event_timestamp + uniform(0, 10 min)``), ``conv_rate`` and
  ``acc_rate`` (float32), ``avg_daily_trips`` (int64), ``trip_distance`` (float64).
- ``customer_profile.parquet``: one row per customer per day, also with 10% gaps; columns
  ``customer_id``, ``event_timestamp``, ``created``, ``current_balance`` and
  ``avg_passenger_count`` (float32), ``lifetime_trip_count`` (int64).
- ``trips.parquet``: one row per trip (an event), :data:`TRIPS_PER_DRIVER_DAY` per driver and day
  on average at uniform random instants; columns ``trip_id`` (int64, unique), ``driver_id``,
  ``rider_id`` (int64), ``event_timestamp`` and ``created`` (timestamp[us, UTC], ``created =
  event_timestamp + uniform(0, 10 min)``), ``fare`` and ``distance_km`` (float64, about 8% of the
  fares null: not billed yet). Chunks cover consecutive driver ranges, so the file is not sorted
  by time: the aggregations must not rely on it. Trips stop at the start of the period's last
  hour (by default the hour of generation): the file holds only trips of hours that are over, so
  no trip lies in the future, and materializing the aggregated view up to now reads every trip
  an offline retrieval at any later instant would (see :func:`trips_end_us`).
- ``entity_df.parquet``: ``driver_id``, ``customer_id``, ``event_timestamp``, in random order,
  timestamps uniform over the whole period. About 1% of the ids are unknown (one past the last
  id), and the gaps, the first hours of the period and the TTLs make other rows miss, so a
  retrieval returns some nulls.

Sizes (``--size``): the number of customers equals the number of drivers, so a point-in-time join
of both views does the same work per key on each side.

====  ========  ==========  ====  ==================  ================  ===========  ========
size  drivers   customers   days  driver rows         customer rows     entity rows  trips
====  ========  ==========  ====  ==================  ================  ===========  ========
XS    100       100         7     ~15k                ~630              1,000        ~11.7k
S     10,000    10,000      30    ~6.48M              ~270k             1,000,000    ~5M
L     100,000   100,000     30    ~64.8M              ~2.7M             1,000,000    ~50M
====  ========  ==========  ====  ==================  ================  ===========  ========

The period ends when the data is generated: its last hourly rows are those of the current hour
(UTC), so the example's online lookups find fresh values for the next hour or more (the driver
view's TTL is two hours); ``--end`` picks another end. The
benchmarks pass :data:`END`, a fixed instant, so a seed gives the same files on every machine and
on every day; for a given end, a seed always gives the same files. Rows are produced in chunks of about one million, each written as one Parquet row group
with :class:`pyarrow.parquet.ParquetWriter`, so memory stays bounded whatever the size. Chunks cover
consecutive time ranges by default (``--layout time-sorted``), so each feature file is sorted by
event time; with ``--layout key-sorted`` they cover consecutive key ranges instead, so each file is
sorted by key, then event time, as many lake tables are (same shape, gaps and delays, other random
values). The entity frame is the same in both layouts.

Usage::

    python repo/generate_data.py --size XS
    python repo/generate_data.py --size L --out /big/disk --seed 7 --entity-rows 200000
    python repo/generate_data.py --size L --layout key-sorted --out /big/disk
    python repo/generate_data.py --size XS --end 2026-10-01   # the benchmarks' fixed period
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: The benchmarks' end of the generated period (exclusive): fixed, so their workloads are the same
#: files on every machine and every day. The example data ends at generation time instead.
END = datetime(2026, 10, 1, tzinfo=timezone.utc)
#: Fraction of (key, period) slots left without a row.
GAP_FRACTION = 0.10
#: Largest delay between an event and its ``created`` timestamp.
MAX_CREATED_DELAY_US = 10 * 60 * 1_000_000
#: Fraction of entity rows whose ids match no feature row.
UNKNOWN_ID_FRACTION = 0.01
#: Target number of rows per chunk (and so per Parquet row group).
CHUNK_ROWS = 1_000_000

HOUR_US = 3_600 * 1_000_000
DAY_US = 24 * HOUR_US
TIMESTAMP = pa.timestamp("us", tz="UTC")

DRIVER_FILE = "driver_stats.parquet"
CUSTOMER_FILE = "customer_profile.parquet"
ENTITY_FILE = "entity_df.parquet"
TRIPS_FILE = "trips.parquet"
#: Mean trips per driver and day: 500 per driver over 30 days (50M trips for 100,000 drivers).
TRIPS_PER_DRIVER_DAY = 500 / 30
#: Fraction of trips whose fare is not known yet (null).
NULL_FARE_FRACTION = 0.08

DRIVER_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("conv_rate", pa.float32()),
        ("acc_rate", pa.float32()),
        ("avg_daily_trips", pa.int64()),
        ("trip_distance", pa.float64()),
    ]
)
CUSTOMER_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("current_balance", pa.float32()),
        ("avg_passenger_count", pa.float32()),
        ("lifetime_trip_count", pa.int64()),
    ]
)
TRIP_SCHEMA = pa.schema(
    [
        ("trip_id", pa.int64()),
        ("driver_id", pa.int64()),
        ("rider_id", pa.int64()),
        ("event_timestamp", TIMESTAMP),
        ("created", TIMESTAMP),
        ("fare", pa.float64()),
        ("distance_km", pa.float64()),
    ]
)
ENTITY_SCHEMA = pa.schema(
    [("driver_id", pa.int64()), ("customer_id", pa.int64()), ("event_timestamp", TIMESTAMP)]
)

#: How the feature files are ordered: by event time (the default) or by entity key, then time.
LAYOUTS = ("time-sorted", "key-sorted")

# Distinct stream ids per table, so the tables do not share random numbers.
_DRIVER_STREAM, _CUSTOMER_STREAM, _ENTITY_STREAM, _TRIP_STREAM = 1, 2, 3, 4


@dataclass(frozen=True)
class Workload:
    """How much data to generate. Ids run from 1 to ``drivers`` / ``customers``."""

    drivers: int
    customers: int
    days: int
    entity_rows: int
    layout: str = LAYOUTS[0]

    def start_us(self, end: datetime) -> int:
        """Start of the period ending at ``end`` (inclusive), in microseconds since the epoch."""
        return end_us(end) - self.days * DAY_US

    @property
    def expected_driver_rows(self) -> int:
        return round(self.drivers * self.days * 24 * (1 - GAP_FRACTION))

    @property
    def expected_customer_rows(self) -> int:
        return round(self.customers * self.days * (1 - GAP_FRACTION))


SIZES: dict[str, Workload] = {
    "XS": Workload(drivers=100, customers=100, days=7, entity_rows=1_000),
    "S": Workload(drivers=10_000, customers=10_000, days=30, entity_rows=1_000_000),
    "L": Workload(drivers=100_000, customers=100_000, days=30, entity_rows=1_000_000),
}


@dataclass(frozen=True)
class GenerationResult:
    """Paths written, their row counts and the end of the generated period (exclusive)."""

    out_dir: Path
    driver_rows: int
    customer_rows: int
    entity_rows: int
    end: datetime
    trip_rows: int = 0

    @property
    def driver_path(self) -> Path:
        return self.out_dir / DRIVER_FILE

    @property
    def customer_path(self) -> Path:
        return self.out_dir / CUSTOMER_FILE

    @property
    def entity_path(self) -> Path:
        return self.out_dir / ENTITY_FILE


def end_of_current_hour() -> datetime:
    """The end of the current hour, UTC: the example data's (exclusive) end when none is given,
    so the newest hourly rows are stamped with the current hour, never later than now."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return hour + timedelta(hours=1)


def end_us(end: datetime) -> int:
    """``end`` (aware, a whole second) in microseconds since the epoch."""
    return int(end.timestamp()) * 1_000_000


def _whole_hour(end: datetime) -> datetime:
    if end.tzinfo is None:
        raise ValueError(f"the end of the period must be timezone-aware, got {end!r}")
    if (end.minute, end.second, end.microsecond) != (0, 0, 0):
        raise ValueError(f"the end of the period must be a whole hour, got {end.isoformat()}")
    return end.astimezone(timezone.utc)


def workload_for(size: str, entity_rows: int | None = None, layout: str = LAYOUTS[0]) -> Workload:
    """The preset called ``size`` (XS, S, L), optionally with another entity frame length or
    file layout (one of :data:`LAYOUTS`)."""
    try:
        workload = SIZES[size.upper()]
    except KeyError:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}") from None
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if entity_rows is not None:
        workload = replace(workload, entity_rows=entity_rows)
    return replace(workload, layout=layout)


def _rng(seed: int, stream: int, chunk: int) -> np.random.Generator:
    # Seeding per (seed, table, chunk) keeps each chunk reproducible on its own.
    return np.random.default_rng([seed, stream, chunk])


def _timestamps(values_us: np.ndarray) -> pa.Array:
    return pa.array(values_us.astype("datetime64[us]"), type=pa.timestamp("us")).cast(TIMESTAMP)


def _slot_blocks(keys: int, periods: int, layout: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (period index, key) arrays for consecutive blocks of about :data:`CHUNK_ROWS` slots.

    ``time-sorted``: each block covers whole periods for every key, so the output is sorted by
    event time across blocks, and by key within one event time. ``key-sorted``: each block covers
    whole keys over every period, so the output is sorted by key, then event time.
    """
    if layout == "key-sorted":
        keys_per_chunk = max(1, CHUNK_ROWS // periods)
        for first in range(1, keys + 1, keys_per_chunk):
            count = min(keys_per_chunk, keys + 1 - first)
            key = np.repeat(np.arange(first, first + count, dtype=np.int64), periods)
            yield np.tile(np.arange(periods, dtype=np.int64), count), key
        return
    periods_per_chunk = max(1, CHUNK_ROWS // keys)
    for first in range(0, periods, periods_per_chunk):
        count = min(periods_per_chunk, periods - first)
        period = np.repeat(np.arange(first, first + count, dtype=np.int64), keys)
        yield period, np.tile(np.arange(1, keys + 1, dtype=np.int64), count)


def _keyed_time_chunks(
    keys: int,
    periods: int,
    period_us: int,
    start_us: int,
    seed: int,
    stream: int,
    layout: str = LAYOUTS[0],
) -> Iterator[tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (rng, key, event_us, created_us) for the blocks of :func:`_slot_blocks`, gaps
    removed."""
    for chunk, (period, key) in enumerate(_slot_blocks(keys, periods, layout)):
        rng = _rng(seed, stream, chunk)
        kept = rng.random(period.size) >= GAP_FRACTION
        period, key = period[kept], key[kept]
        event_us = start_us + period * period_us
        created_us = event_us + rng.integers(
            0, MAX_CREATED_DELAY_US, size=event_us.size, endpoint=True
        )
        yield rng, key, event_us, created_us


def _driver_batches(workload: Workload, start_us: int, seed: int) -> Iterator[pa.RecordBatch]:
    for rng, key, event_us, created_us in _keyed_time_chunks(
        workload.drivers,
        workload.days * 24,
        HOUR_US,
        start_us,
        seed,
        _DRIVER_STREAM,
        workload.layout,
    ):
        n = key.size
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(key),
                _timestamps(event_us),
                _timestamps(created_us),
                pa.array(rng.random(n, dtype=np.float32)),
                pa.array(rng.random(n, dtype=np.float32)),
                pa.array(rng.integers(0, 1_000, size=n, dtype=np.int64)),
                pa.array(rng.exponential(12.0, size=n)),
            ],
            schema=DRIVER_SCHEMA,
        )


def _customer_batches(workload: Workload, start_us: int, seed: int) -> Iterator[pa.RecordBatch]:
    for rng, key, event_us, created_us in _keyed_time_chunks(
        workload.customers,
        workload.days,
        DAY_US,
        start_us,
        seed,
        _CUSTOMER_STREAM,
        workload.layout,
    ):
        n = key.size
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(key),
                _timestamps(event_us),
                _timestamps(created_us),
                pa.array((rng.random(n, dtype=np.float32) * np.float32(500.0)).astype(np.float32)),
                pa.array(rng.random(n, dtype=np.float32) * np.float32(3.0) + np.float32(1.0)),
                pa.array(rng.integers(0, 5_000, size=n, dtype=np.int64)),
            ],
            schema=CUSTOMER_SCHEMA,
        )


def _entity_batches(workload: Workload, start_us: int, seed: int) -> Iterator[pa.RecordBatch]:
    span_us = workload.days * DAY_US
    for chunk, first in enumerate(range(0, workload.entity_rows, CHUNK_ROWS)):
        rng = _rng(seed, _ENTITY_STREAM, chunk)
        n = min(CHUNK_ROWS, workload.entity_rows - first)
        driver = rng.integers(1, workload.drivers, size=n, endpoint=True, dtype=np.int64)
        customer = rng.integers(1, workload.customers, size=n, endpoint=True, dtype=np.int64)
        # One id past the last is unknown to the feature data: those rows must come back null.
        driver[rng.random(n) < UNKNOWN_ID_FRACTION] = workload.drivers + 1
        customer[rng.random(n) < UNKNOWN_ID_FRACTION] = workload.customers + 1
        ts_us = start_us + rng.integers(0, span_us, size=n, dtype=np.int64)
        yield pa.RecordBatch.from_arrays(
            [pa.array(driver), pa.array(customer), _timestamps(ts_us)], schema=ENTITY_SCHEMA
        )


def trips_end_us(period_end: datetime) -> int:
    """Where the trips stop (exclusive): the start of the period's last hour. By default that
    hour is the current one, so every trip is of a whole hour that is over: the example's
    aggregated view, materialized up to now, then holds every trip that will ever be stamped
    before now (a trip in the current hour would appear offline after the materialization)."""
    return end_us(period_end) - HOUR_US


def trip_batches(
    drivers: int,
    days: int,
    start_us: int,
    seed: int,
    per_driver_day: float = TRIPS_PER_DRIVER_DAY,
    stop_us: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Trips of drivers 1..``drivers`` over ``days`` days from ``start_us`` (or up to
    ``stop_us``, exclusive), in chunks of about :data:`CHUNK_ROWS` trips (whole drivers each);
    trip ids are unique across chunks."""
    span_us = days * DAY_US if stop_us is None else stop_us - start_us
    per_driver = per_driver_day * span_us / DAY_US
    drivers_per_chunk = max(1, int(CHUNK_ROWS // max(per_driver, 1.0)))
    next_id = 1
    for chunk, first in enumerate(range(1, drivers + 1, drivers_per_chunk)):
        rng = _rng(seed, _TRIP_STREAM, chunk)
        ids = np.arange(first, min(first + drivers_per_chunk, drivers + 1), dtype=np.int64)
        driver = np.repeat(ids, rng.poisson(per_driver, size=ids.size))
        n = driver.size
        event_us = start_us + rng.integers(0, span_us, size=n, dtype=np.int64)
        created_us = event_us + rng.integers(0, MAX_CREATED_DELAY_US, size=n, endpoint=True)
        fare = np.round(2.5 + rng.gamma(2.0, 7.0, size=n), 2)
        fare_nulls = rng.random(n) < NULL_FARE_FRACTION
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(np.arange(next_id, next_id + n, dtype=np.int64)),
                pa.array(driver),
                pa.array(rng.integers(1, 50_000, size=n, endpoint=True, dtype=np.int64)),
                _timestamps(event_us),
                _timestamps(created_us),
                pa.array(fare, mask=fare_nulls),
                pa.array(np.round(rng.exponential(6.0, size=n), 2)),
            ],
            schema=TRIP_SCHEMA,
        )
        next_id += n


def _write(
    path: Path, schema: pa.Schema, batches: Iterator[pa.RecordBatch], log: Callable[[str], None]
) -> int:
    """Stream ``batches`` into ``path`` (one row group each) atomically; return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    rows = 0
    started = time.perf_counter()
    with pq.ParquetWriter(partial, schema, compression="snappy") as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=CHUNK_ROWS)
            rows += batch.num_rows
            log(f"  {path.name}: {rows:,} rows ({time.perf_counter() - started:.1f} s)")
    # Rename last, so an interrupted run never leaves a truncated file under the real name.
    partial.replace(path)
    return rows


def generate(
    out_dir: str | Path,
    workload: Workload,
    seed: int = 42,
    log: Callable[[str], None] | None = None,
    end: datetime | None = None,
) -> GenerationResult:
    """Write the driver, customer, entity and trip files for ``workload`` into ``out_dir``.

    The period ends at ``end`` (exclusive; a whole hour), by default the end of the current
    hour, so the newest rows are fresh; pass :data:`END` for the benchmarks' fixed period.
    """
    out = Path(out_dir)
    period_end = end_of_current_hour() if end is None else _whole_hour(end)
    start_us = workload.start_us(period_end)
    emit = log or (lambda _message: None)
    emit(
        f"generating {workload.drivers:,} drivers x {workload.days * 24} hours, "
        f"{workload.customers:,} customers x {workload.days} days, "
        f"{workload.entity_rows:,} entity rows (seed {seed}, {workload.layout}) ending "
        f"{period_end.isoformat()} into {out}"
    )
    drivers = _driver_batches(workload, start_us, seed)
    driver_rows = _write(out / DRIVER_FILE, DRIVER_SCHEMA, drivers, emit)
    customers = _customer_batches(workload, start_us, seed)
    customer_rows = _write(out / CUSTOMER_FILE, CUSTOMER_SCHEMA, customers, emit)
    entities = _entity_batches(workload, start_us, seed)
    entity_rows = _write(out / ENTITY_FILE, ENTITY_SCHEMA, entities, emit)
    trips = trip_batches(
        workload.drivers, workload.days, start_us, seed, stop_us=trips_end_us(period_end)
    )
    trip_rows = _write(out / TRIPS_FILE, TRIP_SCHEMA, trips, emit)
    return GenerationResult(out, driver_rows, customer_rows, entity_rows, period_end, trip_rows)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="XS", choices=sorted(SIZES), help="workload size")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "data", help="output folder"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--entity-rows", type=int, default=None, help="override the entity frame length"
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=LAYOUTS[0],
        help="order of the feature files: by event time (default) or by entity key, then time",
    )
    parser.add_argument(
        "--end",
        type=_end_argument,
        default=None,
        help="end of the period (exclusive), a whole hour in ISO-8601 (naive means UTC); "
        f"default: the end of the current hour. The benchmarks use {END.date().isoformat()}",
    )
    args = parser.parse_args(argv)
    workload = workload_for(args.size, args.entity_rows, args.layout)
    result = generate(
        args.out, workload, args.seed, log=lambda m: print(m, flush=True), end=args.end
    )
    print(
        f"wrote {result.driver_rows:,} driver rows, {result.customer_rows:,} customer rows, "
        f"{result.entity_rows:,} entity rows, {result.trip_rows:,} trips to {result.out_dir}; "
        "the data ends "
        f"{result.end.isoformat()}"
    )
    return 0


def _end_argument(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    try:
        return _whole_hour(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
