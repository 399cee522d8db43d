"""Parsing of the request bodies of Feast's feature-server paths, by hand.

    /get-online-features     {"features": ["driver_stats:conv_rate"] | "feature_service": "driver_model",
                              "entities": {"driver_id": [1001, 1002]}, "full_feature_names": false,
                              "include_feature_view_version_metadata": false}
    /push                    {"push_source_name": "driver_stats_push", "to": "online",
                              "df": {"driver_id": [1001], "event_timestamp": ["2026-10-01T12:00:00Z"], ...}}
    /write-to-online-store   {"feature_view_name": "driver_stats", "df": {...}}
    /materialize             {"start_ts": "2026-10-01T00:00:00", "end_ts": "...", "feature_views": null}
    /materialize-incremental {"end_ts": "2026-10-01T00:00:00", "feature_views": ["driver_stats"]}

Parsing with orjson and a few type checks is several times cheaper than a model; every problem is
an :class:`~api.errors.ApiError` naming the field (400 for malformed JSON, 422 for a wrong shape,
413 for too many entity rows). Keys Feast clients may add that we do not use are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from api.errors import ApiError
from featurestore.errors import QualityError
from featurestore.quality.windows import parse_instant

__all__ = [
    "MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA",
    "MATERIALIZE_REQUEST_SCHEMA",
    "ONLINE_REQUEST_SCHEMA",
    "PUSH_REQUEST_SCHEMA",
    "WRITE_REQUEST_SCHEMA",
    "MaterializeRequest",
    "OnlineRequest",
    "PushRequest",
    "WriteRequest",
    "parse_materialize_request",
    "parse_online_request",
    "parse_push_request",
    "parse_write_request",
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
        "request_context": _columns(
            "Request-time values of on-demand feature views -> one value per entity row (as "
            "Feast's request_context; they may also be extra columns of entities)"
        ),
        "full_feature_names": {"type": "boolean", "default": False},
        "include_feature_view_version_metadata": {"type": "boolean", "default": False},
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

_COLUMNS_SCHEMA: dict[str, Any] = PUSH_REQUEST_SCHEMA["properties"]["df"]

#: Feast's ``/write-to-online-store`` body; ``allow_registry_cache`` and ``transform_on_write``
#: are accepted and ignored.
WRITE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "feature_view_name": {"type": "string"},
        "df": _COLUMNS_SCHEMA,
        "allow_registry_cache": {"type": "boolean"},
        "transform_on_write": {"type": "boolean"},
    },
    "required": ["feature_view_name", "df"],
}

_INSTANT = "ISO 8601 date or datetime; naive means UTC"
_VIEWS_SCHEMA: dict[str, Any] = {"type": ["array", "null"], "items": {"type": "string"}}

#: Feast's ``/materialize`` body; ``full_feature_names`` is accepted and ignored
#: (materialization writes every feature of each view's current version; ``version`` must be null).
MATERIALIZE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start_ts": {"type": ["string", "null"], "description": _INSTANT},
        "end_ts": {"type": ["string", "null"], "description": _INSTANT},
        "feature_views": _VIEWS_SCHEMA,
        "disable_event_timestamp": {"type": "boolean", "default": False},
        "full_feature_names": {"type": "boolean"},
        "version": {"type": ["string", "null"]},
    },
}

#: Feast's ``/materialize-incremental`` body.
MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "end_ts": {"type": "string", "description": _INSTANT},
        "feature_views": _VIEWS_SCHEMA,
        "full_feature_names": {"type": "boolean"},
        "version": {"type": ["string", "null"]},
    },
    "required": ["end_ts"],
}


@dataclass(frozen=True)
class OnlineRequest:
    """A validated lookup request: references (or a service name) and entity columns."""

    features: list[str] | str
    entities: dict[str, Sequence[object]]
    full_feature_names: bool
    rows: int
    include_version_metadata: bool = False


@dataclass(frozen=True)
class PushRequest:
    """A push whose shape is valid; the rows themselves are checked by the store."""

    source: str
    columns: dict[str, list[object]]
    to: str


@dataclass(frozen=True)
class WriteRequest:
    """A write of one view's rows whose shape is valid; the rows are checked by the store."""

    view: str
    columns: dict[str, list[object]]


@dataclass(frozen=True)
class MaterializeRequest:
    """A materialization window (``start`` None: incremental, from each view's watermark)."""

    start: datetime | None
    end: datetime
    feature_views: list[str] | None


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
    columns = _row_columns(data, max_rows)
    to = data.get("to", "online")
    if not isinstance(to, str) or to.lower() not in _PUSH_MODES:
        raise _invalid(f"'to' must be one of {list(_PUSH_MODES)}, got {to!r}")
    return PushRequest(source, columns, to)


def _row_columns(data: dict[str, Any], max_rows: int) -> dict[str, list[object]]:
    """The ``df`` of a push or write: column names to lists of at most ``max_rows`` scalars."""
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
            too_many=("TooManyRows", "per request (api.max_push_rows): split the rows"),
            values_are="values must be numbers, strings, booleans or null",
        )
    return columns


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
    context = data.get("request_context")
    if context is not None:
        entities = {**entities, **_request_context(context, entities, rows, max_entities)}
    full = _flag(data, "full_feature_names")
    versions = _flag(data, "include_feature_view_version_metadata")
    return OnlineRequest(features, entities, full, max(rows, 0), versions)


def _request_context(
    context: object, entities: dict[str, Any], rows: int, max_entities: int
) -> dict[str, Any]:
    """``request_context`` columns (on-demand views' request values), checked like entities."""
    if not isinstance(context, dict):
        raise _invalid(
            "'request_context' must be an object mapping request fields to lists of values, "
            'e.g. {"distance_km": [3.2]}'
        )
    for key, values in context.items():
        _check_column(
            f"request_context[{key!r}]",
            values,
            max_entities,
            too_many=("TooManyEntities", "per request (api.max_entities): split the request"),
            values_are="request values must be numbers, strings, booleans or null",
        )
        if key in entities:
            raise _invalid(f"{key!r} is given in both 'entities' and 'request_context'")
        if rows not in (-1, len(values)):
            raise _invalid(
                f"request_context[{key!r}] has {len(values)} values for {rows} entity rows"
            )
    return context


def parse_write_request(body: bytes, max_rows: int) -> WriteRequest:
    """Validate a raw ``/write-to-online-store`` body's shape (Feast's, one view's rows)."""
    data = _json_object(body)
    view = data.get("feature_view_name")
    if not isinstance(view, str) or not view:
        raise _invalid(f"'feature_view_name' must be a feature view's name, got {_kind(view)}")
    _flag(data, "allow_registry_cache")  # accepted and ignored, but a boolean
    _flag(data, "transform_on_write")
    return WriteRequest(view, _row_columns(data, max_rows))


def parse_materialize_request(body: bytes, *, incremental: bool) -> MaterializeRequest:
    """Validate a raw ``/materialize`` (or ``/materialize-incremental``) body.

    Timestamps are ISO 8601 (naive means UTC); Feast's ``disable_event_timestamp`` means
    everything from 1970 up to now."""
    data = _json_object(body)
    views = data.get("feature_views")
    if views is not None and not (
        isinstance(views, list) and all(isinstance(v, str) and v for v in views)
    ):
        raise _invalid(f"'feature_views' must be a list of view names or null, got {_kind(views)}")
    _flag(data, "full_feature_names")  # accepted and ignored, but a boolean
    if data.get("version") is not None:
        raise _invalid(
            "'version': materializing a pinned version is not supported; each view's current "
            "version is materialized (leave 'version' out)"
        )
    if incremental:
        return MaterializeRequest(None, _instant(data, "end_ts"), views)
    start, end = _optional_instant(data, "start_ts"), _optional_instant(data, "end_ts")
    if _flag(data, "disable_event_timestamp"):  # Feast's "everything": the bounds are ignored
        return MaterializeRequest(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC), views)
    if start is None or end is None:
        raise _invalid("'start_ts' and 'end_ts' are required unless 'disable_event_timestamp'")
    if start >= end:
        raise _invalid(
            f"'start_ts' ({start.isoformat()}) must be before 'end_ts' ({end.isoformat()})"
        )
    return MaterializeRequest(start, end, views)


def _optional_instant(data: dict[str, Any], name: str) -> datetime | None:
    return None if data.get(name) is None else _instant(data, name)


def _instant(data: dict[str, Any], name: str) -> datetime:
    text = data.get(name)
    if not isinstance(text, str):
        raise _invalid(f"{name!r} must be an ISO 8601 timestamp, got {_kind(text)}")
    try:
        return parse_instant(text)
    except QualityError as exc:
        raise _invalid(f"{name!r}: {exc}") from None


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"{name!r} must be true or false, got {_kind(value)}")
    return value


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
