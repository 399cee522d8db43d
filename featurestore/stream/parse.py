"""Turning stream messages into typed rows, and the bad ones into dead letters.

A Redis Streams entry's fields are the row's columns, as text: numbers as their decimal text,
booleans as ``true``/``false``/``1``/``0``, timestamps as ISO 8601 (a naive one is UTC) or epoch
seconds. An empty or absent field is null. A message that cannot be a row (no timestamp, no join
key, a value that does not parse as its column's type) is not dropped: :func:`parse_messages`
returns it as a :class:`DeadLetter` with the reason, and the consumer sends it to the dead-letter
stream.

Column types come from the stream source's batch source (as a push's do), so a streamed row is
stored exactly as a pushed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.push.frame import PushColumns

#: Parses one text value into a Python value of a column's type (raises ValueError).
Parser = Callable[[str], Any]

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Message:
    """One message read from a stream: its position and its fields, as the broker gives them
    (``[name, value, name, value, ...]``, Redis Streams' own layout) or as a mapping."""

    position: str
    flat: Sequence[str] | Mapping[str, str]

    @property
    def fields(self) -> dict[str, str]:
        if isinstance(self.flat, Mapping):
            return dict(self.flat)
        return dict(zip(self.flat[::2], self.flat[1::2], strict=False))

    def names(self) -> Sequence[str]:
        return list(self.flat) if isinstance(self.flat, Mapping) else self.flat[::2]


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not become a row, and why."""

    message: Message
    reason: str


@dataclass
class ParsedBatch:
    """The rows of a batch of messages (as a table, in message order) and the dead letters."""

    table: pa.Table
    positions: list[str]
    dead: list[DeadLetter]
    event_micros: list[int]


class MessageParser:
    """Parses messages into the columns a push to the stream source must carry."""

    def __init__(self, columns: PushColumns) -> None:
        self.columns = columns
        self.timestamp = columns.source.timestamp_field
        required = dict(columns.required)
        if columns.created is not None:
            required[columns.created[0]] = columns.created[1]
        self.types = required
        self.parsers = {name: _parser(dtype) for name, dtype in required.items()}
        self.not_null = (self.timestamp, *columns.key_columns)

    def parse(self, messages: Sequence[Message]) -> ParsedBatch:
        """Every message as a row, or a dead letter. Messages whose fields come in one order
        (the usual case: one producer) are parsed column by column in Arrow; a batch with a bad
        value, a missing field or mixed layouts goes row by row, which finds the bad ones."""
        fast = self._columnar(messages)
        return fast if fast is not None else self._by_row(messages)

    def _columnar(self, messages: Sequence[Message]) -> ParsedBatch | None:
        if not messages or isinstance(messages[0].flat, Mapping):
            return None
        layout = messages[0].flat[::2]
        if any(m.flat[::2] != layout for m in messages):  # type: ignore[index]
            return None
        where = {name: 2 * i + 1 for i, name in enumerate(layout)}
        if any(name not in where for name in self.not_null):
            return None
        arrays: dict[str, pa.Array] = {}
        for name, dtype in self.types.items():
            index = where.get(name)
            if index is None:
                arrays[name] = pa.nulls(len(messages), dtype)
                continue
            text = pa.array([m.flat[index] for m in messages], pa.string())  # type: ignore[index]
            column = _cast_text(text, dtype, required=name in self.not_null)
            if column is None:
                return None
            arrays[name] = column
        events = pc.cast(arrays[self.timestamp], pa.int64()).to_pylist()
        if pa.types.is_timestamp(self.types[self.timestamp]):
            unit = self.types[self.timestamp].unit
            scale = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}[unit]
            events = [e * scale if scale else e // 1_000 for e in events]
        positions = [m.position for m in messages]
        return ParsedBatch(pa.table(arrays), positions, [], events)

    def _by_row(self, messages: Sequence[Message]) -> ParsedBatch:
        values: dict[str, list[Any]] = {name: [] for name in self.types}
        positions: list[str] = []
        dead: list[DeadLetter] = []
        events: list[int] = []
        for message in messages:
            row, reason = self._row(message.fields)
            if row is None:
                dead.append(DeadLetter(message, reason))
                continue
            for name, value in row.items():
                values[name].append(value)
            positions.append(message.position)
            events.append(row[self.timestamp])
        arrays = {name: _array(values[name], dtype) for name, dtype in self.types.items()}
        return ParsedBatch(pa.table(arrays), positions, dead, events)

    def _row(self, fields: Mapping[str, str]) -> tuple[dict[str, Any] | None, str]:
        row: dict[str, Any] = {}
        for name, parse in self.parsers.items():
            text = fields.get(name)
            if text is None or text == "":
                if name in self.not_null:
                    role = "timestamp" if name == self.timestamp else "join key"
                    return None, f"missing {role} field {name!r}"
                row[name] = None
                continue
            try:
                row[name] = parse(text)
            except (ValueError, OverflowError):
                return None, f"field {name!r}: {text[:80]!r} is not a {self.types[name]}"
        return row, ""


def _parser(dtype: pa.DataType) -> Parser:
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return _epoch_micros
    if pa.types.is_integer(dtype):
        return int
    if pa.types.is_floating(dtype):
        return _finite_or_nan
    if pa.types.is_boolean(dtype):
        return _boolean
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return str
    raise ValueError(f"a stream cannot carry {dtype} columns yet")


def _finite_or_nan(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("infinite")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _epoch_micros(text: str) -> int:
    """ISO 8601 (naive = UTC) or epoch seconds -> epoch microseconds."""
    try:
        return round(float(text) * 1_000_000)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _array(values: list[Any], dtype: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        micros = pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        if pa.types.is_timestamp(dtype) and dtype.tz is None:
            return micros.cast(pa.timestamp("us")).cast(dtype)
        return micros.cast(dtype)
    return pa.array(values, dtype)


def _cast_text(text: pa.Array, dtype: pa.DataType, *, required: bool) -> pa.Array | None:
    """A column of message text as ``dtype`` (empty text is null), or None when a value does
    not parse (the row-by-row path then finds which)."""
    empty = pc.equal(text, "")
    if pc.any(empty).as_py():
        if required:
            return None
        text = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    try:
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            return text.cast(dtype)
        if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
            return _cast_instants(text, dtype)
        if pa.types.is_floating(dtype):
            column = pc.cast(text, dtype)
            return None if pc.any(pc.is_inf(column)).as_py() else column
        return pc.cast(text, dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _cast_instants(text: pa.Array, dtype: pa.DataType) -> pa.Array:
    """ISO 8601 with zone offsets, naive ISO 8601 (UTC), or epoch seconds; one form per batch."""
    try:
        seconds = pc.cast(text, pa.float64())
        micros = pc.round(pc.multiply(seconds, 1_000_000.0))
        utc = pc.cast(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        try:
            utc = pc.cast(text, pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            naive = pc.cast(text, pa.timestamp("us"))
            utc = naive.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    if pa.types.is_timestamp(dtype) and dtype.tz is None:
        return utc.cast(pa.int64()).cast(pa.timestamp("us")).cast(dtype)
    return utc.cast(dtype)
