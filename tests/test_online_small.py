"""The scalar codec of small lookups produces exactly what the vectorized codec produces."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from online_contract import ALL_TYPES, ALL_VALUES

from featurestore.definitions import Field
from featurestore.online import CREATED_TS, EVENT_TS
from featurestore.online.codec import RowCodec, encode_keys
from featurestore.online.small import ScalarRowDecoder, key_encoder
from featurestore.types import Array, Bool, Bytes, Int32, Int64, String, ValueType

KEY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "Int32": st.integers(-(2**31), 2**31 - 1),
    "Int64": st.integers(-(2**63), 2**63 - 1),
    "String": st.text(),
    "Bytes": st.binary(),
    "Bool": st.booleans(),
}
KEY_TYPES: dict[str, ValueType] = {
    "Int32": Int32,
    "Int64": Int64,
    "String": String,
    "Bytes": Bytes,
    "Bool": Bool,
}


@st.composite
def key_rows(draw: st.DrawFn) -> tuple[list[ValueType], list[list[Any]]]:
    names = draw(st.lists(st.sampled_from(sorted(KEY_TYPES)), min_size=1, max_size=3))
    rows = draw(
        st.lists(st.tuples(*[KEY_VALUES[n] for n in names]).map(list), min_size=1, max_size=8)
    )
    return [KEY_TYPES[n] for n in names], rows


@settings(max_examples=200, deadline=None)
@given(key_rows())
def test_scalar_keys_equal_vectorized_keys(case: tuple[list[ValueType], list[list[Any]]]) -> None:
    types, rows = case
    names = [f"k{i}" for i in range(len(types))]
    table = pa.table(
        {
            name: pa.array([row[i] for row in rows], dtype.to_arrow())
            for i, (name, dtype) in enumerate(zip(names, types, strict=True))
        }
    )
    encode = key_encoder(types)
    assert encode is not None
    assert [encode(row) for row in rows] == encode_keys(table, names).to_pylist()


def test_scalar_keys_reject_what_does_not_fit() -> None:
    encode = key_encoder([Int32])
    assert encode is not None
    for bad in (2**31, True, 1.0, "1"):
        with pytest.raises((TypeError, OverflowError)):
            encode([bad])
    string_key = key_encoder([String])
    assert string_key is not None
    with pytest.raises(TypeError):
        string_key([1])


def test_untyped_and_float_keys_take_the_vectorized_path() -> None:
    assert key_encoder([None]) is None
    assert key_encoder([Int64, None]) is None


SCALARS = [(name, dtype) for name, dtype in ALL_TYPES if not isinstance(dtype, Array)]


@pytest.mark.parametrize("wanted", [[n for n, _ in SCALARS], ["name", "i64"], ["seen"], []])
def test_scalar_rows_equal_vectorized_rows(wanted: list[str]) -> None:
    fields = [Field(name=name, dtype=dtype) for name, dtype in ALL_TYPES]
    codec = RowCodec(fields)
    columns: dict[str, pa.Array] = {
        EVENT_TS: pa.array([10, -5, 2**50], pa.int64()),
        CREATED_TS: pa.array([11, None, 3], pa.int64()),
    }
    for name, dtype in ALL_TYPES:
        columns[name] = pa.array(ALL_VALUES[name], dtype.to_arrow())
    packed = codec.encode(pa.RecordBatch.from_pydict(columns)).values.to_pylist()
    expected = codec.decode(packed, wanted)
    decoder = ScalarRowDecoder(codec, wanted)
    for i, row in enumerate(packed):
        event, values = decoder.decode(row)
        assert event == expected.column(EVENT_TS)[i].as_py()
        assert values == [expected.column(name)[i].as_py() for name in wanted]


def test_array_features_are_left_to_the_vectorized_path() -> None:
    codec = RowCodec([Field(name=name, dtype=dtype) for name, dtype in ALL_TYPES])
    with pytest.raises(ValueError, match="vectorized"):
        ScalarRowDecoder(codec, ["a_i64"])
    assert ScalarRowDecoder(codec, ["i64", "name"]).decode  # arrays elsewhere in the row are fine
