"""Contract part: an engine against the brute-force oracle, on seeded random data.

Each seed builds four views (a one-key view with a field mapping, a two-key view with colliding
keys, a string-keyed view read from two files, a global view) with random TTLs, duplicate event
times, null created timestamps, null features, null event times and rows exactly at the TTL edge,
then retrieves all four in one request for an entity frame with duplicate, unmatched and null-key
rows whose timestamps are naive or in several time zones.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from contract_engine import EngineContractBase
from pit_oracle import OracleRequest, expected_frame, to_utc

from featurestore.config import RepoConfig
from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.offline.base import FeatureRequest
from featurestore.types import Float32, Float64, Int64, String

BASE = datetime(2024, 3, 1, tzinfo=timezone.utc)
STEP = timedelta(minutes=30)
ZONES: list[ZoneInfo | None] = [
    None,
    ZoneInfo("UTC"),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
]
TTLS = [None, timedelta(0), STEP, 3 * STEP, timedelta(hours=2, seconds=1)]
# Pairs whose naive string concatenation collides: (1, 11) / (11, 1) and (100, 11) / (1001, 1).
PAIRS = [(1, 11), (11, 1), (100, 11), (1001, 1), (1, 1)]
CITIES = ["Paris", "paris", "Lyon", "Nice "]
# Source timestamp encodings: naive, aware UTC, aware elsewhere, other units.
TS_TYPES = [
    pa.timestamp("us"),
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("ns", tz="Europe/Berlin"),
    pa.timestamp("ms"),
]


def _time(rng: random.Random) -> datetime:
    return BASE + rng.randrange(0, 24) * STEP


def _maybe(rng: random.Random, value: Any, null_rate: float = 0.15) -> Any:
    return None if rng.random() < null_rate else value


def _quarter(rng: random.Random) -> float:
    # Multiples of 0.25 are exact in float32, so Float32 results compare exactly.
    return rng.randrange(-40, 40) / 4


def _write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {f.name: [r[f.name] for r in rows] for f in schema}
    ts_fields = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    for name in ts_fields:
        tz = schema.field(name).type.tz
        # Naive source timestamps hold UTC wall time; aware ones are stored as instants.
        columns[name] = [
            None
            if v is None
            else (v.astimezone(timezone.utc).replace(tzinfo=None) if tz is None else v)
            for v in columns[name]
        ]
    pq.write_table(pa.table(columns, schema=schema), path)


def _source_rows(
    rng: random.Random, count: int, keys: Any, created: bool, late: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        event = _time(rng) if rng.random() > 0.05 else None
        row: dict[str, Any] = {
            "ts": event,
            "f_float": _maybe(rng, rng.random()),
            "f_int": _maybe(rng, rng.randrange(1000)),
        }
        row["f_quarter"] = _maybe(rng, _quarter(rng))
        if created:
            # Few created values, so equal (event, created) pairs happen too. `late` rows may be
            # created hours after their event: corrections that arrive after later events.
            delay = 3 * STEP if late else timedelta(minutes=5)
            row["created"] = (
                None
                if event is None or rng.random() < 0.25
                else event + rng.randrange(4 if late else 3) * delay
            )
        row.update(keys(rng))
        rows.append(row)
    return rows


def _schema(ts_type: pa.DataType, keys: list[tuple[str, pa.DataType]], created: bool) -> pa.Schema:
    fields = [
        *keys,
        ("ts", ts_type),
        ("f_float", pa.float64()),
        ("f_int", pa.int64()),
        ("f_quarter", pa.float32()),
    ]
    if created:
        fields.append(("created", ts_type))
    return pa.schema(fields)


FEATURES = [
    Field(name="f_float", dtype=Float64),
    Field(name="f_int", dtype=Int64),
    Field(name="f_quarter", dtype=Float32),
]


def _scenario(
    seed: int, repo: Path, late: bool = False
) -> tuple[list[dict[str, Any]], list[OracleRequest]]:
    rng = random.Random(seed)
    ts_type = rng.choice(TS_TYPES)
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
    pair = Entity(name="pair", join_keys=["a", "b"], value_type=Int64)
    city = Entity(name="city", join_keys=["city"], value_type=String)

    driver_rows = _source_rows(
        rng, 60, lambda r: {"driver": _maybe(r, r.randrange(4), 0.05)}, created=True, late=late
    )
    _write(repo / "driver.parquet", driver_rows, _schema(ts_type, [("driver", pa.int64())], True))
    driver_view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=rng.choice(TTLS),
        schema=[Field(name="driver_id", dtype=Int64), *FEATURES],
        source=FileSource(
            path="driver.parquet",
            timestamp_field="ts",
            created_timestamp_column="created",
            field_mapping={"driver": "driver_id"},
        ),
    )

    pair_rows = _source_rows(
        rng, 60, lambda r: dict(zip("ab", r.choice(PAIRS), strict=True)), created=True, late=late
    )
    _write(
        repo / "pair.parquet",
        pair_rows,
        _schema(ts_type, [("a", pa.int32()), ("b", pa.int64())], True),
    )
    pair_view = FeatureView(
        name="pair_stats",
        entities=[pair],
        ttl=rng.choice(TTLS),
        schema=FEATURES,
        source=FileSource(
            path="pair.parquet", timestamp_field="ts", created_timestamp_column="created"
        ),
    )

    # No created column and two files: equal event times fall back to file order.
    city_rows = _source_rows(rng, 50, lambda r: {"city": r.choice(CITIES)}, created=False)
    schema = _schema(ts_type, [("city", pa.string())], False)
    _write(repo / "city" / "part-0.parquet", city_rows[:25], schema)
    _write(repo / "city" / "part-1.parquet", city_rows[25:], schema)
    city_view = FeatureView(
        name="city_stats",
        entities=[city],
        ttl=rng.choice(TTLS),
        schema=FEATURES,
        source=FileSource(path="city", timestamp_field="ts"),
    )

    global_rows = _source_rows(rng, 12, lambda r: {}, created=True, late=late)
    _write(repo / "global.parquet", global_rows, _schema(ts_type, [], True))
    global_view = FeatureView(
        name="global_stats",
        ttl=rng.choice(TTLS),
        schema=FEATURES,
        source=FileSource(
            path="global.parquet", timestamp_field="ts", created_timestamp_column="created"
        ),
    )

    entity_rows: list[dict[str, Any]] = []
    edge_times = [r["ts"] for r in driver_rows if r["ts"] is not None]
    for _ in range(80):
        if entity_rows and rng.random() < 0.1:
            entity_rows.append(dict(rng.choice(entity_rows)))  # a duplicate row
            continue
        ttl = driver_view.ttl or STEP
        instant = rng.choice(
            [
                _time(rng) + rng.randrange(-2, 3) * timedelta(minutes=7),
                rng.choice(edge_times) + ttl,  # exactly at the TTL edge
                rng.choice(edge_times) + ttl + timedelta(microseconds=1),  # just past it
                rng.choice(edge_times),  # exactly at an event time
            ]
        )
        a, b = rng.choice([*PAIRS, (2, 2)])
        zone = rng.choice(ZONES)
        entity_rows.append(
            {
                "driver_id": _maybe(rng, rng.randrange(5), 0.05),
                "a": a,
                "b": b,
                "city": rng.choice([*CITIES, "Oslo"]),
                "event_timestamp": instant.replace(tzinfo=None)
                if zone is None
                else instant.astimezone(zone),
                "label": rng.randrange(2),
            }
        )

    requests = [
        OracleRequest(driver_view, driver_rows, {f.name: f"d_{f.name}" for f in FEATURES}),
        OracleRequest(pair_view, pair_rows, {f.name: f"p_{f.name}" for f in FEATURES}),
        OracleRequest(city_view, city_rows, {f.name: f"c_{f.name}" for f in FEATURES}),
        OracleRequest(global_view, global_rows, {f.name: f"g_{f.name}" for f in FEATURES}),
    ]
    return entity_rows, requests


def _entity_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["driver_id"] = frame["driver_id"].astype("Int64")
    # Mixed naive and aware values stay an object column; the engine settles them in UTC.
    frame["event_timestamp"] = pd.Series([r["event_timestamp"] for r in rows], dtype=object)
    return frame


def _normalize(row: dict[str, Any]) -> dict[str, Any]:
    return {k: to_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


class PitOracleContract(EngineContractBase):
    """The engine against the brute-force oracle (plain, filtered by created time, retention)."""

    @pytest.mark.parametrize("seed", range(40))
    def test_engine_matches_oracle(self, tmp_path: Path, seed: int) -> None:
        entity_rows, oracle_requests = _scenario(seed, tmp_path)
        engine = self.open_engine(
            RepoConfig(project="oracle", repo_path=tmp_path, registry="sqlite://")
        )
        requests = [
            FeatureRequest(r.view, tuple(r.outputs), tuple(r.outputs.values()))
            for r in oracle_requests
        ]
        result = (
            engine.get_historical_features(_entity_frame(entity_rows), requests)
            .to_arrow()
            .to_pylist()
        )
        expected = expected_frame(entity_rows, "event_timestamp", oracle_requests)
        assert [_normalize(r) for r in result] == [_normalize(r) for r in expected]
        engine.close()

    @pytest.mark.parametrize("seed", range(30))
    def test_engine_matches_oracle_filtering_by_created_timestamp(
        self, tmp_path: Path, seed: int
    ) -> None:
        """``filter_by_created_timestamp=True`` on the same scenarios; odd seeds create rows up to
        4.5 hours after their event, so late corrections would leak past later events."""
        entity_rows, oracle_requests = _scenario(seed, tmp_path, late=seed % 2 == 1)
        engine = self.open_engine(
            RepoConfig(project="oracle", repo_path=tmp_path, registry="sqlite://")
        )
        requests = [
            FeatureRequest(r.view, tuple(r.outputs), tuple(r.outputs.values()))
            for r in oracle_requests
        ]
        job = engine.get_historical_features(
            _entity_frame(entity_rows), requests, filter_by_created_timestamp=True
        )
        expected = expected_frame(
            entity_rows, "event_timestamp", oracle_requests, filter_by_created_timestamp=True
        )
        assert [_normalize(r) for r in job.to_arrow().to_pylist()] == [
            _normalize(r) for r in expected
        ]
        engine.close()

    def test_filter_scenarios_exercise_the_filter(self, tmp_path: Path) -> None:
        """The scenarios above are not vacuous: on each of the first seeds, the filter changes the
        oracle's answer for some entity rows, for views with and without TTL."""
        changed_ttl = changed_no_ttl = 0
        for seed in range(30):
            entity_rows, oracle_requests = _scenario(seed, tmp_path / str(seed), late=seed % 2 == 1)
            for request in oracle_requests:
                plain = expected_frame(entity_rows, "event_timestamp", [request])
                filtered = expected_frame(
                    entity_rows, "event_timestamp", [request], filter_by_created_timestamp=True
                )
                differing = sum(a != b for a, b in zip(plain, filtered, strict=True))
                if request.view.ttl is None:
                    changed_no_ttl += differing
                else:
                    changed_ttl += differing
        assert changed_ttl > 100
        assert changed_no_ttl > 100

    @pytest.mark.parametrize("seed", range(20))
    def test_engine_matches_oracle_with_retention_cutoffs(self, tmp_path: Path, seed: int) -> None:
        """The same scenarios with a retention cut-off per view: none, before all data, at an
        event time (the bound is inclusive), a microsecond after one, or after all data."""
        entity_rows, oracle_requests = _scenario(seed, tmp_path)
        rng = random.Random(10_000 + seed)
        times = sorted({to_utc(r["ts"]) for q in oracle_requests for r in q.source_rows if r["ts"]})
        cut = [
            None,
            BASE - timedelta(days=1),
            rng.choice(times),
            rng.choice(times) + timedelta(microseconds=1),
            BASE + timedelta(days=2),
        ]
        with_cutoffs = [
            OracleRequest(q.view, q.source_rows, q.outputs, rng.choice(cut))
            for q in oracle_requests
        ]
        engine = self.open_engine(
            RepoConfig(project="oracle", repo_path=tmp_path, registry="sqlite://")
        )
        requests = [
            FeatureRequest(
                r.view,
                tuple(r.outputs),
                tuple(r.outputs.values()),
                not_before_us=None if r.not_before is None else _epoch_us(r.not_before),
            )
            for r in with_cutoffs
        ]
        result = (
            engine.get_historical_features(_entity_frame(entity_rows), requests)
            .to_arrow()
            .to_pylist()
        )
        expected = expected_frame(entity_rows, "event_timestamp", with_cutoffs)
        assert [_normalize(r) for r in result] == [_normalize(r) for r in expected]
        engine.close()
