"""featurestore.yaml parsing: defaults, env expansion, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from featurestore.config import load_config, parse_config, read_yaml
from featurestore.errors import ConfigError
from featurestore.online import online_store_identity, open_online_store
from featurestore.online.backends import ONLINE_BACKENDS
from featurestore.online.sqlite_settings import SQLiteOnlineStoreConfig
from featurestore.online.sqlite_store import SQLiteOnlineStore


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "featurestore.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_are_embedded(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "project: demo\n"))
    assert config.project == "demo"
    assert config.registry == f"sqlite:///{tmp_path.resolve()}/data/registry.db"
    assert config.offline_store.type == "duckdb"
    assert config.online_store.type == "sqlite"
    assert config.online_store == SQLiteOnlineStoreConfig(path="data/online.db")


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS_TEST_REGISTRY", "postgresql+psycopg://u@h/db")
    text = "project: demo\nregistry: ${FS_TEST_REGISTRY}\noffline_store: {type: duckdb, memory_limit: ${FS_MEM:-1GB}}\n"
    config = load_config(write(tmp_path, text))
    assert config.registry == "postgresql+psycopg://u@h/db"
    assert config.offline_store.memory_limit == "1GB"


def test_unset_env_var_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FS_SURELY_UNSET is not set"):
        load_config(write(tmp_path, "project: demo\nregistry: ${FS_SURELY_UNSET}\n"))


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"malformed YAML at line 2"):
        load_config(write(tmp_path, "project: demo\nregistry: a: b\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "expected a mapping"),
        ("project: 'bad name'\n", "'project' must be a name"),
        ("project: demo\nregistyr: x\n", r"unknown setting\(s\) \['registyr'\]"),
        (
            "project: demo\noffline_store: {type: bigquery}\n",
            "offline_store type 'bigquery' is not supported",
        ),
        ("project: demo\noffline_store: {threads: 0}\n", "threads must be a positive integer"),
        (
            "project: demo\nonline_store: {type: dynamo}\n",
            "online_store type 'dynamo' is not supported",
        ),
    ],
)
def test_invalid_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no featurestore\.yaml in"):
        load_config(tmp_path)


def test_commented_out_variables_need_not_be_set(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "project: demo\n# registry: ${FS_SURELY_UNSET}\n"))
    assert config.project == "demo"


def test_api_section_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "project: demo\n")).api.max_entities == 1000
    assert load_config(write(tmp_path, "project: demo\n")).api.tokens_file is None
    config = load_config(
        write(tmp_path, "project: demo\napi: {tokens_file: tokens.json, max_entities: 50}\n")
    )
    assert config.api.tokens_file == "tokens.json"
    assert config.api.max_entities == 50
    assert config.api.max_push_rows == 10_000
    assert (
        load_config(write(tmp_path, "project: demo\napi: {max_push_rows: 5}\n")).api.max_push_rows
        == 5
    )
    assert config.api.max_body_bytes == 16 * 1024 * 1024
    body = load_config(write(tmp_path, "project: demo\napi: {max_body_bytes: 1048576}\n")).api
    assert body.max_body_bytes == 1_048_576


def test_store_data_path(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "project: demo\n")).data_dir == tmp_path / "data" / "store"
    config = load_config(write(tmp_path, "project: demo\noffline_store: {data_path: /srv/fs}\n"))
    assert config.data_dir == Path("/srv/fs")
    with pytest.raises(ConfigError, match=r"offline_store\.data_path must be a folder path"):
        load_config(write(tmp_path, "project: demo\noffline_store: {data_path: ''}\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api: [1]\n", "'api' must be a mapping"),
        ("api: {tokens: x}\n", r"unknown api setting\(s\) \['tokens'\]"),
        ("api: {max_entities: 0}\n", "max_entities must be a positive integer"),
        ("api: {max_entities: true}\n", "max_entities must be a positive integer"),
        ("api: {max_entities: '10'}\n", "max_entities must be a positive integer"),
        ("api: {tokens_file: 3}\n", "tokens_file must be a file path"),
        ("api: {max_push_rows: -1}\n", "max_push_rows must be a positive integer"),
        ("api: {max_body_bytes: 0}\n", "max_body_bytes must be a positive integer"),
        ("api: {max_body_bytes: 16MB}\n", "max_body_bytes must be a positive integer"),
    ],
)
def test_invalid_api_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "project: demo\n" + text))


def test_audit_section(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, "project: demo\n")).audit
    assert (default.online_reads, default.flush_seconds) == ("aggregate", 10.0)
    config = load_config(
        write(tmp_path, "project: demo\naudit: {online_reads: 'off', flush_seconds: 2s}\n")
    )
    assert (config.audit.online_reads, config.audit.flush_seconds) == ("off", 2.0)
    for text, message in [
        ("audit: [1]\n", "'audit' must be a mapping"),
        ("audit: {online_reads: sample}\n", "online_reads must be 'aggregate' or 'off'"),
        ("audit: {flush_seconds: 0}\n", "flush_seconds must be positive"),
        ("audit: {reads: 'off'}\n", r"unknown audit setting\(s\) \['reads'\]"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, "project: demo\n" + text))


def test_quality_section(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, "project: demo\n")).quality
    assert (default.mode, default.max_null_rate, default.push_flush_seconds) == ("warn", 0.5, 10.0)
    drift = default.drift
    assert (drift.psi, drift.ks, drift.chi2_p_value, drift.null_rate) == (0.2, 0.1, 0.01, 0.1)
    config = load_config(
        write(
            tmp_path,
            "project: demo\nquality: {mode: strict, max_null_rate: 0.1, push_flush_seconds: 0,"
            " drift: {psi: 0.1, ks: 0, chi2_p_value: 0.05}}\n",
        )
    ).quality
    assert (config.mode, config.max_null_rate, config.push_flush_seconds) == ("strict", 0.1, 0.0)
    assert (config.drift.psi, config.drift.ks, config.drift.chi2_p_value) == (0.1, 0.0, 0.05)
    for text, message in [
        ("quality: [1]\n", "'quality' must be a mapping"),
        ("quality: {mode: loud}\n", "quality.mode must be 'warn' or 'strict', got 'loud'"),
        ("quality: {max_null_rate: 1.5}\n", r"quality\.max_null_rate must be between 0 and 1"),
        ("quality: {max_null_rate: true}\n", r"quality\.max_null_rate must be a number"),
        ("quality: {push_flush_seconds: -1}\n", "0 records every push"),
        ("quality: {drift: {psi: -1}}\n", r"quality\.drift\.psi must be a number >= 0"),
        ("quality: {drift: {ks: 2}}\n", r"quality\.drift\.ks must be between 0 and 1"),
        ("quality: {drift: {null_rate: 2}}\n", r"drift\.null_rate must be between 0 and 1"),
        ("quality: {drift: {kl: 1}}\n", r"unknown setting\(s\) \['kl'\]"),
        ("quality: {mod: warn}\n", r"unknown quality setting\(s\) \['mod'\]"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, "project: demo\n" + text))


REPO_ROOT = Path(__file__).resolve().parent.parent


def featurestore_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real ``featurestore`` command of this interpreter, in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = "from featurestore.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_config_schema_is_a_json_schema_of_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = featurestore_cli("config", "schema", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    # The deployment's file is all ${VAR}s: check it as the service reads it.
    monkeypatch.setenv("FEATURESTORE_REGISTRY", "postgresql+psycopg://fs:pw@db/fs")
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", "redis://redis:6379/0")
    for shipped in ("repo/featurestore.yaml", "deploy/featurestore.yaml"):
        document = read_yaml(REPO_ROOT / shipped)
        assert list(validator.iter_errors(document)) == [], shipped
    # What the loader refuses, the schema refuses too (so editors flag it while typing).
    for bad in [
        {"project": "demo", "online_store": {"type": "dynamo"}},
        {"project": "demo", "online_store": {"type": "sqlite", "url": "redis://x"}},
        {"project": "demo", "audit": {"online_reads": "sample"}},
        {"project": "demo", "online_store": {"type": "redis", "expiry_grace": "1 week"}},
        {"project": "demo", "offline_store": {"memory_limit": "lots"}},
        {"registry": "sqlite:///r.db"},
    ]:
        assert not validator.is_valid(bad), bad
        with pytest.raises(ConfigError):
            parse_config(bad, tmp_path)


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS_TEST_REDIS_PASSWORD", "s3cret-redis")
    write(
        tmp_path,
        "project: demo\n"
        "registry: postgresql+psycopg://fs:s3cret-pg@db:5432/fs\n"
        "online_store: {type: redis, url: 'redis://:${FS_TEST_REDIS_PASSWORD}@cache:6379/2',"
        " expiry_grace: 2h}\n"
        "lineage: {openlineage: {transport: http, url: 'http://marquez:5000',"
        " api_key: s3cret-key}}\n",
    )
    out = featurestore_cli("--repo", str(tmp_path), "config", "show", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "s3cret" not in out.stdout
    shown = yaml.safe_load(out.stdout)
    assert shown["online_store"]["url"] == "redis://:***@cache:6379/2"
    assert shown["registry"] == "postgresql+psycopg://fs:***@db:5432/fs"
    assert shown["lineage"]["openlineage"]["api_key"] == "***"
    # Everything else as in effect, defaults included, durations as the file writes them.
    assert shown["online_store"]["expiry_grace"] == "2h"
    assert shown["api"]["max_entities"] == 1000
    assert shown["offline_store"]["data_path"] == "data/store"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "online_store: {type: redis, url: 'redis://h:6379/0', hots: x}\n",
            "unknown online_store setting(s) ['hots'] for type redis; known: "
            "['cluster', 'expiry_grace', 'key_prefix', 'replica_acks', 'timeout', 'type', 'url']",
        ),
        (
            "quality: {drift: {kl: 1}}\n",
            "quality.drift: unknown setting(s) ['kl']; known: "
            "['chi2_p_value', 'ks', 'null_rate', 'psi']",
        ),
        (
            "audit: {online_reads: sample}\n",
            "audit.online_reads must be 'aggregate' or 'off', got 'sample'",
        ),
        (
            "offline_store: {type: bigquery}\n",
            "offline_store type 'bigquery' is not supported; use duckdb or spark",
        ),
        (
            "online_store: {type: sqlite, expiry_grace: 1 week}\n",
            "online_store.expiry_grace must be a non-negative duration such as 1d, 12h, 30m, "
            "3600s or a number of seconds, got '1 week'",
        ),
        (
            "offline_store: {memory_limit: lots}\n",
            "offline_store.memory_limit must be a size such as 2GB, 512MB or 1.5GiB, got 'lots'",
        ),
        (
            "offline_store: {type: spark, conf: 'spark.executor.memory=4g'}\n",
            "offline_store.conf must be a mapping like {...}",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_path(tmp_path: Path, text: str, line: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "project: demo\n" + text))
    assert str(raised.value) == f"{tmp_path.resolve() / 'featurestore.yaml'}: {line}"


def test_online_stores_come_from_the_backend_table(tmp_path: Path) -> None:
    schema = json.loads(featurestore_cli("config", "schema", cwd=tmp_path).stdout)
    assert set(schema["properties"]["online_store"]["discriminator"]["mapping"]) == set(
        ONLINE_BACKENDS
    )
    config = parse_config({"project": "demo", "online_store": {"path": "x/o.db"}}, tmp_path)
    store = open_online_store(config)
    try:
        assert isinstance(store, SQLiteOnlineStore)
        assert store.identity == online_store_identity(config) == f"sqlite:{tmp_path / 'x/o.db'}"
    finally:
        store.close()
