"""The embedded SQLite online store: the contract, plus what only a file-backed store has."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from online_contract import DAY_US, NOW_US, OnlineStoreContract, batch, keys_table, view

from featurestore.config import parse_config, parse_duration
from featurestore.errors import ConfigError, OnlineStoreError
from featurestore.online import FOUND, Namespace, OnlineStore, open_online_store
from featurestore.online.sqlite_store import SQLiteOnlineStore


class TestSQLiteContract(OnlineStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[OnlineStore]:
        store = SQLiteOnlineStore(tmp_path / "online" / "online.db")
        yield store
        store.close()


def test_in_memory_store_works() -> None:
    store = SQLiteOnlineStore(":memory:")
    v = view()
    ns = Namespace("proj", v, 1)
    store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[1.0]))
    assert store.read(ns, keys_table(driver_id=[1]), ["rate"]).column("rate").to_pylist() == [1.0]
    store.close()


def test_written_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    v = view()
    ns = Namespace("proj", v, 1)
    first = SQLiteOnlineStore(path)
    first.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[1.0]))
    second = SQLiteOnlineStore(path)  # another connection sees the committed batch at once
    assert second.read(ns, keys_table(driver_id=[1]), ["rate"]).column(FOUND).to_pylist() == [True]
    first.close()
    second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_writes_purge_expired_rows(tmp_path: Path) -> None:
    store = SQLiteOnlineStore(tmp_path / "online.db", expiry_grace=timedelta(0))
    v = view(ttl=timedelta(hours=1))
    ns = Namespace("proj", v, 1)
    store.write_batch(ns, batch(v, {"driver_id": [1, 2]}, [NOW_US - 2 * DAY_US, NOW_US]))
    store.write_batch(ns, batch(v, {"driver_id": [3]}, [NOW_US]))
    store.close()
    with sqlite3.connect(tmp_path / "online.db") as conn:
        keys = conn.execute("SELECT count(*) FROM online_rows").fetchone()
    conn.close()
    assert keys == (2,)


def test_unwritable_path_is_an_online_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SQLiteOnlineStore(blocker / "online.db")
    with pytest.raises((OnlineStoreError, OSError)):
        store.ping()
    store.close()


def test_corrupt_database_is_an_online_store_error(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SQLiteOnlineStore(path)
    with pytest.raises(OnlineStoreError, match=r"online\.db"):
        store.ping()
    store.close()


# -- configuration -------------------------------------------------------------------------


def test_open_online_store_resolves_the_path_in_the_repo(tmp_path: Path) -> None:
    config = parse_config(
        {
            "project": "demo",
            "online_store": {"type": "sqlite", "path": "data/o.db", "expiry_grace": "2h"},
        },
        tmp_path,
    )
    store = open_online_store(config)
    assert isinstance(store, SQLiteOnlineStore)
    assert store.path == str(tmp_path / "data" / "o.db")
    assert store.expiry_grace == timedelta(hours=2)
    store.ping()
    assert (tmp_path / "data" / "o.db").is_file()
    store.close()


def test_default_online_store_is_sqlite_with_a_day_of_grace(tmp_path: Path) -> None:
    config = parse_config({"project": "demo"}, tmp_path)
    assert config.online_store.expiry_grace == timedelta(days=1)
    store = open_online_store(config)
    assert isinstance(store, SQLiteOnlineStore)
    store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("3600s", timedelta(hours=1)),
        ("1.5h", timedelta(minutes=90)),
        (7200, timedelta(hours=2)),
        (0, timedelta(0)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value, "x") == expected


@pytest.mark.parametrize("value", ["1 week", "-1h", -5, True, "", None, [1]])
def test_bad_durations_are_config_errors(value: object) -> None:
    with pytest.raises(ConfigError, match="expiry_grace must be a non-negative duration"):
        parse_duration(value, "online_store.expiry_grace")


def test_unknown_online_store_setting_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown online_store setting\(s\) \['host'\]"):
        parse_config({"project": "demo", "online_store": {"type": "redis", "host": "x"}}, tmp_path)
