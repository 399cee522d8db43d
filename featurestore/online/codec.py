"""Entity-key and row encoding shared by every online store, vectorized over Arrow batches.

**Entity keys** are the join-key values of one row, each as a type tag and a self-delimiting
payload, concatenated in the view's join-key order, so keys compare as typed tuples: ``(1, 11)``
and ``(11, 1)`` differ, and so do ``1`` and ``"1"``. Integers of every width share one tag (an
Int32 key column finds rows written from an Int64 one)::

    0x01 int        8 bytes, big-endian two's complement
    0x02 string     4-byte big-endian length, UTF-8 bytes
    0x03 bytes      4-byte big-endian length, bytes
    0x04 bool       1 byte
    0x05 float      8 bytes, big-endian IEEE 754 double (-0.0 stored as 0.0)
    0x06 timestamp  8 bytes, big-endian epoch microseconds

A row with a null join key has no entity key (null in :func:`encode_keys`' result): it is never
stored and never found, as in the offline join.

**Rows** (format version 1) pack one view's values::

    offset 0   version          1 byte (= 1)
    offset 1   event_ts         8 bytes, big-endian, sign bit flipped
    offset 9   created_ts       8 bytes, big-endian, sign bit flipped (null: all zero, the oldest)
    offset 17  null bitmap      ceil(features / 8) bytes, bit i (LSB first) set = feature i null
    then       fixed-width features, in declaration order, little-endian:
               Int32 4, Int64 8, Float32 4, Float64 8, Bool 1, UnixTimestamp 8 (epoch us)
    then       variable-width features, in declaration order, each a 4-byte little-endian length
               and its payload:
               String / Bytes     the bytes
               Array(fixed T)     one validity byte per element, then the elements' values
               Array(String|Bytes) element count (u32), one validity byte per element,
                                   element lengths (u32 each), the elements' bytes

The header is fixed-width, big-endian and sign-flipped so that comparing bytes 1..16 as unsigned
bytes orders rows by (event_ts, created_ts): Redis' Lua script compares rows without numbers
(Lua's are doubles) or locale-dependent string comparison.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.field import Field
from featurestore.errors import OnlineStoreError
from featurestore.online.base import CREATED_TS, EVENT_TS, FOUND, Namespace
from featurestore.types import Array, PrimitiveType

FORMAT_VERSION = 1
HEADER_END = 17  # version byte + two 8-byte timestamps
NULL_CREATED = np.iinfo(np.int64).min  # a null created timestamp sorts before any other
_FLIP = np.uint64(1 << 63)
_FIXED = {"Int32": "<i4", "Int64": "<i8", "Float32": "<f4", "Float64": "<f8"}
_FIXED |= {"Bool": "u1", "UnixTimestamp": "<i8"}
_EMPTY = np.zeros(0, np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


# -- building blocks -------------------------------------------------------------------------


def _binary(data: bytes | U8, offsets: npt.NDArray[np.integer]) -> pa.Array:
    """A binary array over ``data`` whose element i spans ``offsets[i]:offsets[i + 1]``."""
    buffer = pa.py_buffer(data if isinstance(data, bytes) else np.ascontiguousarray(data))
    starts = pa.py_buffer(np.ascontiguousarray(offsets, dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1, [None, starts, buffer])


def _records(records: npt.NDArray[np.void]) -> pa.Array:
    """A binary array with one element per record of a packed numpy structured array."""
    width = records.dtype.itemsize
    return _binary(records.tobytes(), np.arange(0, (len(records) + 1) * width, width))


def _offsets(array: pa.Array) -> npt.NDArray[np.int32]:
    """The ``len + 1`` offsets of a binary or list array, honouring its slice offset."""
    raw = np.frombuffer(array.buffers()[1], np.int32)
    return raw[array.offset : array.offset + len(array) + 1]


def _numpy(array: pa.Array, fill: object = 0) -> npt.NDArray[np.generic]:
    """Values as numpy, nulls replaced by ``fill``; timestamps as epoch microseconds."""
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.int64())
    if array.null_count:
        array = pc.fill_null(array, pa.scalar(fill, array.type))
    values: npt.NDArray[np.generic] = array.to_numpy(zero_copy_only=False)
    return values


def _bitmap(valid: npt.NDArray[np.bool_]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def gather(buf: U8, starts: I64, lengths: I64) -> U8:
    """Concatenate ``buf[starts[i]:starts[i] + lengths[i]]`` for every i, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return _EMPTY
    before = np.cumsum(lengths) - lengths
    return buf[np.repeat(starts - before, lengths) + np.arange(total)]


def _u32(buf: U8, starts: I64) -> I64:
    """The little-endian uint32 at each of ``starts``."""
    words = buf[starts[:, None] + np.arange(4)].view("<u4").reshape(len(starts))
    result: I64 = words.astype(np.int64)
    return result


def binary_parts(keys: pa.Array) -> tuple[U8, I64]:
    """The data bytes and zero-based ``len + 1`` offsets of a binary array."""
    offsets = _offsets(keys).astype(np.int64)
    raw = np.frombuffer(keys.buffers()[2], np.uint8) if keys.buffers()[2] else _EMPTY
    return raw[offsets[0] : offsets[-1]], offsets - offsets[0]


def hex_digits(data: U8) -> U8:
    """Lower-case hex digits of ``data`` (two bytes per byte)."""
    digits = np.empty(len(data) * 2, np.uint8)
    digits[0::2], digits[1::2] = _HEX[data >> 4], _HEX[data & 15]
    return digits


# -- entity keys -----------------------------------------------------------------------------


def encode_keys(table: pa.Table | pa.RecordBatch, join_keys: Sequence[str]) -> pa.Array:
    """The typed entity key of every row, as a binary array; null where a join key is null.

    A global view (no join keys) has one entity, whose key is empty.
    """
    if not join_keys:
        return _binary(b"", np.zeros(table.num_rows + 1, np.int32))
    parts: list[pa.Array] = []
    for name in join_keys:
        if name not in table.column_names:
            raise OnlineStoreError(
                f"join key column {name!r} is missing; the columns are {table.column_names}"
            )
        parts.extend(_key_parts(name, _column(table, name)))
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, b"")


def _column(table: pa.Table | pa.RecordBatch, name: str) -> pa.Array:
    column = table.column(name)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string_view(array.type):
        return array.cast(pa.large_string())
    return array.cast(pa.large_binary()) if pa.types.is_binary_view(array.type) else array


#: Payload width of each fixed-width key tag; tags 2 (string) and 3 (bytes) are length-prefixed.
_FIXED_KEY_WIDTHS = {1: 8, 4: 1, 5: 8, 6: 8}


def split_entity_key(key: bytes) -> list[bytes]:
    """The encoded parts of an entity key, one per join key (tag and payload each), so a key can
    be matched on some of its join keys: ``encode_keys`` of one join key gives one part."""
    parts: list[bytes] = []
    position = 0
    while position < len(key):
        tag = key[position]
        if tag in _FIXED_KEY_WIDTHS:
            end = position + 1 + _FIXED_KEY_WIDTHS[tag]
        elif tag in (2, 3):
            end = position + 5 + int.from_bytes(key[position + 1 : position + 5], "big")
        else:
            raise OnlineStoreError(f"entity key {key.hex()} has an unknown type tag {tag}")
        if end > len(key):
            raise OnlineStoreError(f"entity key {key.hex()} is truncated")
        parts.append(key[position:end])
        position = end
    return parts


def _key_parts(name: str, array: pa.Array) -> list[pa.Array]:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _length_prefixed(2, array)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _length_prefixed(3, array)
    if pa.types.is_integer(kind):
        tag, code, values = 1, ">i8", _numpy(array)
    elif pa.types.is_timestamp(kind):
        tag, code, values = 6, ">i8", _numpy(array)
    elif pa.types.is_boolean(kind):
        tag, code, values = 4, "u1", _numpy(array, False)
    elif pa.types.is_floating(kind):
        tag, code, values = 5, ">f8", _numpy(array).astype(np.float64) + 0.0
    else:
        raise OnlineStoreError(f"join key {name!r} has type {kind}, which cannot be a key")
    records = np.empty(len(array), np.dtype([("tag", "u1"), ("value", code)]))
    records["tag"], records["value"] = tag, values
    encoded = _records(records)
    if array.null_count:
        encoded = pc.if_else(array.is_valid(), encoded, pa.scalar(None, pa.binary()))
    return [encoded]


def _length_prefixed(tag: int, array: pa.Array) -> list[pa.Array]:
    data = array.cast(pa.large_binary()).cast(pa.binary())
    records = np.empty(len(array), np.dtype([("tag", "u1"), ("length", ">u4")]))
    records["tag"], records["length"] = tag, _numpy(pc.binary_length(data))
    return [_records(records), data]


# -- rows ------------------------------------------------------------------------------------


def header_timestamp(epoch_us: int) -> bytes:
    """``epoch_us`` as a row header stores it (bytes 1..8 of a packed row, big-endian with the
    sign bit flipped), so comparing these bytes unsigned orders rows by event time."""
    return ((epoch_us + (1 << 63)) % (1 << 64)).to_bytes(8, "big")


@dataclass(frozen=True)
class EncodedRows:
    """A batch encoded for storage: one packed row per input row, and its timestamps."""

    values: pa.Array  # binary
    event_ts: I64
    created_ts: I64  # NULL_CREATED where the created timestamp was null


class RowCodec:
    """Packs and unpacks one view's feature rows (see the module docstring for the layout)."""

    def __init__(self, features: Sequence[Field]) -> None:
        self.features = list(features)
        self.index = {f.name: i for i, f in enumerate(self.features)}
        self.fixed = [i for i, f in enumerate(self.features) if f.dtype.name in _FIXED]
        self.variable = [i for i in range(len(self.features)) if i not in self.fixed]
        self.bitmap_bytes = (len(self.features) + 7) // 8
        fields: list[tuple[Any, ...]] = [("version", "u1"), ("event", ">u8"), ("created", ">u8")]
        fields.append(("nulls", "u1", (self.bitmap_bytes,)))
        fields += [(f"f{i}", _FIXED[self.features[i].dtype.name]) for i in self.fixed]
        self.record = np.dtype(fields)

    def encode(self, batch: pa.RecordBatch | pa.Table) -> EncodedRows:
        """Pack every row of ``batch`` (timestamp and feature columns, see ``base``)."""
        n = batch.num_rows
        event = _column(batch, EVENT_TS).cast(pa.int64())
        if event.null_count:
            raise OnlineStoreError(f"column {EVENT_TS} has null event timestamps")
        created = _column(batch, CREATED_TS).cast(pa.int64())
        event_ts = _numpy(event).astype(np.int64)
        created_ts = _numpy(created, NULL_CREATED).astype(np.int64)
        columns = [self._feature(batch, f) for f in self.features]
        records = np.zeros(n, self.record)
        records["version"] = FORMAT_VERSION
        records["event"] = event_ts.view(np.uint64) ^ _FLIP
        records["created"] = created_ts.view(np.uint64) ^ _FLIP
        nulls = np.zeros((n, len(columns)), np.bool_)
        for i, column in enumerate(columns):
            if column.null_count:
                nulls[:, i] = _numpy(column.is_null())
        records["nulls"] = np.packbits(nulls, axis=1, bitorder="little")
        for i in self.fixed:
            records[f"f{i}"] = _numpy(columns[i], self._zero(i))
        parts = [_records(records)]
        for i in self.variable:
            parts += _variable_parts(self.features[i].dtype, columns[i])
        values = pc.binary_join_element_wise(*parts, b"")
        return EncodedRows(values, event_ts, created_ts)

    def _feature(self, batch: pa.RecordBatch | pa.Table, field: Field) -> pa.Array:
        if field.name not in batch.column_names:
            raise OnlineStoreError(f"feature column {field.name!r} is missing from the batch")
        column = _column(batch, field.name)
        target = field.dtype.to_arrow()
        if column.type == target:
            return column
        try:
            return column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise OnlineStoreError(
                f"feature column {field.name!r} of type {column.type} cannot be stored as "
                f"{field.dtype.name}: {exc}"
            ) from None

    def _zero(self, i: int) -> object:
        return False if self.features[i].dtype.name == "Bool" else 0

    def decode(self, values: Sequence[bytes | None], features: Sequence[str]) -> pa.Table:
        """Unpack stored rows (None: not found) into ``FOUND``, ``EVENT_TS`` and ``features``."""
        wanted = [self.index[name] for name in features]
        present = [v for v in values if v is not None]
        found = np.fromiter((v is not None for v in values), np.bool_, len(values))
        lengths = np.fromiter(map(len, present), np.int64, len(present))
        joined = b"".join(present)
        buf = np.frombuffer(joined, np.uint8)
        starts = np.cumsum(lengths) - lengths
        size = self.record.itemsize
        if (lengths < size).any():
            raise OnlineStoreError("a stored row is shorter than its view's row header")
        if not self.variable and len(joined) == size * len(present):
            records = np.frombuffer(joined, self.record)  # fixed-width rows: no copy at all
        else:
            rows = buf[starts[:, None] + np.arange(size)]
            records = rows.view(self.record).reshape(len(present))
        if (records["version"] != FORMAT_VERSION).any():
            raise OnlineStoreError(
                f"a stored row has an unknown format version (expected {FORMAT_VERSION}); "
                "re-materialize the view"
            )
        event = (records["event"].astype(np.uint64) ^ _FLIP).view(np.int64)
        nulls = np.unpackbits(
            records["nulls"], axis=1, count=len(self.features), bitorder="little"
        ).astype(np.bool_)
        columns: dict[int, pa.Array] = {}
        for i in self.fixed:
            if i in wanted:
                columns[i] = _fixed_array(self.features[i].dtype, records[f"f{i}"], nulls[:, i])
        position = starts + size
        for i in self.variable:
            length = _u32(buf, position)
            if i in wanted:
                columns[i] = _variable_array(
                    self.features[i].dtype, buf, position + 4, length, ~nulls[:, i]
                )
            position = position + 4 + length
        table = pa.table(
            [pa.array(event, pa.int64())] + [columns[i] for i in wanted],
            names=[EVENT_TS, *features],
        )
        if not found.all():
            table = table.take(pa.array(np.cumsum(found) - 1, pa.int64(), mask=~found))
        return table.add_column(0, FOUND, pa.array(found, pa.bool_()))


# -- feature values --------------------------------------------------------------------------


def _variable_parts(dtype: PrimitiveType | Array, column: pa.Array) -> list[pa.Array]:
    """Binary arrays whose element-wise concatenation is each row's length-prefixed payload."""
    if isinstance(dtype, PrimitiveType):  # String or Bytes
        data = column.cast(pa.binary())
        if data.null_count:
            data = pc.fill_null(data, pa.scalar(b"", pa.binary()))
        length = _numpy(pc.binary_length(data)).astype("<u4")
        return [_binary(length.tobytes(), np.arange(0, 4 * len(length) + 1, 4)), data]
    offsets = _offsets(column).astype(np.int64)
    count = np.diff(offsets)
    child = column.values
    valid = _numpy(child.is_valid()).astype(np.uint8)
    if dtype.element.name in _FIXED:
        width = np.dtype(_FIXED[dtype.element.name]).itemsize
        elements = _numpy(child, False if dtype.element.name == "Bool" else 0)
        packed = elements.astype(_FIXED[dtype.element.name]).tobytes()
        length = (count * (1 + width)).astype("<u4")
        return [
            _binary(length.tobytes(), np.arange(0, 4 * len(length) + 1, 4)),
            _binary(valid, offsets),
            _binary(packed, offsets * width),
        ]
    child = child.cast(pa.binary())
    child_offsets = _offsets(child).astype(np.int64)
    data = child.buffers()[2] or b""
    element_lengths = np.diff(child_offsets).astype("<u4")
    data_offsets = child_offsets[offsets]
    heads = np.empty(len(count), np.dtype([("length", "<u4"), ("count", "<u4")]))
    heads["length"] = 4 + 5 * count + np.diff(data_offsets)
    heads["count"] = count
    return [
        _records(heads),
        _binary(valid, offsets),
        _binary(element_lengths.tobytes(), offsets * 4),
        _binary(np.frombuffer(data, np.uint8), data_offsets),
    ]


def _fixed_array(
    dtype: PrimitiveType | Array, values: npt.NDArray[np.generic], null: npt.NDArray[np.bool_]
) -> pa.Array:
    native = values.astype(np.bool_ if dtype.name == "Bool" else values.dtype.newbyteorder("="))
    return pa.array(native, dtype.to_arrow(), mask=null if null.any() else None)


def _variable_array(
    dtype: PrimitiveType | Array, buf: U8, start: I64, length: I64, valid: npt.NDArray[np.bool_]
) -> pa.Array:
    """Rebuild a variable-width column from the payloads at ``start`` (``length`` bytes each)."""
    length = np.where(valid, length, 0)
    if isinstance(dtype, PrimitiveType):  # String or Bytes
        return _bytes_array(dtype.to_arrow(), gather(buf, start, length), length, valid)
    element = dtype.element
    if element.name in _FIXED:
        code = _FIXED[element.name]
        count = length // (1 + np.dtype(code).itemsize)
        element_valid = gather(buf, start, count).astype(np.bool_)
        raw = gather(buf, start + count, count * np.dtype(code).itemsize).view(code)
        children = _fixed_array(element, raw, ~element_valid)
    else:
        count = np.where(valid, _u32(buf, start), 0)
        element_valid = gather(buf, start + 4, count).astype(np.bool_)
        element_lengths = gather(buf, start + 4 + count, 4 * count).view("<u4").astype(np.int64)
        data = gather(buf, start + 4 + 5 * count, np.where(valid, length - 4 - 5 * count, 0))
        children = _bytes_array(element.to_arrow(), data, element_lengths, element_valid)
    offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(offsets), children, type=dtype.to_arrow(), mask=pa.array(~valid)
    )


def _bytes_array(
    kind: pa.DataType, data: U8, length: I64, valid: npt.NDArray[np.bool_]
) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(length)]).astype(np.int32)
    buffers = [_bitmap(valid), pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(kind, len(length), buffers)


# -- what both stores do before writing ------------------------------------------------------


@dataclass(frozen=True)
class PreparedRows:
    """A write batch ready for a store: keys (none null), packed rows and their expiry."""

    keys: pa.Array  # binary entity keys
    values: pa.Array  # binary packed rows
    event_ts: I64
    created_ts: I64
    expires_at_us: I64 | None  # None when the view has no TTL
    expired: int = 0  # rows dropped because their expiry had already passed

    def __len__(self) -> int:
        return len(self.keys)


class CodecCache:
    """One :class:`RowCodec` per view object, so hot paths do not rebuild it (or hash the view,
    which means hashing its whole definition)."""

    _LIMIT = 1024

    def __init__(self) -> None:
        self._codecs: dict[int, tuple[FeatureView, RowCodec]] = {}

    def get(self, view: FeatureView) -> RowCodec:
        """The codec of ``view``'s features."""
        hit = self._codecs.get(id(view))
        if hit is not None and hit[0] is view:
            return hit[1]
        if len(self._codecs) >= self._LIMIT:  # views come from a registry cache; rarely new
            self._codecs.clear()
        codec = RowCodec(view.features)
        self._codecs[id(view)] = (view, codec)  # holding the view keeps its id from being reused
        return codec

    def prepare(
        self, namespace: Namespace, batch: pa.RecordBatch | pa.Table, expiry_grace: timedelta
    ) -> PreparedRows:
        """Encode keys and rows; rows with a null join key are dropped (they can never match)."""
        view = namespace.view
        keys = encode_keys(batch, view.join_keys)
        rows = self.get(view).encode(batch)
        values, event_ts, created_ts = rows.values, rows.event_ts, rows.created_ts
        if keys.null_count:
            valid = keys.is_valid()
            keep = _numpy(valid).astype(np.bool_)
            keys, values = keys.filter(valid), values.filter(valid)
            event_ts, created_ts = event_ts[keep], created_ts[keep]
        expires = None
        expired = 0
        if view.ttl is not None:
            expires = event_ts + _micros(view.ttl + expiry_grace)
            # A row already past its expiry could never be served: drop it and say so, rather
            # than write it and count it as written. Within a namespace a newer row expires
            # later, so dropping it never lets an older stored row win.
            alive = expires > time.time_ns() // 1000
            expired = int(len(alive) - alive.sum())
            if expired:
                keep = pa.array(alive)
                keys, values = keys.filter(keep), values.filter(keep)
                event_ts, created_ts, expires = event_ts[alive], created_ts[alive], expires[alive]
        return PreparedRows(keys, values, event_ts, created_ts, expires, expired)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
