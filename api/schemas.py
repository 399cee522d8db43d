"""Parsing of Feast's ``/get-online-features`` and ``/push`` request bodies, by hand.

    {"features": ["driver_stats:conv_rate"] | "feature_service": "driver_model",
     "entities": {"driver_id": [1001, 1002]}, "full_feature_names": false}
    {"push_source_name": "driver_stats_push", "to": "online",
     "df": {"driver_id": [1001], "event_timestamp": ["2026-10-01T12:00:00Z"], "conv_rate": [0.5]}}

Parsing with orjson and a few type checks is several times cheaper than a model; every problem is
an :class:`~api.errors.ApiError` naming the field (400 for malformed JSON, 422 for a wrong shape,
413 for too many entity rows). Keys Feast clients may add that we do not use are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from api.errors import ApiError

__all__ = [
    "ONLINE_REQUEST_SCHEMA",
    "PUSH_REQUEST_SCHEMA",
    "OnlineRequest",
    "PushRequest",
    "parse_online_request",
    "parse_push_request",
]

_SCALARS = (int, float, str, bool)
_PUSH_MODES = ("online", "offline", "online_and_offline")


def _columns(what: str) -> dict[str, Any]:
    """An object of columns: each a list of JSON scalars or nulls (orjson reads 64-bit integers)."""
    return {
        "type": "object",
        "description": what,
        "additionalProperties": {
            "type": "array",
            "items": {"type": ["integer", "number", "string", "boolean", "null"]},
        },
    }


def _any_case(words: Sequence[str]) -> str:
    """A pattern matching ``words`` in any letter case (JSON Schema patterns have no flags)."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in w) for w in words)
    return "^(" + "|".join(spelled) + ")$"


#: The request body as OpenAPI documents it (the route parses the body itself, with the same
#: rules: tests/test_api_schemas.py checks that both accept the same bodies). Exactly one of
#: ``features`` and ``feature_service`` (an explicit null counts as absent).
ONLINE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "features": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "minItems": 1,
            "description": 'Feature references "view:feature" (or "view@version:feature")',
        },
        "feature_service": {
            "type": ["string", "null"],
            "minLength": 1,
            "description": "A feature service's name, instead of features",
        },
        "entities": _columns(
            "Join key -> one value per entity row; every list has the same length"
        ),
        "full_feature_names": {"type": "boolean", "default": False},
    },
    "required": ["entities"],
    "oneOf": [
        {
            "title": "By features",
            "required": ["features"],
            "properties": {"features": {"type": "array"}},
        },
        {
            "title": "By feature service",
            "required": ["feature_service"],
            "properties": {"feature_service": {"type": "string"}},
        },
    ],
}


#: Feast's push body; ``allow_registry_cache`` and ``transform_on_write`` are accepted and
#: ignored, whatever their value; ``to`` is matched in any case, as Feast does.
PUSH_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "push_source_name": {"type": "string", "minLength": 1},
        "df": {**_columns("Column -> one value per row"), "minProperties": 1},
        "to": {
            "type": "string",
            "pattern": _any_case(_PUSH_MODES),
            "default": "online",
            "description": "online, offline or online_and_offline (any letter case)",
        },
        "allow_registry_cache": {"description": "Accepted and ignored"},
        "transform_on_write": {"description": "Accepted and ignored"},
    },
    "required": ["push_source_name", "df"],
}


@dataclass(frozen=True)
class OnlineRequest:
    """A validated lookup request: references (or a service name) and entity columns."""

    features: list[str] | str
    entities: dict[str, Sequence[object]]
    full_feature_names: bool
    rows: int


@dataclass(frozen=True)
class PushRequest:
    """A push whose shape is valid; the rows themselves are checked by the store."""

    source: str
    columns: dict[str, list[object]]
    to: str


def _invalid(message: str) -> ApiError:
    return ApiError(422, "ValidationError", message)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "MalformedJSON", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _invalid(f"the request body must be a JSON object, got {type(data).__name__}")
    return data


def parse_push_request(body: bytes, max_rows: int) -> PushRequest:
    """Validate a raw push body's shape; raise :class:`ApiError` naming the first problem."""
    data = _json_object(body)
    source = data.get("push_source_name")
    if not isinstance(source, str) or not source:
        raise _invalid(f"'push_source_name' must be a push source's name, got {_kind(source)}")
    columns = data.get("df")
    if not isinstance(columns, dict) or not columns:
        raise _invalid(
            "'df' must be an object mapping column names to lists of values, "
            'e.g. {"driver_id": [1001], "event_timestamp": ["2026-10-01T12:00:00Z"], ...}'
        )
    for name, values in columns.items():
        _check_column(
            f"df[{name!r}]",
            values,
            max_rows,
            too_many=("TooManyRows", "per push (api.max_push_rows): split the push"),
            values_are="values must be numbers, strings, booleans or null",
        )
    to = data.get("to", "online")
    if not isinstance(to, str) or to.lower() not in _PUSH_MODES:
        raise _invalid(f"'to' must be one of {list(_PUSH_MODES)}, got {to!r}")
    return PushRequest(source, columns, to)


def parse_online_request(body: bytes, max_entities: int) -> OnlineRequest:
    """Validate a raw request body; raise :class:`ApiError` naming the first problem."""
    data = _json_object(body)
    features = _features(data)
    entities = data.get("entities")
    if not isinstance(entities, dict):
        raise _invalid(
            "'entities' must be an object mapping join keys to lists of values, "
            'e.g. {"driver_id": [1001]}'
        )
    rows = -1
    for key, values in entities.items():
        _check_column(
            f"entities[{key!r}]",
            values,
            max_entities,
            too_many=("TooManyEntities", "per request (api.max_entities): split the request"),
            values_are="join key values must be numbers, strings, booleans or null",
        )
        if rows not in (-1, len(values)):
            raise _invalid(
                "entities lists differ in length: "
                + str({k: len(v) for k, v in entities.items() if isinstance(v, list)})
            )
        rows = len(values)
    full = data.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise _invalid(f"'full_feature_names' must be true or false, got {_kind(full)}")
    return OnlineRequest(features, entities, full, max(rows, 0))


def _check_column(
    where: str, values: object, limit: int, *, too_many: tuple[str, str], values_are: str
) -> None:
    """One column of a request: a list of at most ``limit`` JSON scalars (or nulls)."""
    if not isinstance(values, list):
        raise _invalid(f"{where} must be a list of values, got {_kind(values)}")
    if len(values) > limit:
        error, advice = too_many
        raise ApiError(413, error, f"{where} has {len(values)} rows; the limit is {limit} {advice}")
    for value in values:
        if value is not None and not isinstance(value, _SCALARS):
            raise _invalid(f"{where} holds {_kind(value)}; {values_are}")


def _features(data: dict[str, Any]) -> list[str] | str:
    features = data.get("features")
    service = data.get("feature_service")
    if (features is None) == (service is None):
        raise _invalid(
            "pass exactly one of 'features' (a list of \"view:feature\" references) and "
            "'feature_service' (a service name)"
        )
    if service is not None:
        if not isinstance(service, str) or not service:
            raise _invalid(f"'feature_service' must be a service name, got {_kind(service)}")
        return service
    if not isinstance(features, list) or not features:
        raise _invalid("'features' must be a non-empty list of \"view:feature\" references")
    for ref in features:
        if not isinstance(ref, str):
            raise _invalid(f"'features' must hold strings like \"view:feature\", got {_kind(ref)}")
    return features


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__ if value is not None else "null"
    )
