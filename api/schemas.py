"""Parsing of Feast's ``/get-online-features`` request body, by hand on the hot path.

    {"features": ["driver_stats:conv_rate"] | "feature_service": "driver_model",
     "entities": {"driver_id": [1001, 1002]}, "full_feature_names": false}

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

__all__ = ["ONLINE_REQUEST_SCHEMA", "OnlineRequest", "parse_online_request"]

_SCALARS = (int, float, str, bool)

#: The request body as OpenAPI documents it (the route parses the body itself).
ONLINE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "features": {"type": "array", "items": {"type": "string"}},
        "feature_service": {"type": "string"},
        "entities": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"type": ["integer", "number", "string", "boolean", "null"]},
            },
        },
        "full_feature_names": {"type": "boolean", "default": False},
    },
    "required": ["entities"],
}


@dataclass(frozen=True)
class OnlineRequest:
    """A validated lookup request: references (or a service name) and entity columns."""

    features: list[str] | str
    entities: dict[str, Sequence[object]]
    full_feature_names: bool
    rows: int


def _invalid(message: str) -> ApiError:
    return ApiError(422, "ValidationError", message)


def parse_online_request(body: bytes, max_entities: int) -> OnlineRequest:
    """Validate a raw request body; raise :class:`ApiError` naming the first problem."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "MalformedJSON", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _invalid(f"the request body must be a JSON object, got {type(data).__name__}")
    features = _features(data)
    entities = data.get("entities")
    if not isinstance(entities, dict):
        raise _invalid(
            "'entities' must be an object mapping join keys to lists of values, "
            'e.g. {"driver_id": [1001]}'
        )
    rows = -1
    for key, values in entities.items():
        if not isinstance(values, list):
            raise _invalid(f"entities[{key!r}] must be a list of values, got {_kind(values)}")
        if len(values) > max_entities:
            raise ApiError(
                413,
                "TooManyEntities",
                f"entities[{key!r}] has {len(values)} rows; the limit is {max_entities} per "
                "request (api.max_entities): split the request",
            )
        for value in values:
            if value is not None and not isinstance(value, _SCALARS):
                raise _invalid(
                    f"entities[{key!r}] holds {_kind(value)}; join key values must be "
                    "numbers, strings, booleans or null"
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
