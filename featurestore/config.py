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
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from featurestore.errors import ConfigError
from featurestore.quality.settings import QualityConfig, parse_quality

CONFIG_FILE = "featurestore.yaml"
#: Feast's name for the file; recognised only to say that ours is CONFIG_FILE.
FEAST_CONFIG_FILE = "feature_store.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)?\s*$")
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}
# Settings each online store accepts besides ``type`` (``expiry_grace`` is common to both).
_ONLINE_OPTIONS = {"sqlite": {"path"}, "redis": {"url", "key_prefix", "cluster", "replica_acks"}}
# Settings each OpenLineage transport accepts besides ``transport`` and ``namespace``.
_OPENLINEAGE_OPTIONS: dict[str, set[str]] = {
    "file": {"path"},
    "http": {"url", "endpoint", "api_key", "timeout"},
    "console": set(),
}


@dataclass(frozen=True)
class OfflineStoreConfig:
    """Settings of the DuckDB offline engine.

    ``data_path`` is the folder of data the store itself owns (rows pushed to the offline store),
    relative to the repository unless absolute; no feature view's source may read from it.
    """

    type: str = "duckdb"
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = None
    data_path: str = "data/store"


@dataclass(frozen=True)
class OnlineStoreConfig:
    """Which online store to use; the keys beyond ``type`` are the store's own settings.

    ``expiry_grace`` is how long a row stays stored after its view's TTL has passed (default one
    day), so lookups can still report it as outside its max age before it disappears.
    """

    type: str = "sqlite"
    options: dict[str, Any] = field(default_factory=dict)
    expiry_grace: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class ApiConfig:
    """Settings of the REST service (``featurestore serve``).

    ``tokens_file`` holds hashed bearer tokens (relative to the repository unless absolute;
    ``None``: the service is open); ``max_entities`` caps the entity rows of one lookup,
    ``max_push_rows`` the rows of one push and ``max_body_bytes`` the size of any request body
    (a larger one is refused with 413 before it is read whole).
    """

    tokens_file: str | None = None
    max_entities: int = 1000
    max_push_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class RetentionConfig:
    """How long the store keeps rows (``retention: {default: 365d}``).

    ``default`` applies to every feature view that sets no ``retention`` of its own; ``None``
    (the default) means rows of such views are kept and served however old they are.
    """

    default: timedelta | None = None


@dataclass(frozen=True)
class AuditConfig:
    """What the audit log records of online reads (``audit: {online_reads: aggregate}``).

    ``online_reads`` is ``aggregate`` (default: one row per principal, view and outcome with a
    count, written every ``flush_seconds``) or ``off``. Denied reads are always recorded, one
    row each, like every other audited action.
    """

    online_reads: str = "aggregate"
    flush_seconds: float = 10.0


@dataclass(frozen=True)
class OpenLineageConfig:
    """Where OpenLineage events go (``lineage.openlineage`` in ``featurestore.yaml``).

    ``transport`` is ``file`` (one JSON event per line, appended to ``path``, relative to the
    repository unless absolute), ``http`` (POSTed to ``url`` + ``endpoint``, with ``api_key`` as a
    bearer token, giving up after ``timeout`` seconds) or ``console`` (one JSON line per event on
    standard error). ``namespace`` is the namespace of the jobs the store reports.
    """

    transport: str
    path: str | None = None
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = None
    timeout: float = 5.0
    namespace: str = "featurestore"


@dataclass(frozen=True)
class LineageConfig:
    """The ``lineage`` section: with ``openlineage`` set, OpenLineage events are emitted.

    The lineage graph in the registry is kept either way; this section only adds the events.
    """

    openlineage: OpenLineageConfig | None = None


@dataclass(frozen=True)
class RepoConfig:
    """The parsed ``featurestore.yaml`` of one feature repository."""

    project: str
    repo_path: Path
    registry: str
    offline_store: OfflineStoreConfig = field(default_factory=OfflineStoreConfig)
    online_store: OnlineStoreConfig = field(default_factory=OnlineStoreConfig)
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
                "SQLAlchemy URL, not Feast's registry.db, and the online store is sqlite or redis)"
            )
        raise ConfigError(
            f"no {CONFIG_FILE} in {repo}: pass --repo PATH (or repo_path=) pointing at a feature "
            "repository, or create one with `featurestore init`"
        )
    try:
        raw = yaml.safe_load(_expand_text(path.read_text(encoding="utf-8"), str(path)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    return parse_config(raw, repo, str(path))


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
    known = {
        "project",
        "registry",
        "offline_store",
        "online_store",
        "api",
        "retention",
        "lineage",
        "audit",
        "quality",
        "provider",
        "entity_key_serialization_version",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting(s) {unknown}; known: {sorted(known - {'provider', 'entity_key_serialization_version'})}"
        )
    project = raw.get("project")
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise ConfigError(
            f"{source}: 'project' must be a name of letters, digits and '_', got {project!r}"
        )
    registry = _registry_url(raw.get("registry", "sqlite:///data/registry.db"), repo, source)
    return RepoConfig(
        project=project,
        repo_path=repo,
        registry=registry,
        offline_store=_offline(raw.get("offline_store"), source),
        online_store=_online(raw.get("online_store"), source),
        api=_api(raw.get("api"), source),
        retention=_retention(raw.get("retention"), source),
        lineage=_lineage(raw.get("lineage"), source),
        audit=_audit(raw.get("audit"), source),
        quality=parse_quality(raw.get("quality"), source),
    )


def _registry_url(value: object, repo: Path, source: str) -> str:
    if isinstance(value, dict):
        value = value.get("path") or value.get("url")
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{source}: 'registry' must be a SQLAlchemy URL such as sqlite:///data/registry.db"
        )
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


def _offline(value: object, source: str) -> OfflineStoreConfig:
    if value is None:
        return OfflineStoreConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: 'offline_store' must be a mapping like {{type: duckdb}}")
    options = dict(value)
    kind = options.pop("type", "duckdb")
    if kind != "duckdb":
        raise ConfigError(f"{source}: offline_store type {kind!r} is not supported; use duckdb")
    allowed = {"memory_limit", "temp_directory", "threads", "data_path"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown offline_store setting(s) {unknown}; known: {sorted(allowed)}"
        )
    threads = options.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(
            f"{source}: offline_store.threads must be a positive integer, got {threads!r}"
        )
    memory = options.get("memory_limit")
    data_path = options.get("data_path", OfflineStoreConfig.data_path)
    if not isinstance(data_path, str) or not data_path.strip():
        raise ConfigError(
            f"{source}: offline_store.data_path must be a folder path, got {data_path!r}"
        )
    return OfflineStoreConfig(
        type=kind,
        memory_limit=None if memory is None else str(memory),
        temp_directory=options.get("temp_directory"),
        threads=threads,
        data_path=data_path,
    )


def _online(value: object, source: str) -> OnlineStoreConfig:
    if value is None:
        value = {"type": "sqlite"}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: 'online_store' must be a mapping like {{type: sqlite, path: data/online.db}}"
        )
    options = dict(value)
    kind = options.pop("type", "sqlite")
    if kind not in _ONLINE_OPTIONS:
        raise ConfigError(
            f"{source}: online_store type {kind!r} is not supported; use sqlite or redis"
        )
    grace = parse_duration(
        options.pop("expiry_grace", 86400), f"{source}: online_store.expiry_grace"
    )
    allowed = _ONLINE_OPTIONS[kind] | {"expiry_grace"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown online_store setting(s) {unknown} for type {kind}; known: {sorted(allowed)}"
        )
    if kind == "sqlite":
        options.setdefault("path", "data/online.db")
    if not isinstance(options.get("cluster", False), bool):
        raise ConfigError(
            f"{source}: online_store.cluster must be true or false, not {options['cluster']!r}"
        )
    acks = options.get("replica_acks", 0)
    if isinstance(acks, bool) or not isinstance(acks, int) or acks < 0:
        raise ConfigError(
            f"{source}: online_store.replica_acks must be a whole number >= 0, not {acks!r}"
        )
    return OnlineStoreConfig(type=str(kind), options=options, expiry_grace=grace)


def _api(value: object, source: str) -> ApiConfig:
    if value is None:
        return ApiConfig()
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: 'api' must be a mapping like {{tokens_file: api_tokens.json, max_entities: 1000}}"
        )
    allowed = {"tokens_file", "max_entities", "max_push_rows", "max_body_bytes"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown api setting(s) {unknown}; known: {sorted(allowed)}")
    tokens_file = value.get("tokens_file")
    if tokens_file is not None and (not isinstance(tokens_file, str) or not tokens_file):
        raise ConfigError(
            f"{source}: api.tokens_file must be a file path (relative to the repository), "
            f"got {tokens_file!r}"
        )
    limits = {
        name: _positive_int(value.get(name, getattr(ApiConfig, name)), f"{source}: api.{name}")
        for name in ("max_entities", "max_push_rows", "max_body_bytes")
    }
    return ApiConfig(tokens_file=tokens_file, **limits)


def _audit(value: object, source: str) -> AuditConfig:
    if value is None:
        return AuditConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: 'audit' must be a mapping like {{online_reads: aggregate}}")
    unknown = sorted(set(value) - {"online_reads", "flush_seconds"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown audit setting(s) {unknown}; known: ['flush_seconds', 'online_reads']"
        )
    reads = value.get("online_reads", AuditConfig.online_reads)
    if reads not in ("aggregate", "off"):
        raise ConfigError(
            f"{source}: audit.online_reads must be 'aggregate' or 'off', got {reads!r}"
        )
    flush = parse_duration(
        value.get("flush_seconds", AuditConfig.flush_seconds), f"{source}: audit.flush_seconds"
    )
    if flush <= timedelta(0):
        raise ConfigError(f"{source}: audit.flush_seconds must be positive, got {flush}")
    return AuditConfig(online_reads=reads, flush_seconds=flush.total_seconds())


def _retention(value: object, source: str) -> RetentionConfig:
    if value is None:
        return RetentionConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: 'retention' must be a mapping like {{default: 365d}}")
    unknown = sorted(set(value) - {"default"})
    if unknown:
        raise ConfigError(f"{source}: unknown retention setting(s) {unknown}; known: ['default']")
    default = value.get("default")
    if default is None:
        return RetentionConfig()
    what = f"{source}: retention.default"
    window = parse_duration(default, what)
    if window <= timedelta(0):
        raise ConfigError(
            f"{what} must be a positive duration such as 365d or 12h (leave it out to keep "
            f"rows however old), got {default!r}"
        )
    return RetentionConfig(default=window)


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


def _lineage(value: object, source: str) -> LineageConfig:
    if value is None:
        return LineageConfig()
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: 'lineage' must be a mapping like "
            "{openlineage: {transport: file, path: data/lineage/events.jsonl}}"
        )
    unknown = sorted(set(value) - {"openlineage"})
    if unknown:
        raise ConfigError(f"{source}: unknown lineage setting(s) {unknown}; known: ['openlineage']")
    openlineage = value.get("openlineage")
    if openlineage is None:
        return LineageConfig()
    return LineageConfig(openlineage=_openlineage(openlineage, f"{source}: lineage.openlineage"))


def _openlineage(value: object, where: str) -> OpenLineageConfig:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a mapping like {{transport: file, path: data/lineage/events.jsonl}}"
        )
    options = dict(value)
    transport = options.pop("transport", None)
    if transport not in _OPENLINEAGE_OPTIONS:
        raise ConfigError(
            f"{where}.transport must be one of {sorted(_OPENLINEAGE_OPTIONS)}, got {transport!r}"
        )
    allowed = _OPENLINEAGE_OPTIONS[transport] | {"namespace"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {unknown} for transport {transport}; "
            f"known: {sorted(allowed | {'transport'})}"
        )
    namespace = options.get("namespace", OpenLineageConfig.namespace)
    if not isinstance(namespace, str) or not namespace.strip():
        raise ConfigError(f"{where}.namespace must be a non-empty string, got {namespace!r}")
    if transport == "file":
        path = options.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(
                f"{where}: transport file needs 'path', the events file (relative to the "
                f"repository), got {path!r}"
            )
        config = OpenLineageConfig(transport=transport, namespace=namespace, path=path)
    elif transport == "http":
        config = _openlineage_http(options, namespace, where)
    else:
        config = OpenLineageConfig(transport=transport, namespace=namespace)
    if not _module_available("openlineage.client"):
        raise ConfigError(
            f"{where} is set, but the openlineage-python package is not installed: "
            "pip install 'featurestore[lineage]' (or remove the lineage section)"
        )
    return config


def _openlineage_http(options: dict[str, Any], namespace: str, where: str) -> OpenLineageConfig:
    url = options.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{where}: transport http needs 'url', an http(s) URL such as "
            f"http://marquez:5000, got {url!r}"
        )
    endpoint = options.get("endpoint", OpenLineageConfig.endpoint)
    if not isinstance(endpoint, str):
        raise ConfigError(f"{where}.endpoint must be a URL path, got {endpoint!r}")
    api_key = options.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigError(f"{where}.api_key must be a string such as ${{OPENLINEAGE_API_KEY}}")
    timeout = options.get("timeout", OpenLineageConfig.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}.timeout must be a positive number of seconds, got {timeout!r}")
    return OpenLineageConfig(
        transport="http",
        namespace=namespace,
        url=url,
        endpoint=endpoint,
        # An empty key (``${KEY:-}`` with KEY unset) means no key.
        api_key=api_key or None,
        timeout=float(timeout),
    )


def _module_available(name: str) -> bool:
    """Whether an optional package can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def parse_duration(value: object, what: str) -> timedelta:
    """A duration from the config: a number of seconds or a string like ``"1d"``, ``"12h"``,
    ``"30m"``, ``"3600s"`` or ``"500ms"``."""
    if isinstance(value, bool):  # bool is an int subclass; ``true`` is never a duration
        match = None
    elif isinstance(value, int | float):
        if value >= 0:
            return timedelta(seconds=value)
        match = None
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(
            f"{what} must be a non-negative duration such as 1d, 12h, 30m, 3600s or a number "
            f"of seconds, got {value!r}"
        )
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])
