"""Watermarks belong to an online store: its identity, and switching stores under one registry."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from conftest import require_redis
from test_materialize import DRIVER, T0, H, make_repo, online_state, rows, stats_view, write_source

from featurestore import FeatureStore
from featurestore.online.identity import redis_identity
from featurestore.online.sqlite_store import SQLiteOnlineStore

# A database of this file's own, so nothing here can meet another test's keys.
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL_WATERMARKS", "redis://127.0.0.1:6379/11")


@pytest.mark.parametrize(
    ("url", "prefix", "identity"),
    [
        ("redis://127.0.0.1:6379/0", "fs:", "redis://127.0.0.1:6379/0 prefix fs:"),
        # The password is no part of which store it is; nor is TLS (the same server).
        ("redis://:s3cret@Cache.Local:6380/2", "fs:", "redis://cache.local:6380/2 prefix fs:"),
        ("rediss://user:pw@cache.local:6380/2", "fs:", "redis://cache.local:6380/2 prefix fs:"),
        # Defaults made explicit: port 6379, database 0 (or ?db=).
        ("redis://cache.local", "app:", "redis://cache.local:6379/0 prefix app:"),
        ("redis://cache.local?db=3", "fs:", "redis://cache.local:6379/3 prefix fs:"),
        ("unix:///run/redis.sock?db=1", "fs:", "redis+unix:/run/redis.sock/1 prefix fs:"),
    ],
)
def test_redis_identity_is_the_server_database_and_prefix(
    url: str, prefix: str, identity: str
) -> None:
    assert redis_identity(url, prefix) == identity
    assert "s3cret" not in identity


def test_sqlite_identity_is_the_resolved_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    relative = SQLiteOnlineStore("data/../data/online.db")
    absolute = SQLiteOnlineStore(tmp_path / "data" / "online.db")
    assert relative.identity == absolute.identity == f"sqlite:{tmp_path / 'data' / 'online.db'}"
    assert SQLiteOnlineStore(tmp_path / "other.db").identity != absolute.identity


@pytest.mark.redis
def test_switching_from_sqlite_to_redis_fills_the_new_store(tmp_path: Path) -> None:
    require_redis(REDIS_URL)
    project = f"switch_{uuid.uuid4().hex[:10]}"
    repo = make_repo(tmp_path, "sqlite", project)
    registry = f"sqlite:///{repo / 'data' / 'registry.db'}"
    with FeatureStore(repo) as fs:
        write_source(fs, rows((1, T0, T0, 0.1, 1), (2, T0, T0, 0.2, 2)))
        fs.apply([DRIVER, stats_view()])
        assert fs.materialize_incremental(T0 + H).view("driver_stats").written == 2
        sqlite_store = fs.online.identity

    # The same repository and registry, now serving from Redis.
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: {registry}\n"
        f"online_store: {{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}\n"
    )
    with FeatureStore(repo) as fs:
        try:
            assert fs.online.identity != sqlite_store
            # The SQLite store's watermark says nothing about Redis: everything is copied.
            run = fs.materialize_incremental(T0 + H).view("driver_stats")
            assert run.written == 2
            assert set(online_state(fs, "driver_stats", [1, 2])) == {1, 2}
            for identity in (sqlite_store, fs.online.identity):
                mark = fs.registry.get_watermark(project, "driver_stats", 1, online_store=identity)
                assert mark is not None
                assert mark.end == T0 + H
            # Redis now has its own watermark: a second run finds nothing new.
            assert fs.materialize_incremental(T0 + H).view("driver_stats").written == 0
            # Tearing Redis down forgets only Redis's watermark.
            fs.teardown()
            assert fs.registry.list_watermarks(project, online_store=fs.online.identity) == {}
            kept = fs.registry.list_watermarks(project, online_store=sqlite_store)
            assert set(kept) == {("driver_stats", 1)}
        finally:
            fs.teardown()
