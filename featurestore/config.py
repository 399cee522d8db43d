"""Reading ``featurestore.yaml``: the project name and which registry and stores to use.

    project: demo
    registry: sqlite:///data/registry.db   # or postgresql+psycopg://...; relative sqlite paths are per repo
    offline_store: {type: duckdb, memory_limit: 2GB, temp_directory: data/duckdb_tmp, threads: 2}
    online_store: {type: sqlite, path: data/online.db}   # or {type: redis, url: redis://...}
    api: {tokens_file: api_tokens.json, max_entities: 1000, max_push_rows: 10000}   # REST service
    lineage: {openlineage: {transport: file, path: data/lineage/events.jsonl}}     # OpenLineage
    retention: {default: 365d}   # views without a retention of their own keep rows this long
    quality: {mode: warn, max_null_rate: 0.5, drift: {psi: 0.2, ks: 0.1}}   # see quality/settings.py

``${VAR}`` and ``${VAR:-default}`` are expanded from the environment before parsing, except on
comment lines (the default applies when the variable is unset). The registry is SQLite or
PostgreSQL.

Every section is a pydantic model (see :mod:`featurestore.config_sections`; the stores' models
are named by the rows of :data:`featurestore.online.backends.ONLINE_BACKENDS` and
:data:`featurestore.offline.backends.OFFLINE_ENGINES`, and ``offline_store`` is validated with
the table as it stands when the file is read: see :func:`config_file_model`): ``featurestore
config schema`` prints the JSON Schema of the file and ``featurestore config show`` the effective
settings with secrets masked. A bad setting is one line naming its path, e.g.
``featurestore.yaml: online_store.expiry_grace must be a non-negative duration ...``.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from featurestore.config_errors import describe
from featurestore.config_sections import (
    ApiConfig,
    AuditConfig,
    LineageConfig,
    OpenLineageConfig,
    RetentionConfig,
)
from featurestore.config_types import Section, parse_duration
from featurestore.errors import ConfigError
from featurestore.offline.backends import (
    DEFAULT_OFFLINE_ENGINE,
    OFFLINE_ENGINES,
    default_offline_settings,
)
from featurestore.offline.lazy import lazy_exports
from featurestore.offline.settings import OfflineStoreSettings
from featurestore.online.backends import (
    DEFAULT_ONLINE_STORE,
    ONLINE_BACKENDS,
    OnlineStoreSettings,
    default_online_settings,
)
from featurestore.quality.settings import QualityConfig

if TYPE_CHECKING:
    from featurestore.offline.duckdb.settings import DuckDBOfflineStoreConfig
    from featurestore.offline.duckdb.settings import (
        DuckDBOfflineStoreConfig as OfflineStoreConfig,
    )
    from featurestore.offline.spark.settings import SparkOfflineStoreConfig

__all__ = [
    "CONFIG_FILE",
    "ApiConfig",
    "AuditConfig",
    "ConfigFile",
    "DuckDBOfflineStoreConfig",
    "LineageConfig",
    "OfflineStoreConfig",
    "OfflineStoreSettings",
    "OnlineStoreConfig",
    "OpenLineageConfig",
    "QualityConfig",
    "RepoConfig",
    "RetentionConfig",
    "SparkOfflineStoreConfig",
    "config_file_model",
    "expand_env",
    "load_config",
    "parse_config",
    "parse_duration",
]

CONFIG_FILE = "featurestore.yaml"
#: Feast's name for the file; recognised only to say that ours is CONFIG_FILE.
FEAST_CONFIG_FILE = "feature_store.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SECTIONS = ("offline_store", "online_store", "api", "retention", "lineage", "audit", "quality")
#: Feast's keys, accepted so a Feast file's first lines work, and ignored.
_FEAST_KEYS = ("provider", "entity_key_serialization_version")

#: The engines' settings models under the names they had before they moved into the engines'
#: packages (imported on first use; new engines are not added here).
__getattr__ = lazy_exports(
    __name__,
    {
        "DuckDBOfflineStoreConfig": "featurestore.offline.duckdb.settings",
        "OfflineStoreConfig": "featurestore.offline.duckdb.settings:DuckDBOfflineStoreConfig",
        "SparkOfflineStoreConfig": "featurestore.offline.spark.settings",
    },
)


def _offline_models() -> tuple[type[OfflineStoreSettings], ...]:
    """The offline engines' settings models, from the table as it stands now."""
    return tuple(row.settings for row in OFFLINE_ENGINES.values())


def _offline_union(models: tuple[type[OfflineStoreSettings], ...]) -> Any:
    """The ``offline_store`` field's type: one of ``models``, picked by ``type``."""
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


#: The settings of any online store (a row of ONLINE_BACKENDS picks the model by ``type``).
OnlineStoreConfig = OnlineStoreSettings
if TYPE_CHECKING:
    _OnlineField = OnlineStoreSettings
    _OfflineField = OfflineStoreSettings
else:
    _OfflineField = _offline_union(_offline_models())
    _OnlineField = Annotated[
        Union[tuple(row.settings for row in ONLINE_BACKENDS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


def _project(value: object) -> str:
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise ValueError(f"must be a name of letters, digits and '_', got {value!r}")
    return value


def _registry(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("path") or value.get("url")
    if not isinstance(value, str) or not value:
        raise ValueError("must be a SQLAlchemy URL such as sqlite:///data/registry.db")
    return value


class ConfigFile(Section):
    """The document ``featurestore.yaml`` holds (``RepoConfig`` adds where the repository is)."""

    project: Annotated[
        str,
        BeforeValidator(_project),
        Field(pattern=_PROJECT.pattern, description="the project's name: letters, digits and '_'"),
    ]
    registry: Annotated[
        str,
        BeforeValidator(_registry),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "properties": {"path": {"type": "string"}, "url": {"type": "string"}},
                    },
                ],
                "description": "A SQLAlchemy URL (sqlite:///data/registry.db or "
                "postgresql+psycopg://...); relative sqlite paths are per repository.",
            }
        ),
    ] = "sqlite:///data/registry.db"
    offline_store: _OfflineField = Field(default_factory=default_offline_settings)
    online_store: _OnlineField = Field(default_factory=default_online_settings)
    api: ApiConfig = Field(default_factory=ApiConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    lineage: LineageConfig = Field(default_factory=LineageConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    provider: Any = Field(default=None, description="Feast's setting, ignored.")
    entity_key_serialization_version: Any = Field(default=None, description="Feast's, ignored.")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        """An empty section (``api:``) means its defaults; a store without ``type`` the
        default type."""
        if not isinstance(raw, dict):
            return raw
        doc = {key: value for key, value in raw.items() if value is not None or key == "registry"}
        online = doc.get("online_store")
        if isinstance(online, dict) and "type" not in online:
            doc["online_store"] = {"type": DEFAULT_ONLINE_STORE, **online}
        offline = doc.get("offline_store")
        if isinstance(offline, dict) and "type" not in offline:
            doc["offline_store"] = {"type": DEFAULT_OFFLINE_ENGINE, **offline}
        return doc


#: The offline engines' models ConfigFile was built with (the table when this module loaded).
_BUILT_WITH = _offline_models()


def config_file_model() -> type[ConfigFile]:
    """The model of ``featurestore.yaml`` for the offline engine table as it stands now.

    :class:`ConfigFile` is built from the table when this module loads; once a row is added
    later (an engine plugin, a test registering a toy engine) this returns a subclass whose
    ``offline_store`` is one of the current rows' models, so the new ``type`` validates with
    its own model and errors read as for any engine. Built once per table content.
    """
    return _config_file_model(_offline_models())


@functools.cache
def _config_file_model(models: tuple[type[OfflineStoreSettings], ...]) -> type[ConfigFile]:
    if models == _BUILT_WITH:
        return ConfigFile
    field = (_offline_union(models), Field(default_factory=default_offline_settings))
    return create_model(
        ConfigFile.__name__, __base__=ConfigFile, __module__=__name__, offline_store=field
    )


@dataclass(frozen=True)
class RepoConfig:
    """The parsed ``featurestore.yaml`` of one feature repository."""

    project: str
    repo_path: Path
    registry: str
    offline_store: OfflineStoreSettings = field(default_factory=default_offline_settings)
    online_store: OnlineStoreConfig = field(default_factory=default_online_settings)
    api: ApiConfig = field(default_factory=ApiConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    lineage: LineageConfig = field(default_factory=LineageConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)

    @property
    def data_dir(self) -> Path:
        """The folder where the store keeps data it owns (``offline_store.data_path``)."""
        path = Path(self.offline_store.data_path)
        return path if path.is_absolute() else self.repo_path / path

    def resolve(self, path: str | None) -> Path | None:
        """A path from the config, relative to the repository unless absolute."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else self.repo_path / p

    def effective(self) -> dict[str, Any]:
        """Every setting in effect, defaults included, as plain YAML-able values (secrets
        included: :func:`featurestore.config_show.mask_secrets` hides them for display)."""
        sections = {name: getattr(self, name).model_dump(mode="json") for name in _SECTIONS}
        return {"project": self.project, "registry": self.registry, **sections}


def expand_env(text: str, source: str) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}``; an unset variable without default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise ConfigError(
                    f"{source}: environment variable {name} is not set (used as ${{{name}}})"
                )
            return default
        return value

    return _ENV.sub(replace, text)


def load_config(repo_path: str | os.PathLike[str]) -> RepoConfig:
    """Read and validate ``featurestore.yaml`` from ``repo_path``."""
    repo = Path(repo_path).resolve()
    path = repo / CONFIG_FILE
    if not path.is_file():
        if (repo / FEAST_CONFIG_FILE).is_file():
            # Not read on purpose: Feast's registry file and store types are not ours, so
            # guessing would half-work; the user writes the few lines once.
            raise ConfigError(
                f"{repo} has Feast's {FEAST_CONFIG_FILE} but no {CONFIG_FILE}: featurestore "
                f"reads its settings from {CONFIG_FILE} only; create it next to the Feast file "
                "with at least 'project: NAME' (see docs/configuration.md: the registry is a "
                "SQLAlchemy URL, not Feast's registry.db, and the online store is "
                f"{' or '.join(ONLINE_BACKENDS)})"
            )
        raise ConfigError(
            f"no {CONFIG_FILE} in {repo}: pass --repo PATH (or repo_path=) pointing at a feature "
            "repository, or create one with `featurestore init`"
        )
    return parse_config(read_yaml(path), repo, str(path))


def read_yaml(path: Path) -> object:
    """The YAML document of ``path`` after ``${VAR}`` expansion (one-line errors)."""
    try:
        return yaml.safe_load(_expand_text(path.read_text(encoding="utf-8"), str(path)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None


def _expand_text(text: str, source: str) -> str:
    """Expand variables before parsing (so ``{memory_limit: ${MEM}}`` works), skipping comment
    lines so a commented-out setting never needs its variable set."""
    lines = text.splitlines(keepends=True)
    return "".join(
        line if line.lstrip().startswith("#") else expand_env(line, source) for line in lines
    )


def parse_config(raw: object, repo: Path, source: str = CONFIG_FILE) -> RepoConfig:
    """Validate an already-parsed YAML document."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping with at least 'project', got {type(raw).__name__}"
        )
    model = config_file_model()
    try:
        doc = model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc.errors(), model, _FEAST_KEYS)}") from None
    return RepoConfig(
        project=doc.project,
        repo_path=repo,
        registry=_registry_url(doc.registry, repo),
        offline_store=doc.offline_store,
        online_store=doc.online_store,
        api=doc.api,
        retention=doc.retention,
        lineage=doc.lineage,
        audit=doc.audit,
        quality=doc.quality,
    )


def _registry_url(value: str, repo: Path) -> str:
    if "://" not in value:
        value = f"sqlite:///{value}"
    prefix = "sqlite:///"
    if (
        value.startswith(prefix)
        and not value.startswith(prefix + "/")
        and value != "sqlite:///:memory:"
    ):
        value = prefix + str(repo / value[len(prefix) :])
    return value
