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

from featurestore.push.frame import PushColumns

#: Parses one text value into a Python value of a column's type (raises ValueError).
Parser = Callable[[str], Any]

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Message:
    """One message read from a stream: its position and its fields."""

    position: str
    fields: Mapping[str, str]


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
