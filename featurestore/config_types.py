"""Building blocks of the ``featurestore.yaml`` models: the section base and the value types.

Every section of the file is a pydantic model derived from :class:`Section` (unknown keys are
errors, values are never coerced from another type). Durations, sizes and counts are annotated
types whose validators raise the one-line messages :func:`featurestore.config.parse_config`
reports with the setting's path, and whose JSON Schema says what an editor may offer.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from featurestore.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)?\s*$")
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}
_SIZE = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:[KMGT]i?B|B|bytes?)\s*$", re.IGNORECASE)


class Section(BaseModel):
    """A mapping of ``featurestore.yaml``: unknown keys and mistyped values are errors.

    ``example`` is shown when the section is given as something other than a mapping.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    example: ClassVar[str] = ""


def parse_duration(value: object, what: str) -> timedelta:
    """A duration from the config: a number of seconds or a string like ``"1d"``, ``"12h"``,
    ``"30m"``, ``"3600s"`` or ``"500ms"``."""
    try:
        return to_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{what} {exc}") from None


def to_duration(value: object) -> timedelta:
    """``value`` as a non-negative duration; a ``ValueError`` saying what is accepted otherwise."""
    if isinstance(value, timedelta) and value >= timedelta(0):
        return value
    match = None
    if isinstance(value, bool):  # bool is an int subclass; ``true`` is never a duration
        pass
    elif isinstance(value, int | float):
        if value >= 0:
            return timedelta(seconds=value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
    if match is None:
        raise ValueError(
            "must be a non-negative duration such as 1d, 12h, 30m, 3600s or a number "
            f"of seconds, got {value!r}"
        )
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """``value`` as the file writes it: ``1d``, ``12h``, ``30m``, ``90s`` or ``500ms``."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 and seconds else f"{seconds:g}s"


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _size(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)  # bytes, as DuckDB reads a bare number
    if isinstance(value, str) and _SIZE.match(value):
        return value.strip()
    raise ValueError(f"must be a size such as 2GB, 512MB or 1.5GiB, got {value!r}")


def _non_empty(what: str) -> Any:
    def check(value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return BeforeValidator(check)


DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _DURATION.pattern},
    ],
    "description": "A duration: seconds, or a number with a unit d, h, m, s or ms (e.g. 1d).",
}

#: A non-negative duration (``1d``, ``12h``, ``30m``, ``3600s``, ``500ms`` or seconds).
Duration = Annotated[
    timedelta,
    BeforeValidator(to_duration),
    PlainSerializer(lambda value: format_duration(value), return_type=str),
    WithJsonSchema(DURATION_SCHEMA),
]
#: A whole number >= 1 (``true`` is not one).
PositiveInt = Annotated[
    int, BeforeValidator(_positive_int), WithJsonSchema({"type": "integer", "minimum": 1})
]
#: A memory size such as ``2GB`` or a number of bytes.
Size = Annotated[
    str,
    BeforeValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": _SIZE.pattern},
            ],
            "description": "A size such as 2GB, 512MB or 1.5GiB (or bytes).",
        }
    ),
]
#: A non-empty path of a file or folder (relative to the repository unless absolute).
FolderPath = Annotated[str, _non_empty("a folder path")]
FilePath = Annotated[str, _non_empty("a file path (relative to the repository)")]
NonEmpty = Annotated[str, _non_empty("a non-empty string")]
