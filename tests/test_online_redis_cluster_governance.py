"""Erasure, retention and teardown end to end on a real Redis Cluster (3 masters, 3 replicas).

A repository with ``online_store: {type: redis, url: ..., cluster: true}`` is applied, materialized
and pushed to through the facade (the erasure and retention tests' repository, see
``governance_repo``); what is left afterwards is checked on the nodes themselves: every master is
scanned with a plain client of its own, so a key the cluster client would not look for (a wrong
slot, a node it forgot) still counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from governance_repo import NOW, make_store
from redis.crc import key_slot
from redis_cluster import RedisClusterProcesses
from test_erasure import holds_driver, populate
from test_online_redis_cluster import start_redis_cluster
from test_retention import boundary_repo, driver_key

from featurestore import FeatureStore
from featurestore.online.redis_cluster import RedisClusterOnlineStore

pytestmark = pytest.mark.redis

#: Raw rows of a project: (master port, view label ``view vN``, entity key) -> stored value.
Rows = dict[tuple[int, str, bytes], bytes]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    processes = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield processes
    processes.stop()


def cluster_store(cluster: RedisClusterProcesses, repo: Path) -> FeatureStore:
    online = (
        f"online_store: {{type: redis, url: '{cluster.url}', cluster: true, expiry_grace: 3650d}}\n"
    )
    return make_store(repo, "redis-cluster", online=online)


@pytest.fixture
def store(cluster: RedisClusterProcesses, tmp_path: Path) -> Iterator[FeatureStore]:
    fs = cluster_store(cluster, tmp_path)
    try:
        assert isinstance(fs.online, RedisClusterOnlineStore)
        yield fs
    finally:
        fs.teardown()
        fs.close()


def node_rows(cluster: RedisClusterProcesses, store: FeatureStore) -> Rows:
    """Every key of the store's project on every master, read from each node directly."""
    online = store.online
    assert isinstance(online, RedisClusterOnlineStore)
    head = f"{online.key_prefix}{store.project}:".encode()
    rows: Rows = {}
    for port in cluster.masters():
        client = redis.Redis(port=port)
        try:
            for key in client.scan_iter(match=head + b"*", count=1000):
                value = client.get(key)
                assert value is not None
                view, version = key[len(head) : key.index(b"{")].decode().split(":")[:2]
                entity_key = bytes.fromhex(key[key.index(b"{") + 1 : -1].decode())
                rows[(port, f"{view} {version}", entity_key)] = value
        finally:
            client.close()
    return rows


def of_driver(rows: Rows, driver_id: int) -> Rows:
    return {k: v for k, v in rows.items() if holds_driver(k[2], k[1], driver_id)}


def test_erase_leaves_no_row_of_the_entity_on_any_node(
    cluster: RedisClusterProcesses, store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The erasure is verified only once no node holds the entity: a node whose deletes are
    lost leaves residue that the check finds; a second run removes it and is verified."""
    populate(store)
    before = node_rows(cluster, store)
    assert len({port for port, _, _ in before}) >= 2  # the project is spread over the nodes
    erased = of_driver(before, 1001)
    assert sorted(label for _, label, _ in erased) == [
        "driver_push v1", "driver_stats v1", "driver_stats v2", "pair_stats v1", "pair_stats v1"
    ]  # fmt: skip
    # One master (holding one of 1001's rows) loses every delete sent to it.
    online = store.online
    assert isinstance(online, RedisClusterOnlineStore)
    lossy = next(port for port, label, _ in erased if label == "pair_stats v1")
    real_delete = online.delete_entity_keys

    def lost_on_one_node(namespace: Any, keys: Any, *, dry_run: bool = False) -> int:
        if dry_run:
            return real_delete(namespace, keys, dry_run=True)
        owner = online._client.nodes_manager.get_node_from_slot
        redis_keys = online._packed_keys([(namespace, list(keys))])
        kept = [k for k, rk in zip(keys, redis_keys, strict=True)
                if owner(key_slot(rk)).port != lossy]  # fmt: skip
        return real_delete(namespace, kept) if kept else 0

    monkeypatch.setattr(online, "delete_entity_keys", lost_on_one_node)
    first = store.erase(entity={"driver_id": 1001})
    assert not first.verified
    left = of_driver(node_rows(cluster, store), 1001)
    assert left
    assert {port for port, _, _ in left} == {lossy}
    assert {r.name for r in first.residue} == {label for _, label, _ in left}
    assert sum(r.rows for r in first.residue) == len(left)
    monkeypatch.undo()
    # The second run removes what was left, and only then is the erasure verified.
    second = store.erase(entity={"driver_id": 1001})
    assert second.verified
    assert second.residue == []
    assert {(r.place, r.name, r.rows) for r in second.removed if r.place == "online"} == {
        ("online", r.name, r.rows) for r in first.residue
    }
    after = node_rows(cluster, store)
    assert of_driver(after, 1001) == {}
    # Every other row is where it was, byte for byte.
    assert after == {k: v for k, v in before.items() if k not in erased}
    response = store.get_online_features(
        ["driver_stats:rate", "driver_push:trips"],
        entity_rows=[{"driver_id": 1001}, {"driver_id": 7}],
    ).to_dict()
    assert response["rate"] == [None, 1.0]
    assert response["trips"] == [None, 40]


def test_retention_removes_the_old_rows_on_every_node(
    cluster: RedisClusterProcesses, store: FeatureStore
) -> None:
    boundary_repo(store)
    before = node_rows(cluster, store)
    assert len({port for port, _, _ in before}) >= 2
    report = store.enforce_retention(now=NOW)
    removed = {(r.place, r.name): r.rows for r in report.removed}
    assert removed[("online", "driver_push v1")] == 3  # drivers 21, 24 and 25
    after = node_rows(cluster, store)
    gone = {k for k in before if k not in after}
    assert {(label, key) for _, label, key in gone} == {
        ("driver_push v1", driver_key(d)) for d in (21, 24, 25)
    }
    assert after == {k: v for k, v in before.items() if k not in gone}
    assert store.enforce_retention(now=NOW).removed == []


def test_teardown_removes_the_project_from_every_node_and_nothing_else(
    cluster: RedisClusterProcesses, store: FeatureStore, tmp_path: Path
) -> None:
    populate(store)
    other = cluster_store(cluster, tmp_path / "other")
    try:
        populate(other)
        others = node_rows(cluster, other)
        rows = node_rows(cluster, store)
        assert len({port for port, _, _ in rows}) >= 2
        assert store.teardown() == len(rows)
        assert node_rows(cluster, store) == {}
        assert node_rows(cluster, other) == others
        # The watermarks went with the rows: an incremental run fills the store again.
        store.materialize_incremental(NOW)
        assert {label for _, label, _ in node_rows(cluster, store)} >= {"driver_stats v2"}
    finally:
        other.teardown()
        other.close()
