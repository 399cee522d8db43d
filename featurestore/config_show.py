"""What ``featurestore config show`` and ``featurestore config schema`` print.

``show`` prints every setting in effect (defaults filled in, ``${VAR}`` expanded, relative
paths as written) with secrets masked: the password of any URL (``redis://:pw@host``,
``postgresql://user:pw@host/db``), secret query parameters and keys such as ``api_key``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from pydantic.json_schema import GenerateJsonSchema

from featurestore.config import RepoConfig, config_file_model
from featurestore.config_types import format_duration

MASK = "***"
# Settings whose value is a secret however it looks (``tokens_file`` is a path, not one).
_SECRET_KEYS = ("api_key", "password", "secret", "token")


def json_schema() -> str:
    """The JSON Schema of ``featurestore.yaml`` (editors complete and check the file with it),
    with every offline engine in the table now."""
    schema = config_file_model().model_json_schema(mode="validation", schema_generator=_Schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "featurestore.yaml"
    return json.dumps(schema, indent=2, sort_keys=True)


class _Schema(GenerateJsonSchema):
    """Defaults written as the file would hold them (``86400s``, not ISO 8601's ``P1D``)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)


def effective_yaml(config: RepoConfig) -> str:
    """``config``'s settings in effect as YAML, secrets masked."""
    return yaml.safe_dump(mask_secrets(config.effective()), sort_keys=False)


def mask_secrets(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``***`` (mappings and lists walked through)."""
    if isinstance(value, dict):
        return {name: mask_secrets(item, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item, key) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if _is_secret(key):
        return MASK
    return _mask_url(value) if "://" in value else value


def _is_secret(key: str) -> bool:
    name = key.lower()
    return not name.endswith(("_file", "_path")) and any(word in name for word in _SECRET_KEYS)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _is_secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
