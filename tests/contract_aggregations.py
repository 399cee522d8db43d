"""Contract part: windowed aggregations against the brute-force oracle, on seeded random data.

Each seed writes an event source in two files (late events in the second: file order is not time
order) with ties on event time and created time, null values, null created times, replayed events
(same event id, created later, sometimes in the other file) and keys that collide as strings,
then retrieves every function over windows from a second to lifetime for entity rows at event
times, exactly one window after them, and in between. Every exact function must equal the
oracle (floating sums within 1e-9 relative); the approx functions stay within the bounds of
:mod:`featurestore.aggregations.functions`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aggregation_oracle import deduplicated, matches, window_rows
from contract_engine import EngineContractBase

from featurestore.aggregations import APPROX_COUNT_DISTINCT_RELATIVE_ERROR as DISTINCT_ERROR
from featurestore.aggregations import APPROX_PERCENTILE_RANK_ERROR as RANK_ERROR
from featurestore.config import RepoConfig
from featurestore.definitions import Aggregation, Entity, FeatureView, Field, FileSource
from featurestore.errors import EngineCapabilityError, RetrievalError
from featurestore.offline.base import (
    FeatureRequest,
    LatestWindow,
    SupportsAggregations,
    require_aggregations,
)
from featurestore.types import Float64, Int64, String

BASE = datetime(2024, 3, 1, tzinfo=UTC)
GRID = timedelta(seconds=30)
SPAN = 3 * 2880  # three days of 30 s steps
WINDOWS = [
    timedelta(seconds=1),
    timedelta(seconds=90),
    timedelta(hours=1),
    timedelta(hours=36),
    timedelta(days=2, hours=1),
    None,
]
PAIRS = [(1, 11), (11, 1), (100, 11), (1001, 1)]
CITIES = ["Paris", "paris", "Nice "]
#: What the precision test computes over each window: the functions that add or average.
PRECISION_FUNCTIONS = [
    ("fare", "sum"),
    ("fare", "mean"),
    ("fare", "var"),
    ("fare", "stddev"),
    ("fare", "min"),
    ("fare", "last"),
    ("n", "sum"),
    ("n", "var"),
]
STAMP = pa.timestamp("us", tz="UTC")


def _functions(window: timedelta | None) -> list[Aggregation]:
    return [
        Aggregation("fare", "count", window),
        Aggregation("fare", "sum", window),
        Aggregation("n", "sum", window),
        Aggregation("fare", "mean", window),
        Aggregation("n", "mean", window),
        Aggregation("fare", "min", window),
        Aggregation("rider", "max", window),
        Aggregation("fare", "stddev", window),
        Aggregation("n", "var", window),
        Aggregation("rider", "first", window),
        Aggregation("fare", "last", window),
        Aggregation("rider", "count_distinct", window),
        Aggregation("rider", "approx_count_distinct", window),
        Aggregation("fare", "approx_percentile", window, percentile=0.5),
        Aggregation("rider", "last_k", window, k=3),
    ]


COLUMNS = [
    Field(name="fare", dtype=Float64),
    Field(name="n", dtype=Int64),
    Field(name="rider", dtype=String),
    Field(name="trip_id", dtype=Int64),
]


def pair_view(created: bool = True, windows: list[timedelta | None] = WINDOWS) -> FeatureView:
    """Two integer keys whose concatenations collide, an event id, every function."""
    return FeatureView(
        name="pairs",
        entities=[
            Entity(name="a", join_keys=["a"], value_type=Int64),
            Entity(name="b", join_keys=["b"], value_type=Int64),
        ],
        source=FileSource(
            path="pairs/",
            timestamp_field="ts",
            created_timestamp_column="created" if created else None,
        ),
        schema=COLUMNS,
        aggregations=[agg for w in windows for agg in _functions(w)],
        event_id="trip_id",
    )


def city_view() -> FeatureView:
    """A string key, no created column, no event id, a few functions."""
    return FeatureView(
        name="cities",
        entities=[Entity(name="city", join_keys=["city"], value_type=String)],
        source=FileSource(path="cities.parquet", timestamp_field="ts"),
        schema=COLUMNS[:3],
        aggregations=[
            Aggregation("fare", "sum", timedelta(minutes=30)),
            Aggregation("n", "count", timedelta(hours=25)),
            Aggregation("rider", "last", None),
            Aggregation("fare", "var", timedelta(hours=25)),
        ],
    )


def global_view() -> FeatureView:
    """No entity: every event counts for every entity row."""
    return FeatureView(
        name="everything",
        source=FileSource(path="cities.parquet", timestamp_field="ts"),
        schema=COLUMNS[:3],
        aggregations=[
            Aggregation("fare", "mean", timedelta(hours=2)),
            Aggregation("n", "max", timedelta(minutes=30)),
            Aggregation("rider", "count_distinct", None),
        ],
    )


def _fare(rng: random.Random) -> float | None:
    if rng.random() < 0.12:
        return None
    kind = rng.randrange(3)
    # Quarters tie, decimals round, and a large offset with a small spread tests the variance.
    return [rng.randrange(-40, 40) / 4, rng.random() * 100, 1e6 + rng.random()][kind]


def _events(rng: random.Random, count: int, keys: Any) -> list[dict[str, Any]]:
    rows = []
    for trip in range(count):
        ts = BASE + rng.randrange(SPAN) * GRID if rng.random() > 0.03 else None
        created = None if ts is None or rng.random() < 0.2 else ts + rng.randrange(3) * GRID
        rows.append(
            {
                **keys(rng),
                "ts": ts,
                "created": created,
                "fare": _fare(rng),
                "n": None if rng.random() < 0.1 else rng.randrange(-5, 1000),
                "rider": None if rng.random() < 0.1 else f"r{rng.randrange(12)}",
                "trip_id": trip if rng.random() > 0.05 else None,
            }
        )
    # Replays of some events: the same id, created later (the original counts).
    for row in rng.sample(rows, count // 10):
        if row["trip_id"] is not None and row["created"] is not None:
            rows.append({**row, "created": row["created"] + GRID})
    return rows


def _write(path: Path, rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({c: pa.array([r[c] for r in rows], t) for c, t in columns.items()})
    pq.write_table(table, path, row_group_size=64)


PAIR_COLUMNS = {
    "a": pa.int64(),
    "b": pa.int32(),
    "ts": STAMP,
    "created": STAMP,
    "fare": pa.float64(),
    "n": pa.int64(),
    "rider": pa.string(),
    "trip_id": pa.int64(),
}


def write_pairs(repo: Path, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """The pair view's events in two files; returns them in file order with their position."""
    rows = _events(rng, count, lambda r: dict(zip("ab", r.choice(PAIRS), strict=True)))
    split = len(rows) * 2 // 3
    first, second = rows[:split], rows[split:]
    rng.shuffle(second)  # late and replayed events arrive in the second file, out of order
    for name, part in (("part-0.parquet", first), ("part-1.parquet", second)):
        _write(repo / "pairs" / name, part, PAIR_COLUMNS)
    return [
        {**row, "__file": f, "__pos": pos}
        for f, part in enumerate((first, second))
        for pos, row in enumerate(part)
    ]


def write_cities(repo: Path, rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = _events(rng, count, lambda r: {"city": r.choice(CITIES)})
    columns = {k: v for k, v in PAIR_COLUMNS.items() if k not in ("a", "b", "created", "trip_id")}
    _write(repo / "cities.parquet", rows, {"city": pa.string(), **columns})
    return [{**row, "__file": 0, "__pos": pos, "created": None} for pos, row in enumerate(rows)]


def entity_instants(rng: random.Random, events: list[dict[str, Any]], count: int) -> list[datetime]:
    """Instants at events, exactly a window after events, just inside, and anywhere."""
    times = [e["ts"] for e in events if e["ts"] is not None]
    instants = []
    for _ in range(count):
        base = rng.choice(times)
        window = rng.choice([w for w in WINDOWS if w is not None])
        instants.append(
            rng.choice(
                [
                    base,
                    base + window,
                    base + window - timedelta(microseconds=1),
                    BASE + timedelta(microseconds=rng.randrange(SPAN * 30 * 10**6)),
                ]
            )
        )
    return instants


class AggregationsContract(EngineContractBase):
    """Aggregated views in ``get_historical_features``, against the oracle."""

    __test__ = False

    def _check_aggregates(
        self,
        frame: dict[str, list[Any]],
        view: FeatureView,
        rows: list[dict[str, Any]],
        entity_rows: list[dict[str, Any]],
        *,
        not_before: datetime | None = None,
        by_created: bool = False,
    ) -> int:
        """Compare every value with the oracle; returns how many non-empty windows were seen."""
        events = deduplicated(rows, view.join_keys, view.event_id)
        wrong, non_empty = [], 0
        for index, entity in enumerate(entity_rows):
            keys = {k: entity[k] for k in view.join_keys}
            t = entity["event_timestamp"].astimezone(UTC)
            for agg in view.aggregations:
                chosen = window_rows(
                    events, keys, t, agg.window, not_before=not_before, by_created=by_created
                )
                non_empty += bool(chosen)
                got = frame[agg.name][index]
                if not matches(
                    agg, got, chosen, rank_error=RANK_ERROR, distinct_error=DISTINCT_ERROR
                ):
                    wrong.append((index, keys, t, agg.name, got))
        assert not wrong, f"{len(wrong)} values differ from the oracle, e.g. {wrong[:5]}"
        return non_empty

    def _aggregate(
        self,
        repo: Path,
        view: FeatureView,
        entity_rows: list[dict[str, Any]],
        *,
        not_before: datetime | None = None,
        by_created: bool = False,
    ) -> dict[str, list[Any]]:
        engine = self.open_engine(RepoConfig(project="t", repo_path=repo, registry="sqlite://"))
        try:
            self.capable(engine, SupportsAggregations)  # skipped on an engine without it
            cutoff = (
                None
                if not_before is None
                else (not_before - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            )
            names = tuple(view.feature_names)
            request = FeatureRequest(view, names, names, not_before_us=cutoff)
            require_aggregations(engine, [request])
            job = engine.get_historical_features(
                pd.DataFrame(entity_rows), [request], filter_by_created_timestamp=by_created
            )
            table = job.to_arrow()
            return {name: table[name].to_pylist() for name in table.column_names}
        finally:
            engine.close()

    def _aggregation_entities(
        self, rng: random.Random, rows: list[dict[str, Any]], zone: ZoneInfo | None
    ) -> list[dict[str, Any]]:
        entities = []
        for t in entity_instants(rng, rows, 60):
            a, b = rng.choice([*PAIRS, (5, 5)])  # (5, 5) has no events
            local = t.astimezone(zone) if zone else t
            entities.append({"a": a, "b": b, "event_timestamp": local})
        return entities

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_every_function_and_window_matches_the_oracle(self, tmp_path: Path, seed: int) -> None:
        rng = random.Random(seed)
        rows = write_pairs(tmp_path, rng, 300)
        zone = [None, ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")][seed % 3]
        entities = self._aggregation_entities(rng, rows, zone)
        view = pair_view()
        frame = self._aggregate(tmp_path, view, entities)
        assert list(frame["a"]) == [e["a"] for e in entities]  # input order kept
        assert (
            self._check_aggregates(frame, view, rows, entities)
            > len(entities) * len(view.aggregations) // 4
        )

    @pytest.mark.parametrize("seed", [4, 5])
    def test_retention_cutoff_and_created_filter_match_the_oracle(
        self, tmp_path: Path, seed: int
    ) -> None:
        rng = random.Random(seed)
        rows = write_pairs(tmp_path, rng, 200)
        entities = self._aggregation_entities(rng, rows, None)
        view = pair_view(windows=[timedelta(hours=1), timedelta(hours=36), None])
        cutoff = BASE + timedelta(hours=30, seconds=15)
        by_created = seed % 2 == 0
        frame = self._aggregate(tmp_path, view, entities, not_before=cutoff, by_created=by_created)
        self._check_aggregates(
            frame, view, rows, entities, not_before=cutoff, by_created=by_created
        )

    def test_string_keys_and_global_views_match_the_oracle(self, tmp_path: Path) -> None:
        rng = random.Random(7)
        rows = write_cities(tmp_path, rng, 200)
        entities = [
            {"city": rng.choice([*CITIES, "Lyon"]), "event_timestamp": t}
            for t in entity_instants(rng, rows, 40)
        ]
        for view in (city_view(), global_view()):
            frame = self._aggregate(tmp_path, view, entities)
            self._check_aggregates(frame, view, rows, entities)

    def test_small_values_beside_huge_ones_keep_their_precision(self, tmp_path: Path) -> None:
        """Spans of tiny fares between spans of huge ones (about 1e15, either sign): a window of
        tiny fares must come out within 1e-9 of them even though the key's earlier events are
        huge (a difference of running sums would lose the tiny ones entirely)."""
        rng = random.Random(13)
        six_hours = timedelta(hours=6)
        data = []
        for _ in range(400):
            ts = BASE + rng.randrange(SPAN) * GRID
            huge = (ts - BASE) // six_hours % 2 == 0
            scale = rng.choice([-1e15, 1e15]) if huge else 1e-3
            data.append(
                {
                    "city": rng.choice(CITIES[:2]),
                    "ts": ts,
                    "fare": scale * (1 + rng.random()),
                    "n": rng.randrange(-5, 5) + (10**15 if huge else 0),
                }
            )
        columns = {"city": pa.string(), "ts": STAMP, "fare": pa.float64(), "n": pa.int64()}
        _write(tmp_path / "cities.parquet", data, columns)
        rows = [{**r, "__file": 0, "__pos": i, "created": None} for i, r in enumerate(data)]
        windows = [timedelta(hours=1), timedelta(hours=5), timedelta(hours=30), None]
        view = FeatureView(
            name="cities",
            entities=[Entity(name="city", join_keys=["city"], value_type=String)],
            source=FileSource(path="cities.parquet", timestamp_field="ts"),
            schema=COLUMNS[:2],
            aggregations=[
                Aggregation(column, function, window)
                for window in windows
                for column, function in PRECISION_FUNCTIONS
            ],
        )
        # Mostly inside the tiny spans, where a window of 1h or 5h holds only tiny fares.
        entities = []
        for _ in range(80):
            span = rng.randrange(SPAN * GRID // six_hours) | 1
            offset = timedelta(microseconds=rng.randrange(six_hours // timedelta(microseconds=1)))
            t = BASE + span * six_hours + offset
            entities.append({"city": rng.choice(CITIES[:2]), "event_timestamp": t})
        frame = self._aggregate(tmp_path, view, entities)
        tiny = [
            frame["fare_sum_1h"][i]
            for i in range(len(entities))
            if frame["fare_sum_1h"][i] is not None and abs(frame["fare_sum_1h"][i]) < 1
        ]
        assert len(tiny) > 10  # the case this test is about does occur
        self._check_aggregates(frame, view, rows, entities)

    def test_approx_functions_stay_within_their_documented_bounds(self, tmp_path: Path) -> None:
        rng = random.Random(11)
        count = 20_000
        ts = [BASE + timedelta(seconds=rng.randrange(86_400)) for _ in range(count)]
        riders = [f"r{rng.randrange(8_000)}" for _ in range(count)]
        fares = [rng.lognormvariate(3, 1) for _ in range(count)]
        columns = {
            "city": pa.string(),
            "ts": STAMP,
            "fare": pa.float64(),
            "n": pa.int64(),
            "rider": pa.string(),
        }
        data = [
            {"city": "Paris", "ts": t, "fare": f, "n": 1, "rider": r}
            for t, f, r in zip(ts, fares, riders, strict=True)
        ]
        _write(tmp_path / "cities.parquet", data, columns)
        rows = [{**r, "__file": 0, "__pos": i, "created": None} for i, r in enumerate(data)]
        view = FeatureView(
            name="cities",
            entities=[Entity(name="city", join_keys=["city"], value_type=String)],
            source=FileSource(path="cities.parquet", timestamp_field="ts"),
            schema=COLUMNS[:3],
            aggregations=[
                Aggregation("rider", "approx_count_distinct", timedelta(hours=12)),
                Aggregation("rider", "approx_count_distinct", None),
                Aggregation("fare", "approx_percentile", timedelta(hours=12), percentile=0.95),
                Aggregation("fare", "approx_percentile", None, percentile=0.5),
                Aggregation("n", "count", None),
            ],
        )
        entities = [
            {"city": "Paris", "event_timestamp": BASE + timedelta(hours=h)} for h in (6, 13, 24)
        ]
        frame = self._aggregate(tmp_path, view, entities)
        self._check_aggregates(frame, view, rows, entities)

    def test_latest_rows_of_an_aggregated_view_are_refused(self, tmp_path: Path) -> None:
        engine = self.open_engine(RepoConfig(project="t", repo_path=tmp_path, registry="sqlite://"))
        try:
            with pytest.raises(RetrievalError, match=r"feature view 'cities' is aggregated"):
                engine.latest_per_entity(city_view(), LatestWindow(None, 0), batch_rows=10)
        finally:
            engine.close()

    def test_an_engine_without_the_capability_refuses_aggregated_views(self) -> None:
        class Plain:
            engine_type = "plain"

        request = FeatureRequest(city_view(), ("fare_sum_30m",), ("fare_sum_30m",))
        with pytest.raises(EngineCapabilityError, match="cannot aggregate feature view 'cities'"):
            require_aggregations(Plain(), [request])  # type: ignore[arg-type]
