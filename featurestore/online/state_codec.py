"""A small self-describing binary encoding of nested plain values (None, bools, integers,
floats, strings, bytes and lists of them), for the online aggregation state: no pickling, so a
stored state can never run code when read. Lists of only floats (or only int64 integers, nulls
allowed) are one typed array and a null mask, so a lookup decodes a column in one call.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from typing import Any

_NONE, _FALSE, _TRUE, _INT, _BIGINT, _FLOAT, _STR, _BYTES, _LIST, _FLOATS, _INTS = range(11)
#: Lists of only floats (or only int64 integers), nulls allowed, are stored as one typed array
#: and a null mask: a lookup decodes a column in one call instead of value by value.
_BIG_ENDIAN = sys.byteorder == "big"  # typed arrays are stored little-endian everywhere
_ARRAY_CODES = {_FLOATS: "d", _INTS: "q"}
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")


def encode_value(value: Any, out: bytearray) -> None:
    """Append ``value``'s encoding to ``out``."""
    if value is None:
        out.append(_NONE)
    elif value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            out.append(_INT)
            out += _I64.pack(value)
        else:
            text = str(value).encode()
            out.append(_BIGINT)
            out += _U32.pack(len(text)) + text
    elif isinstance(value, float):
        out.append(_FLOAT)
        out += _F64.pack(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out.append(_STR)
        out += _U32.pack(len(data)) + data
    elif isinstance(value, bytes):
        out.append(_BYTES)
        out += _U32.pack(len(value)) + value
    elif isinstance(value, list | tuple) and (kind := _array_kind(value)) is not None:
        nulls = bytes(item is None for item in value)
        out.append(kind)
        out += _U32.pack(len(value))
        out.append(1 if any(nulls) else 0)
        if any(nulls):
            out += nulls
        fill = 0.0 if kind == _FLOATS else 0
        items = array(_ARRAY_CODES[kind], [fill if v is None else v for v in value])
        if _BIG_ENDIAN:
            items.byteswap()
        out += items.tobytes()
    elif isinstance(value, list | tuple):
        out.append(_LIST)
        out += _U32.pack(len(value))
        for item in value:
            encode_value(item, out)
    else:
        raise TypeError(f"cannot store a {type(value).__name__} in an aggregation state")


def _array_kind(values: Sequence[Any]) -> int | None:
    """``_FLOATS`` or ``_INTS`` when every non-null item is a float (an int64 integer), else
    None (mixed, other types, or nothing but nulls)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds == {float}:
        return _FLOATS
    if kinds == {int} and all(v is None or -(2**63) <= v < 2**63 for v in values):
        return _INTS
    return None


def decode_value(blob: bytes, position: int) -> tuple[Any, int]:
    """The value encoded at ``position`` of ``blob``, and the position after it."""
    tag = blob[position]
    position += 1
    if tag in _ARRAY_CODES:
        (length,) = _U32.unpack_from(blob, position)
        has_nulls = blob[position + 4]
        position += 5
        nulls = blob[position : position + length] if has_nulls else b""
        position += length if has_nulls else 0
        values = array(_ARRAY_CODES[tag])
        values.frombytes(blob[position : position + 8 * length])
        if _BIG_ENDIAN:
            values.byteswap()
        items: list[Any] = values.tolist()
        if has_nulls:
            items = [None if null else v for v, null in zip(items, nulls, strict=True)]
        return items, position + 8 * length
    if tag == _NONE:
        return None, position
    if tag == _TRUE:
        return True, position
    if tag == _FALSE:
        return False, position
    if tag == _INT:
        return _I64.unpack_from(blob, position)[0], position + 8
    if tag == _FLOAT:
        return _F64.unpack_from(blob, position)[0], position + 8
    if tag in (_STR, _BYTES, _BIGINT):
        (length,) = _U32.unpack_from(blob, position)
        data = blob[position + 4 : position + 4 + length]
        position += 4 + length
        if tag == _STR:
            return data.decode("utf-8"), position
        return (data if tag == _BYTES else int(data)), position
    if tag == _LIST:
        (length,) = _U32.unpack_from(blob, position)
        position += 4
        items = []
        for _ in range(length):
            item, position = decode_value(blob, position)
            items.append(item)
        return items, position
    raise ValueError(f"aggregation state: unknown value tag {tag}")
