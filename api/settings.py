"""Settings of the REST service, resolved from ``featurestore.yaml`` and the environment.

    api: {tokens_file: api_tokens.json, max_entities: 1000, max_push_rows: 10000,
          max_body_bytes: 16777216}

``FEATURESTORE_API_TOKENS_FILE`` overrides ``api.tokens_file`` (handy in containers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from featurestore.config import ApiConfig, RepoConfig
from featurestore.governance.token_file import TOKENS_FILE_ENV, tokens_file_path

__all__ = ["TOKENS_FILE_ENV", "ApiSettings"]


_DEFAULTS = ApiConfig()


@dataclass(frozen=True)
class ApiSettings:
    """What the service needs beyond the store: where tokens live, the batch limits and the
    largest request body accepted.

    ``tokens_file=None`` means no tokens are configured: the service is open.
    """

    tokens_file: Path | None = None
    max_entities: int = _DEFAULTS.max_entities
    max_push_rows: int = _DEFAULTS.max_push_rows
    max_body_bytes: int = _DEFAULTS.max_body_bytes

    @classmethod
    def from_config(cls, config: RepoConfig) -> ApiSettings:
        """The settings of ``config``'s ``api`` section, with the environment override applied."""
        return cls(
            tokens_file=tokens_file_path(config),
            max_entities=config.api.max_entities,
            max_push_rows=config.api.max_push_rows,
            max_body_bytes=config.api.max_body_bytes,
        )
