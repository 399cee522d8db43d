"""The online codec: typed entity keys, the sortable row header, and lossless row round trips."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from online_contract import ALL_TYPES, ALL_VALUES

from featurestore.definitions import Field
from featurestore.errors import OnlineStoreError
from featurestore.online import CREATED_TS, EVENT_TS, FOUND
from featurestore.online.codec import HEADER_END, RowCodec, encode_keys
from featurestore.types import Array, PrimitiveType

INT64 = st.integers(-(2**63), 2**63 - 1)


def keys(**columns: Any) -> list[bytes | None]:
    table = pa.table(columns)
    return encode_keys(table, table.column_names).to_pylist()  # type: ignore[no-any-return]


# -- keys ------------------------------------------------------------------------------------


def test_key_bytes_are_tagged_and_self_delimiting() -> None:
    assert keys(a=[1]) == [b"\x01" + (1).to_bytes(8, "big")]
    assert keys(a=[-1]) == [b"\x01" + b"\xff" * 8]
    assert keys(a=["é"]) == [b"\x02\x00\x00\x00\x02" + "é".encode()]
    assert keys(a=[b"x"]) == [b"\x03\x00\x00\x00\x01x"]
    assert keys(a=[True]) == [b"\x04\x01"]


def test_keys_compare_as_typed_tuples() -> None:
    ints = keys(a=[1, 11], b=[11, 1])
    assert ints[0] != ints[1]
    strings = keys(a=["a", "ab"], b=["bc", "c"])
    assert strings[0] != strings[1]
    assert keys(a=[1]) != keys(a=["1"])
    assert keys(a=["x"]) != keys(a=[b"x"])


def test_integer_widths_and_float_zeros_share_keys() -> None:
    assert keys(a=pa.array([7], pa.int8())) == keys(a=pa.array([7], pa.uint32())) == keys(a=[7])
    assert keys(a=[0.0]) == keys(a=[-0.0]) == keys(a=pa.array([0.0], pa.float32()))


def test_alternative_arrow_layouts_encode_alike() -> None:
    plain = keys(a=["x", "yy", "zzz"], b=[1, 2, 3])
    chunked = pa.table({"a": pa.chunked_array([["x"], ["yy", "zzz"]]), "b": [1, 2, 3]})
    assert encode_keys(chunked, ["a", "b"]).to_pylist() == plain
    other = pa.table(
        {
            "a": pa.array(["x", "yy", "zzz"]).dictionary_encode(),
            "b": pa.array([0, 1, 2, 3], pa.int32()).slice(1),
        }
    )
    assert encode_keys(other, ["a", "b"]).to_pylist() == plain
    large = pa.table(
        {"a": pa.array(["w", "x", "yy", "zzz"], pa.large_string()).slice(1), "b": [1, 2, 3]}
    )
    assert encode_keys(large, ["a", "b"]).to_pylist() == plain
    view = pa.table({"a": pa.array(["x", "yy", "zzz"], pa.string_view()), "b": [1, 2, 3]})
    assert encode_keys(view, ["a", "b"]).to_pylist() == plain


def test_null_key_part_means_no_key() -> None:
    assert keys(a=[1, None, 3], b=["x", "y", None]) == [keys(a=[1], b=["x"])[0], None, None]


def test_key_errors_name_the_column() -> None:
    with pytest.raises(OnlineStoreError, match="'driver_id' is missing"):
        encode_keys(pa.table({"x": [1]}), ["driver_id"])
    with pytest.raises(OnlineStoreError, match="'tags' has type list"):
        encode_keys(pa.table({"tags": [[1]]}), ["tags"])


def test_no_join_keys_give_one_empty_key_per_row() -> None:
    assert encode_keys(pa.table({"x": [1, 2]}), []).to_pylist() == [b"", b""]


# -- the header ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(INT64, st.none() | INT64), min_size=2, max_size=2))
def test_header_bytes_sort_like_event_then_created(stamps: list[tuple[int, int | None]]) -> None:
    codec = RowCodec([Field(name="x", dtype=PrimitiveType("Int64", pa.int64()))])
    table = pa.table(
        {
            EVENT_TS: pa.array([e for e, _ in stamps], pa.int64()),
            CREATED_TS: pa.array([c for _, c in stamps], pa.int64()),
            "x": pa.array([None, None], pa.int64()),
        }
    )
    a, b = (v[1:HEADER_END] for v in codec.encode(table).values.to_pylist())
    lowest = -(2**63)
    (ea, ca), (eb, cb) = ((e, lowest if c is None else c) for e, c in stamps)
    assert (a < b) == ((ea, ca) < (eb, cb))
    assert (a == b) == ((ea, ca) == (eb, cb))


# -- rows ------------------------------------------------------------------------------------

FIELDS = [Field(name=n, dtype=t) for n, t in ALL_TYPES]


def _table(values: dict[str, list[Any]], n: int) -> pa.Table:
    columns = {EVENT_TS: pa.array(range(n), pa.int64()), CREATED_TS: pa.nulls(n, pa.int64())}
    for f in FIELDS:
        columns[f.name] = pa.array(values[f.name], f.dtype.to_arrow())
    return pa.table(columns)


def test_round_trip_of_a_sliced_chunked_batch() -> None:
    doubled = {k: v + v for k, v in ALL_VALUES.items()}
    table = pa.concat_tables([_table(doubled, 6).slice(0, 2), _table(doubled, 6).slice(2)]).slice(1)
    codec = RowCodec(FIELDS)
    stored = codec.encode(table).values.to_pylist()
    names = [f.name for f in FIELDS]
    out = codec.decode([None, *stored], names)
    out.validate(full=True)
    assert out.column(FOUND).to_pylist() == [False] + [True] * 5
    assert out.slice(1).select(names).equals(table.select(names).combine_chunks())


def _values(dtype: PrimitiveType | Array) -> st.SearchStrategy[Any]:
    scalars: dict[str, st.SearchStrategy[Any]] = {
        "Int32": st.integers(-(2**31), 2**31 - 1),
        "Int64": INT64,
        "Float32": st.floats(width=32, allow_nan=False),
        "Float64": st.floats(allow_nan=False),
        "Bool": st.booleans(),
        "String": st.text(max_size=5),
        "Bytes": st.binary(max_size=5),
        "UnixTimestamp": st.integers(-62_000_000_000_000_000, 253_000_000_000_000_000),
    }
    if isinstance(dtype, Array):
        return st.none() | st.lists(st.none() | scalars[dtype.element.name], max_size=4)
    return st.none() | scalars[dtype.name]


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(0, 6))
def test_random_rows_round_trip(data: st.DataObject, n: int) -> None:
    values = {f.name: data.draw(st.lists(_values(f.dtype), min_size=n, max_size=n)) for f in FIELDS}
    table = _table(values, n)
    codec = RowCodec(FIELDS)
    stored: list[bytes | None] = codec.encode(table).values.to_pylist()
    wanted = data.draw(st.permutations([f.name for f in FIELDS]))
    holes = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    out = codec.decode([None if h else v for v, h in zip(stored, holes, strict=True)], wanted)
    out.validate(full=True)
    assert out.column(FOUND).to_pylist() == [not h for h in holes]
    for name in wanted:
        expected = [
            None if h else v for v, h in zip(table.column(name).to_pylist(), holes, strict=True)
        ]
        assert out.column(name).to_pylist() == expected, name
    assert out.column(EVENT_TS).to_pylist() == [None if h else i for i, h in enumerate(holes)]


def test_encoding_casts_to_declared_types_or_says_why() -> None:
    codec = RowCodec([Field(name="x", dtype=Array(PrimitiveType("Int64", pa.int64())))])
    table = pa.table(
        {
            EVENT_TS: [1],
            CREATED_TS: pa.nulls(1, pa.int64()),
            "x": pa.array([[1, 2]], pa.large_list(pa.int32())),
        }
    )
    out = codec.decode(codec.encode(table).values.to_pylist(), ["x"])
    assert out.column("x").to_pylist() == [[1, 2]]
    bad = table.set_column(2, "x", pa.array(["a"]))
    with pytest.raises(OnlineStoreError, match="'x' of type string cannot be stored"):
        codec.encode(bad)


def test_null_event_time_is_rejected() -> None:
    codec = RowCodec(FIELDS[:1])
    table = pa.table({EVENT_TS: pa.array([None], pa.int64()), CREATED_TS: [1], "i32": [1]})
    with pytest.raises(OnlineStoreError, match="null event timestamps"):
        codec.encode(table)


def test_unknown_format_version_and_short_rows_are_errors() -> None:
    codec = RowCodec(FIELDS[:1])
    table = pa.table({EVENT_TS: [1], CREATED_TS: [1], "i32": pa.array([1], pa.int32())})
    (row,) = codec.encode(table).values.to_pylist()
    with pytest.raises(OnlineStoreError, match="unknown format version"):
        codec.decode([b"\x02" + row[1:]], ["i32"])
    with pytest.raises(OnlineStoreError, match="shorter"):
        codec.decode([row[:5]], ["i32"])


def test_fixed_width_decoding_is_vectorized() -> None:
    codec = RowCodec(FIELDS[:4])
    n = 20_000
    table = pa.table(
        {
            EVENT_TS: pa.array(np.arange(n)),
            CREATED_TS: pa.nulls(n, pa.int64()),
            "i32": pa.array(np.arange(n, dtype=np.int32)),
            "i64": pa.array(np.arange(n)),
            "f32": pa.array(np.ones(n, np.float32)),
            "f64": pc.cast(pa.array(np.arange(n)), pa.float64()),
        }
    )
    out = codec.decode(codec.encode(table).values.to_pylist(), ["f64", "i32"])
    assert out.column("i32").equals(table.column("i32"))
    assert out.column("f64").equals(table.column("f64"))
