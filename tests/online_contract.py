"""The online store contract: one test class, subclassed per backend (Redis, SQLite).

A subclass overrides the ``store`` fixture with a fresh, empty store of its backend (default
``expiry_grace`` of one day). Event times are relative to now, so expiry needs no sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.errors import OnlineStoreError
from featurestore.online import (
    CREATED_TS,
    EVENT_TS,
    FOUND,
    Namespace,
    OnlineStore,
    SupportsRowDeletion,
)
from featurestore.online.codec import encode_keys, split_entity_key
from featurestore.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    ValueType,
)

HOUR_US = 3_600 * 1_000_000
DAY_US = 24 * HOUR_US
NOW_US = time.time_ns() // 1000

ALL_TYPES: list[tuple[str, ValueType]] = [
    ("i32", Int32),
    ("i64", Int64),
    ("f32", Float32),
    ("f64", Float64),
    ("flag", Bool),
    ("name", String),
    ("blob", Bytes),
    ("seen", UnixTimestamp),
    ("a_i32", Array(Int32)),
    ("a_i64", Array(Int64)),
    ("a_f32", Array(Float32)),
    ("a_f64", Array(Float64)),
    ("a_bool", Array(Bool)),
    ("a_str", Array(String)),
    ("a_bytes", Array(Bytes)),
    ("a_ts", Array(UnixTimestamp)),
]

# Three rows per feature: an ordinary value, a null, and an edge case.
ALL_VALUES: dict[str, list[Any]] = {
    "i32": [7, None, -(2**31)],
    "i64": [2**62, None, -1],
    "f32": [1.5, None, -0.25],
    "f64": [3.141592653589793, None, -1e300],
    "flag": [True, None, False],
    "name": ["héllo wörld ✓", None, ""],
    "blob": [b"\x00\xff{}", None, b""],
    "seen": [1_700_000_000_123_456, None, 0],
    "a_i32": [[1, None, 3], None, []],
    "a_i64": [[2**40], None, [None]],
    "a_f32": [[0.5, -2.0], None, []],
    "a_f64": [[1e-300, None], None, []],
    "a_bool": [[True, False, None], None, []],
    "a_str": [["a", None, "", "ünï"], None, []],
    "a_bytes": [[b"\x00", None], None, [b""]],
    "a_ts": [[1, None, 2**50], None, []],
}


def view(
    name: str = "stats",
    *,
    keys: Sequence[tuple[str, ValueType]] = (("driver_id", Int64),),
    features: Sequence[tuple[str, ValueType]] = (("rate", Float64), ("label", String)),
    ttl: timedelta | None = None,
) -> FeatureView:
    """A feature view over a source that is never read (stores only use the definition)."""
    entities = [Entity(name=f"e_{k}", join_keys=[k], value_type=t) for k, t in keys]
    return FeatureView(
        name=name,
        entities=entities,
        ttl=ttl,
        schema=[Field(name=n, dtype=t) for n, t in features],
        source=FileSource(path="data/unused.parquet", timestamp_field="ts"),
    )


def batch(
    v: FeatureView,
    keys: dict[str, pa.Array | list[Any]],
    event: list[int],
    created: list[int | None] | None = None,
    **features: list[Any],
) -> pa.RecordBatch:
    """A write batch for ``v``; features not given are null."""
    n = len(event)
    columns: dict[str, pa.Array] = {}
    for name, values in keys.items():
        declared = v.join_key_types[name]
        arrow = None if declared is None or isinstance(values, pa.Array) else declared.to_arrow()
        columns[name] = values if isinstance(values, pa.Array) else pa.array(values, arrow)
    columns[EVENT_TS] = pa.array(event, pa.int64())
    columns[CREATED_TS] = pa.array(created or [None] * n, pa.int64())
    for f in v.features:
        columns[f.name] = pa.array(features.get(f.name, [None] * n), f.dtype.to_arrow())
    return pa.RecordBatch.from_pydict(columns)


def keys_table(**columns: pa.Array | list[Any]) -> pa.Table:
    return pa.table(columns)


def rows(table: pa.Table, *columns: str) -> list[tuple[Any, ...]]:
    """The result as tuples of the named columns (default: found flag and every column after)."""
    names = list(columns) or table.column_names
    data = table.to_pydict()
    return list(zip(*(data[n] for n in names), strict=True))


class OnlineStoreContract:
    """Tests every online store must pass."""

    __test__ = False

    @pytest.fixture
    def store(self) -> OnlineStore:
        raise NotImplementedError("subclasses provide a fresh store")

    # -- values --------------------------------------------------------------------------------

    def test_round_trip_of_every_type_with_nulls(self, store: OnlineStore) -> None:
        v = view(features=ALL_TYPES)
        ns = Namespace("proj", v, 1)
        result = store.write_batch(
            ns, batch(v, {"driver_id": [1, 2, 3]}, [NOW_US] * 3, **ALL_VALUES)
        )
        assert (result.written, result.skipped_older) == (3, 0)
        names = [n for n, _ in ALL_TYPES]
        out = store.read(ns, keys_table(driver_id=[3, 1, 2]), names)
        assert out.column_names == [FOUND, EVENT_TS, *names]
        for name, dtype in ALL_TYPES:
            assert out.schema.field(name).type == dtype.to_arrow(), name
            expected = pa.array(ALL_VALUES[name], dtype.to_arrow()).take([2, 0, 1])
            assert out.column(name).combine_chunks().equals(expected), name
        assert out.column(FOUND).to_pylist() == [True, True, True]
        assert out.column(EVENT_TS).to_pylist() == [NOW_US] * 3

    def test_read_returns_requested_features_in_requested_order(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[0.5], label=["x"]))
        out = store.read(ns, keys_table(driver_id=[1]), ["label"])
        assert out.column_names == [FOUND, EVENT_TS, "label"]
        assert rows(store.read(ns, keys_table(driver_id=[1]), ["label", "rate"])) == [
            (True, NOW_US, "x", 0.5)
        ]

    def test_duplicate_and_missing_keys_in_a_read(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(
            ns, batch(v, {"driver_id": [1, 2]}, [NOW_US, NOW_US - 5], rate=[1.0, 2.0])
        )
        out = store.read(ns, keys_table(driver_id=[2, 99, 1, 2, 99]), ["rate"])
        assert rows(out) == [
            (True, NOW_US - 5, 2.0),
            (False, None, None),
            (True, NOW_US, 1.0),
            (True, NOW_US - 5, 2.0),
            (False, None, None),
        ]
        empty = store.read(ns, keys_table(driver_id=pa.array([], pa.int64())), ["rate"])
        assert empty.num_rows == 0
        assert empty.column_names == [FOUND, EVENT_TS, "rate"]

    def test_stored_null_is_found_with_a_null_value(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[None], label=["a"]))
        assert rows(store.read(ns, keys_table(driver_id=[1]), ["rate"])) == [(True, NOW_US, None)]

    # -- keys ----------------------------------------------------------------------------------

    def test_two_key_entities_compare_as_typed_tuples(self, store: OnlineStore) -> None:
        v = view(keys=[("a", Int64), ("b", Int64)])
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {"a": [1, 11], "b": [11, 1]}, [NOW_US] * 2, rate=[1.0, 2.0]))
        out = store.read(ns, keys_table(a=[11, 1, 1, 111], b=[1, 11, 1, 1]), ["rate"])
        assert rows(out, FOUND, "rate") == [(True, 2.0), (True, 1.0), (False, None), (False, None)]

    def test_string_keys_are_not_concatenated(self, store: OnlineStore) -> None:
        v = view(keys=[("a", String), ("b", String)])
        ns = Namespace("proj", v, 1)
        store.write_batch(
            ns, batch(v, {"a": ["x", "xy"], "b": ["yz", "z"]}, [NOW_US] * 2, rate=[1.0, 2.0])
        )
        out = store.read(
            ns, keys_table(a=["xy", "x", "", "xyz"], b=["z", "yz", "xyz", ""]), ["rate"]
        )
        assert rows(out, FOUND, "rate") == [(True, 2.0), (True, 1.0), (False, None), (False, None)]

    def test_int_and_string_keys_differ(self, store: OnlineStore) -> None:
        v = view(keys=[("id", String)])
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {"id": ["1"]}, [NOW_US], rate=[1.0]))
        assert store.read(ns, keys_table(id=[1]), ["rate"]).column(FOUND).to_pylist() == [False]
        assert store.read(ns, keys_table(id=["1"]), ["rate"]).column(FOUND).to_pylist() == [True]

    def test_integer_widths_share_a_key(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(
            ns, batch(v, {"driver_id": pa.array([5], pa.int32())}, [NOW_US], rate=[1.0])
        )
        out = store.read(ns, keys_table(driver_id=pa.array([5], pa.int64())), ["rate"])
        assert rows(out, FOUND, "rate") == [(True, 1.0)]

    def test_null_join_keys_are_never_stored_or_found(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        result = store.write_batch(
            ns, batch(v, {"driver_id": [None, 1]}, [NOW_US] * 2, rate=[9.0, 1.0])
        )
        assert result.written == 1
        out = store.read(ns, keys_table(driver_id=pa.array([None, 1], pa.int64())), ["rate"])
        assert rows(out, FOUND, "rate") == [(False, None), (True, 1.0)]

    def test_global_view_has_one_row(self, store: OnlineStore) -> None:
        v = FeatureView(
            name="totals",
            schema=[Field(name="count", dtype=Int64)],
            source=FileSource(path="data/unused.parquet", timestamp_field="ts"),
        )
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {}, [NOW_US], count=[42]))
        out = store.read(ns, pa.table({"x": [1, 2]}).select([]), ["count"])
        assert rows(out) == [(True, NOW_US, 42), (True, NOW_US, 42)]

    # -- the never-overwrite-newer rule --------------------------------------------------------

    def test_older_rows_are_skipped(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(
            ns, batch(v, {"driver_id": [1, 2]}, [NOW_US] * 2, [NOW_US] * 2, rate=[1.0, 2.0])
        )
        older = batch(
            v,
            {"driver_id": [1, 2]},
            [NOW_US - 1, NOW_US],
            [NOW_US + 9, NOW_US - 1],
            rate=[8.0, 9.0],
        )
        result = store.write_batch(ns, older)
        assert (result.written, result.skipped_older) == (0, 2)
        assert rows(store.read(ns, keys_table(driver_id=[1, 2]), ["rate"]), "rate") == [
            (1.0,),
            (2.0,),
        ]

    def test_equal_time_correction_with_later_created_lands(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        store.write_batch(
            ns, batch(v, {"driver_id": [1, 2]}, [NOW_US] * 2, [None, 100], rate=[1.0, 2.0])
        )
        fix = batch(v, {"driver_id": [1, 2]}, [NOW_US] * 2, [-(2**62), 101], rate=[1.5, 2.5])
        assert store.write_batch(ns, fix).written == 2  # any created beats a null one
        assert rows(store.read(ns, keys_table(driver_id=[1, 2]), ["rate"]), "rate") == [
            (1.5,),
            (2.5,),
        ]
        stale = batch(v, {"driver_id": [1, 2]}, [NOW_US] * 2, [None, 100], rate=[0.0, 0.0])
        assert store.write_batch(ns, stale).skipped_older == 2

    def test_identical_rewrite_is_idempotent(self, store: OnlineStore) -> None:
        v = view(features=ALL_TYPES)
        ns = Namespace("proj", v, 1)
        rows_in = batch(v, {"driver_id": [1, 2, 3]}, [NOW_US] * 3, [5, None, 7], **ALL_VALUES)
        store.write_batch(ns, rows_in)
        first = store.read(ns, keys_table(driver_id=[1, 2, 3]), [n for n, _ in ALL_TYPES])
        again = store.write_batch(ns, rows_in)
        assert again.written + again.skipped_older == 3
        assert store.read(ns, keys_table(driver_id=[1, 2, 3]), [n for n, _ in ALL_TYPES]).equals(
            first
        )

    def test_newest_wins_within_one_batch(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        ts = [NOW_US, NOW_US + 2, NOW_US + 1]
        store.write_batch(ns, batch(v, {"driver_id": [1, 1, 1]}, ts, rate=[1.0, 2.0, 3.0]))
        assert rows(store.read(ns, keys_table(driver_id=[1]), ["rate"]), "rate") == [(2.0,)]

    def test_concurrent_writers_keep_the_newest(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        ids = list(range(200))
        errors: list[BaseException] = []

        def write(offset: int) -> None:
            try:
                for step in range(5):
                    t = NOW_US + offset + 10 * step
                    store.write_batch(
                        ns, batch(v, {"driver_id": ids}, [t] * 200, rate=[float(t)] * 200)
                    )
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        newest = NOW_US + 3 + 40
        out = store.read(ns, keys_table(driver_id=ids), ["rate"])
        assert set(rows(out, EVENT_TS, "rate")) == {(newest, float(newest))}

    # -- namespaces and expiry -----------------------------------------------------------------

    def test_namespaces_are_isolated(self, store: OnlineStore) -> None:
        v = view()
        spaces = [Namespace("proj", v, 1), Namespace("proj", v, 2), Namespace("other", v, 1)]
        spaces.append(Namespace("proj", view("stats2"), 1))
        for i, ns in enumerate(spaces):
            store.write_batch(ns, batch(ns.view, {"driver_id": [1]}, [NOW_US - i], rate=[float(i)]))
        for i, ns in enumerate(spaces):
            assert rows(store.read(ns, keys_table(driver_id=[1]), ["rate"]), "rate") == [
                (float(i),)
            ]
        store.write_batch(spaces[1], batch(v, {"driver_id": [2]}, [NOW_US], rate=[5.0]))
        assert store.read(spaces[0], keys_table(driver_id=[2]), ["rate"]).column(
            FOUND
        ).to_pylist() == [False]

    def test_rows_expire_after_ttl_plus_grace(self, store: OnlineStore) -> None:
        v = view(ttl=timedelta(hours=2))
        ns = Namespace("proj", v, 1)
        event = [NOW_US, NOW_US - 2 * HOUR_US - DAY_US // 2, NOW_US - 2 * HOUR_US - 2 * DAY_US]
        store.write_batch(ns, batch(v, {"driver_id": [1, 2, 3]}, event, rate=[1.0, 2.0, 3.0]))
        out = store.read(ns, keys_table(driver_id=[1, 2, 3]), ["rate"])
        # Past its TTL but within the grace: still stored, so lookups can say OUTSIDE_MAX_AGE.
        assert rows(out, FOUND, "rate") == [(True, 1.0), (True, 2.0), (False, None)]

    def test_expired_row_does_not_block_an_older_write(self, store: OnlineStore) -> None:
        v = view(ttl=timedelta(hours=1))
        ns = Namespace("proj", v, 1)
        long_ago = NOW_US - 10 * DAY_US
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [long_ago], rate=[1.0]))
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [long_ago - 1], rate=[2.0]))
        assert store.read(ns, keys_table(driver_id=[1]), ["rate"]).column(FOUND).to_pylist() == [
            False
        ]

    def test_no_ttl_means_no_expiry(self, store: OnlineStore) -> None:
        v = view(ttl=None)
        ns = Namespace("proj", v, 1)
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US - 3650 * DAY_US], rate=[1.0]))
        assert rows(store.read(ns, keys_table(driver_id=[1]), ["rate"]), FOUND) == [(True,)]

    def test_delete_project_removes_only_that_project(self, store: OnlineStore) -> None:
        v = view()
        keep = Namespace("proj_b", v, 1)
        for ns in (Namespace("proj", v, 1), Namespace("proj", v, 2), keep):
            store.write_batch(ns, batch(v, {"driver_id": [1, 2, 3]}, [NOW_US] * 3))
        assert store.delete_project("proj") == 6
        assert store.delete_project("proj") == 0
        assert store.read(Namespace("proj", v, 1), keys_table(driver_id=[1]), ["rate"]).column(
            FOUND
        ).to_pylist() == [False]
        assert (
            store.read(keep, keys_table(driver_id=[1, 2, 3]), ["rate"]).column(FOUND).to_pylist()
            == [True] * 3
        )

    # -- row deletion: erasure and retention ---------------------------------------------------

    @staticmethod
    def _deletable(store: OnlineStore) -> SupportsRowDeletion:
        assert isinstance(store, SupportsRowDeletion)
        return store

    @staticmethod
    def _found(store: OnlineStore, ns: Namespace, ids: list[int]) -> list[bool]:
        found: list[bool] = (
            store.read(ns, keys_table(driver_id=ids), ["rate"]).column(FOUND).to_pylist()
        )
        return found

    def test_delete_entity_keys_removes_those_keys_only(self, store: OnlineStore) -> None:
        deletable = self._deletable(store)
        v = view()
        ns, other = Namespace("proj", v, 1), Namespace("proj", v, 2)
        for space in (ns, other):
            store.write_batch(space, batch(v, {"driver_id": [1, 2, 3]}, [NOW_US] * 3))
        keys = encode_keys(keys_table(driver_id=[2, 3, 4]), ["driver_id"]).to_pylist()
        assert deletable.delete_entity_keys(ns, keys, dry_run=True) == 2
        assert self._found(store, ns, [1, 2, 3]) == [True, True, True]
        assert deletable.delete_entity_keys(ns, keys + keys) == 2  # a key repeated counts once
        assert self._found(store, ns, [1, 2, 3]) == [True, False, False]
        assert self._found(store, other, [1, 2, 3]) == [True, True, True]
        assert deletable.delete_entity_keys(ns, keys) == 0
        assert deletable.delete_entity_keys(ns, []) == 0

    def test_scan_entity_keys_lists_the_namespace_in_batches(self, store: OnlineStore) -> None:
        deletable = self._deletable(store)
        v = view(keys=(("city", String), ("trip", Int64)))
        ns = Namespace("proj", v, 1)
        cities = [f"c{i % 7}" for i in range(2_300)]
        trips = list(range(2_300))
        store.write_batch(ns, batch(v, {"city": cities, "trip": trips}, [NOW_US] * 2_300))
        store.write_batch(Namespace("proj", v, 2), batch(v, {"city": ["x"], "trip": [1]}, [NOW_US]))
        batches = list(deletable.scan_entity_keys(ns, batch_size=1_000))
        assert len(batches) >= 3
        assert all(0 < len(b) <= 1_000 for b in batches)
        scanned = [key for b in batches for key in b]
        expected = encode_keys(keys_table(city=cities, trip=trips), ["city", "trip"]).to_pylist()
        assert sorted(scanned) == sorted(expected)
        city = encode_keys(keys_table(city=["c3"]), ["city"])[0].as_py()
        assert sum(split_entity_key(key)[0] == city for key in scanned) == cities.count("c3")
        assert list(deletable.scan_entity_keys(Namespace("proj", v, 9))) == []
        # A global view's one key is empty.
        g = view("global_stats", keys=())
        store.write_batch(Namespace("proj", g, 1), batch(g, {}, [NOW_US]))
        assert list(deletable.scan_entity_keys(Namespace("proj", g, 1))) == [[b""]]

    def test_delete_older_than_is_strict_and_per_namespace(self, store: OnlineStore) -> None:
        deletable = self._deletable(store)
        v = view()
        first, second, untouched = (Namespace("proj", v, n) for n in (1, 2, 3))
        cutoff = NOW_US - DAY_US
        events = [cutoff - 1, cutoff, cutoff + 1, -5]  # -5: before 1970, still older
        for space in (first, second, untouched):
            store.write_batch(space, batch(v, {"driver_id": [1, 2, 3, 4]}, events))
        cutoffs = {first: cutoff, second: -10}
        assert deletable.delete_older_than(cutoffs, dry_run=True) == {first: 2, second: 0}
        assert self._found(store, first, [1, 2, 3, 4]) == [True] * 4
        assert deletable.delete_older_than(cutoffs) == {first: 2, second: 0}
        # The row exactly at the cut-off stays.
        assert self._found(store, first, [1, 2, 3, 4]) == [False, True, True, False]
        assert self._found(store, second, [1, 2, 3, 4]) == [True] * 4
        assert self._found(store, untouched, [1, 2, 3, 4]) == [True] * 4
        assert deletable.delete_older_than({}) == {}

    # -- volume and errors ---------------------------------------------------------------------

    def test_large_batch_round_trips(self, store: OnlineStore) -> None:
        v = view(features=[("rate", Float32), ("tags", Array(String))])
        ns = Namespace("proj", v, 3)
        n = 5_000
        ids = list(range(n))
        tags = [[str(i)] * (i % 3) for i in ids]
        rate = [None if i % 7 == 0 else i / 2 for i in ids]
        result = store.write_batch(
            ns, batch(v, {"driver_id": ids}, [NOW_US] * n, rate=rate, tags=tags)
        )
        assert result.written == n
        out = store.read(ns, keys_table(driver_id=ids[::-1]), ["tags", "rate"])
        assert out.column("tags").to_pylist() == tags[::-1]
        assert out.column("rate").to_pylist() == rate[::-1]

    def test_missing_feature_column_is_an_online_store_error(self, store: OnlineStore) -> None:
        v = view()
        ns = Namespace("proj", v, 1)
        good = batch(v, {"driver_id": [1]}, [NOW_US])
        with pytest.raises(OnlineStoreError, match="label"):
            store.write_batch(ns, good.drop_columns(["label"]))
        with pytest.raises(OnlineStoreError, match="driver_id"):
            store.write_batch(ns, good.drop_columns(["driver_id"]))

    def test_ping(self, store: OnlineStore) -> None:
        store.ping()
