"""Scalar encoding and decoding for small online lookups.

The vectorized codec (:mod:`featurestore.online.codec`) wins from a few dozen rows up, but for the
one-to-a-few-entities lookups a model makes per prediction its numpy and Arrow call overhead is
most of the latency. This module produces the *same bytes* (keys) and the *same values* (rows) with
plain ``struct`` calls; property tests hold it to the vectorized codec.

Only scalar features are decoded here; a lookup that asks for an Array feature takes the
vectorized path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from featurestore.online.codec import FORMAT_VERSION, HEADER_END, RowCodec
from featurestore.types import Array, ValueType

#: Lookups of at most this many entity rows take the scalar path (measured faster than the
#: vectorized one up to about 100 rows on two views, where Arrow call overhead still dominates).
SMALL_LOOKUP = 128

_FLIP = 1 << 63
_WRAP = 1 << 64
_INT64 = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")
_LENGTH = struct.Struct(">I")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct(">BQQ")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT_RANGE = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1)}
_FIXED_CODES = {"Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d"}
_FIXED_CODES |= {"Bool": "?", "UnixTimestamp": "q"}

#: Encodes one key value; raises TypeError/ValueError when the value does not fit the type.
KeyPart = Callable[[Any], bytes]


def key_part(declared: ValueType | None) -> KeyPart | None:
    """The scalar encoder of one join key of type ``declared``; None when only the vectorized
    path handles it (untyped keys, whose type is inferred from the whole column)."""
    if declared is None or isinstance(declared, Array):
        return None
    name = declared.name
    if name in _INT_RANGE:
        low, high = _INT_RANGE[name]

        def integer(value: Any) -> bytes:
            if type(value) is not int:
                if isinstance(value, bool) or not hasattr(value, "__index__"):
                    raise TypeError(f"{value!r} is not an integer")
                value = value.__index__()  # numpy integers
            if not low <= value <= high:
                raise OverflowError(f"{value} is out of range for {name}")
            return b"\x01" + _INT64.pack(value)

        return integer
    if name == "String":
        return lambda value: _length_prefixed(b"\x02", _str(value).encode("utf-8"))
    if name == "Bytes":
        return lambda value: _length_prefixed(b"\x03", _bytes(value))
    if name == "Bool":
        return lambda value: b"\x04" + (b"\x01" if _bool(value) else b"\x00")
    if name in ("Float32", "Float64"):
        return None  # float32 rounding must match Arrow's cast exactly: leave it to the codec
    return None  # UnixTimestamp keys: timezone handling stays with the vectorized path


def _length_prefixed(tag: bytes, payload: bytes) -> bytes:
    return tag + _LENGTH.pack(len(payload)) + payload


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"{value!r} is not bytes")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not a bool")
    return value


def key_encoder(key_types: Sequence[ValueType | None]) -> Callable[[Sequence[Any]], bytes] | None:
    """Encoder of a whole key tuple (None in the tuple: no key), or None when a key's type has no
    scalar encoder."""
    parts = [key_part(t) for t in key_types]
    if any(p is None for p in parts):
        return None
    encoders: list[KeyPart] = [p for p in parts if p is not None]
    if len(encoders) == 1:  # the common single-key entity: no join
        single = encoders[0]
        return lambda values: single(values[0])

    def encode(values: Sequence[Any]) -> bytes:
        return b"".join([part(value) for part, value in zip(encoders, values, strict=True)])

    return encode


class ScalarRowDecoder:
    """Decodes one stored row into its event time and the requested features' Python values,
    exactly as the vectorized :meth:`RowCodec.decode` followed by ``to_pylist`` would."""

    def __init__(self, codec: RowCodec, features: Sequence[str]) -> None:
        self.codec = codec
        wanted = [codec.index[name] for name in features]
        if any(isinstance(codec.features[i].dtype, Array) for i in wanted):
            raise ValueError("array features take the vectorized path")
        self.bitmap_bytes = codec.bitmap_bytes
        codes = "".join(_FIXED_CODES[codec.features[i].dtype.name] for i in codec.fixed)
        self.fixed = struct.Struct("<" + codes)
        self.fixed_start = HEADER_END + self.bitmap_bytes
        self.variable_start = self.fixed_start + self.fixed.size
        fixed_slot = {feature: slot for slot, feature in enumerate(codec.fixed)}
        variable_slot = {feature: slot for slot, feature in enumerate(codec.variable)}
        # Per wanted feature: (feature index, is fixed, slot within its group, converter).
        self.plan = [
            (
                i,
                i in fixed_slot,
                fixed_slot[i] if i in fixed_slot else variable_slot[i],
                _converter(codec.features[i].dtype),
            )
            for i in wanted
        ]
        self.needs_variable = any(not is_fixed for _, is_fixed, _, _ in self.plan)

    def decode(self, row: bytes) -> tuple[int, list[Any]]:
        """``(event_ts_us, values)`` of one stored row."""
        version, event, _created = _HEADER.unpack_from(row)
        if version != FORMAT_VERSION or len(row) < self.variable_start:
            raise ValueError("a stored row has an unknown format version or is truncated")
        event ^= _FLIP
        if event >= _FLIP:
            event -= _WRAP
        nulls = int.from_bytes(row[HEADER_END : self.fixed_start], "little")
        fixed = self.fixed.unpack_from(row, self.fixed_start)
        variable = self._variable(row) if self.needs_variable else ()
        return event, [
            None
            if nulls >> index & 1
            else (
                (fixed[slot] if is_fixed else variable[slot])
                if convert is None
                else convert(fixed[slot] if is_fixed else variable[slot])
            )
            for index, is_fixed, slot, convert in self.plan
        ]

    def _variable(self, row: bytes) -> Sequence[bytes]:
        payloads = []
        position = self.variable_start
        for _ in self.codec.variable:
            (length,) = _U32.unpack_from(row, position)
            payloads.append(row[position + 4 : position + 4 + length])
            position += 4 + length
        return payloads


def _converter(dtype: ValueType) -> Callable[[Any], Any] | None:
    if dtype.name == "String":
        return lambda raw: raw.decode("utf-8")
    if dtype.name == "UnixTimestamp":
        return lambda raw: _EPOCH + timedelta(microseconds=raw)
    return None
