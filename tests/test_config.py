"""featurestore.yaml parsing: defaults, env expansion, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.config import load_config
from featurestore.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "featurestore.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_are_embedded(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "project: demo\n"))
    assert config.project == "demo"
    assert config.registry == f"sqlite:///{tmp_path.resolve()}/data/registry.db"
    assert config.offline_store.type == "duckdb"
    assert config.online_store.type == "sqlite"
    assert config.online_store.options == {"path": "data/online.db"}


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
            "project: demo\noffline_store: {type: spark}\n",
            "offline_store type 'spark' is not supported",
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
        ("quality: {mod: warn}\n", r"unknown setting\(s\) \['mod'\]"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, "project: demo\n" + text))
