"""The write-batch helpers push shares with the materializer, against a brute force."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.online.base import CREATED_TS, EVENT_TS
from featurestore.online.batches import epoch_micros, latest_per_key

ROWS = st.lists(
    st.tuples(
        st.sampled_from(["1", "11", "111", "a"]),  # string keys that collide when concatenated
        st.integers(0, 11),
        st.integers(0, 3),  # event time
        st.none() | st.integers(0, 2),  # created time; null is the oldest
    ),
    max_size=30,
)


def brute_force(rows: list[tuple[str, int, int, int | None]]) -> dict[tuple[str, int], int]:
    """Index of the winning row per (a, b) key: latest event, then created, then the last row."""
    best: dict[tuple[str, int], tuple[tuple[int, float, int], int]] = {}
    for i, (a, b, event, created) in enumerate(rows):
        rank = (event, float("-inf") if created is None else created, i)
        if (a, b) not in best or rank > best[(a, b)][0]:
            best[(a, b)] = (rank, i)
    return {key: index for key, (_, index) in best.items()}


@settings(max_examples=300, deadline=None)
@given(rows=ROWS)
def test_latest_per_key_matches_a_brute_force(rows: list[Any]) -> None:
    table = pa.table(
        {
            "a": pa.array([r[0] for r in rows], pa.string()),
            "b": pa.array([r[1] for r in rows], pa.int64()),
            EVENT_TS: pa.array([r[2] for r in rows], pa.int64()),
            CREATED_TS: pa.array([r[3] for r in rows], pa.int64()),
            "row": pa.array(range(len(rows)), pa.int64()),
        }
    )
    latest = latest_per_key(table, ["a", "b"]).to_pylist()
    got = {(r["a"], r["b"]): r["row"] for r in latest}
    assert len(got) == len(latest)  # one row per key
    assert got == brute_force(rows)


@settings(max_examples=100, deadline=None)
@given(rows=ROWS)
def test_a_global_view_keeps_its_one_latest_row(rows: list[Any]) -> None:
    table = pa.table(
        {
            EVENT_TS: pa.array([r[2] for r in rows], pa.int64()),
            CREATED_TS: pa.array([r[3] for r in rows], pa.int64()),
            "row": pa.array(range(len(rows)), pa.int64()),
        }
    )
    latest = latest_per_key(table, []).column("row").to_pylist()
    expected = brute_force([("", 0, r[2], r[3]) for r in rows])
    assert latest == list(expected.values())


def test_epoch_micros_takes_any_unit_and_zone() -> None:
    naive = pa.array([0, 1_500], pa.timestamp("ns"))
    assert epoch_micros(naive).to_pylist() == [0, 1]
    aware = pa.array([2_000], pa.timestamp("ms", tz="Europe/Paris"))
    assert epoch_micros(aware).to_pylist() == [2_000_000]
    dates = pa.array([1], pa.date32())
    assert epoch_micros(dates).to_pylist() == [86_400_000_000]
