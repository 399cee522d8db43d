"""The sections of ``featurestore.yaml`` besides the stores and quality (whose models live with
their code: the engines' and stores' in their packages, named by the backend tables): the REST
service, retention, audit and lineage."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, WithJsonSchema, field_validator, model_validator

from featurestore.config_types import (
    DURATION_SCHEMA,
    FilePath,
    NonEmpty,
    PositiveInt,
    Section,
    to_duration,
)


class ApiConfig(Section):
    """Settings of the REST service (``featurestore serve``).

    ``tokens_file`` holds hashed bearer tokens (relative to the repository unless absolute;
    ``None``: the service is open); ``max_entities`` caps the entity rows of one lookup,
    ``max_push_rows`` the rows of one push and ``max_body_bytes`` the size of any request body
    (a larger one is refused with 413 before it is read whole).
    """

    example = "{tokens_file: api_tokens.json, max_entities: 1000}"
    tokens_file: FilePath | None = None
    max_entities: PositiveInt = 1000
    max_push_rows: PositiveInt = 10_000
    max_body_bytes: PositiveInt = 16 * 1024 * 1024


def _retention_window(value: object) -> timedelta | None:
    if value is None:
        return None
    window = to_duration(value)
    if window <= timedelta(0):
        raise ValueError(
            "must be a positive duration such as 365d or 12h (leave it out to keep rows "
            f"however old), got {value!r}"
        )
    return window


class RetentionConfig(Section):
    """How long the store keeps rows (``retention: {default: 365d}``).

    ``default`` applies to every feature view that sets no ``retention`` of its own; ``None``
    (the default) means rows of such views are kept and served however old they are.
    """

    example = "{default: 365d}"
    default: Annotated[
        timedelta | None,
        BeforeValidator(_retention_window),
        WithJsonSchema({"anyOf": [DURATION_SCHEMA, {"type": "null"}]}),
    ] = None


def _flush_seconds(value: object) -> float:
    flush = to_duration(value)
    if flush <= timedelta(0):
        raise ValueError(f"must be positive, got {flush}")
    return flush.total_seconds()


class AuditConfig(Section):
    """What the audit log records of online reads (``audit: {online_reads: aggregate}``).

    ``online_reads`` is ``aggregate`` (default: one row per principal, view and outcome with a
    count, written every ``flush_seconds``) or ``off``. Denied reads are always recorded, one
    row each, like every other audited action.
    """

    example = "{online_reads: aggregate}"
    online_reads: Literal["aggregate", "off"] = "aggregate"
    flush_seconds: Annotated[
        float, BeforeValidator(_flush_seconds), WithJsonSchema(DURATION_SCHEMA)
    ] = 10.0


# Settings each OpenLineage transport accepts besides ``transport`` and ``namespace``.
_TRANSPORT_SETTINGS: dict[str, set[str]] = {
    "file": {"path"},
    "http": {"url", "endpoint", "api_key", "timeout"},
    "console": set(),
}


def _positive_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return float(value)


class OpenLineageConfig(Section):
    """Where OpenLineage events go (``lineage.openlineage`` in ``featurestore.yaml``).

    ``transport`` is ``file`` (one JSON event per line, appended to ``path``, relative to the
    repository unless absolute), ``http`` (POSTed to ``url`` + ``endpoint``, with ``api_key`` as a
    bearer token, giving up after ``timeout`` seconds) or ``console`` (one JSON line per event on
    standard error). ``namespace`` is the namespace of the jobs the store reports.
    """

    example = "{transport: file, path: data/lineage/events.jsonl}"
    transport: Literal["file", "http", "console"]
    path: str | None = None
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = None
    timeout: Annotated[float, BeforeValidator(_positive_seconds)] = 5.0
    namespace: NonEmpty = "featurestore"

    @field_validator("api_key")
    @classmethod
    def _no_empty_key(cls, value: str | None) -> str | None:
        # An empty key (``${KEY:-}`` with KEY unset) means no key.
        return value or None

    @model_validator(mode="after")
    def _fits_transport(self) -> OpenLineageConfig:
        allowed = _TRANSPORT_SETTINGS[self.transport] | {"namespace", "transport"}
        unknown = sorted(self.model_fields_set - allowed)
        if unknown:
            raise ValueError(
                f"unknown setting(s) {unknown} for transport {self.transport}; "
                f"known: {sorted(allowed)}"
            )
        if self.transport == "file" and not (self.path or "").strip():
            raise ValueError(
                "transport file needs 'path', the events file (relative to the repository), "
                f"got {self.path!r}"
            )
        if self.transport == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError(
                "transport http needs 'url', an http(s) URL such as http://marquez:5000, "
                f"got {self.url!r}"
            )
        if not _module_available("openlineage.client"):
            raise ValueError(
                "is set, but the openlineage-python package is not installed: "
                "pip install 'featurestore[lineage]' (or remove the lineage section)"
            )
        return self


class LineageConfig(Section):
    """The ``lineage`` section: with ``openlineage`` set, OpenLineage events are emitted.

    The lineage graph in the registry is kept either way; this section only adds the events.
    """

    example = "{openlineage: {transport: file, path: data/lineage/events.jsonl}}"
    openlineage: OpenLineageConfig | None = None


def _module_available(name: str) -> bool:
    """Whether an optional package can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


__all__ = [
    "ApiConfig",
    "AuditConfig",
    "LineageConfig",
    "OpenLineageConfig",
    "RetentionConfig",
]
