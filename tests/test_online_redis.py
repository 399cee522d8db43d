"""The Redis online store: the contract against a real server, key layout, outages and recovery.

Tests use ``FEATURESTORE_TEST_REDIS_URL`` (default: database 13 of the local server) with a key
prefix of their own, removed afterwards. When the server cannot be reached they fail if ``CI`` is
set and are skipped loudly otherwise. Outage tests run a throwaway ``redis-server`` on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import redis
from online_contract import NOW_US, OnlineStoreContract, batch, keys_table, view
from redis.crc import key_slot

from featurestore.config import parse_config
from featurestore.errors import OnlineStoreError
from featurestore.online import FOUND, Namespace, OnlineStore, open_online_store
from featurestore.online.codec import encode_keys
from featurestore.online.redis_store import RedisOnlineStore, _redis_keys

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so Redis tests must run: {reason}")
    pytest.skip(f"REDIS TESTS SKIPPED: {reason}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test server's URL, once it has answered."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(
            f"Redis at {REDIS_URL} is unreachable ({exc}): start it (docker compose up redis) "
            "or set FEATURESTORE_TEST_REDIS_URL"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are removed afterwards."""
    prefix = f"fstest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.mark.redis
class TestRedisContract(OnlineStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, redis_url: str, key_prefix: str) -> Iterator[OnlineStore]:
        # A small chunk size so multi-chunk pipelines are exercised by the contract too.
        store = RedisOnlineStore(redis_url, key_prefix=key_prefix, chunk_size=700)
        yield store
        store.close()


# -- key layout ------------------------------------------------------------------------------


@pytest.mark.redis
def test_key_layout_and_expiry(redis_url: str, key_prefix: str, raw: redis.Redis) -> None:
    store = RedisOnlineStore(redis_url, key_prefix=key_prefix, expiry_grace=timedelta(hours=1))
    v = view(ttl=timedelta(hours=2))
    store.write_batch(Namespace("proj", v, 4), batch(v, {"driver_id": [1]}, [NOW_US + 1]))
    store.close()
    key = f"{key_prefix}proj:stats:v4:{{010000000000000001}}".encode()
    assert list(raw.scan_iter(match=key_prefix + "*")) == [key]
    assert raw.pexpiretime(key) == NOW_US // 1000 + 1 + 3 * 3_600_000  # rounded up to the ms
    assert raw.get(key).startswith(b"\x01")  # type: ignore[union-attr]


@pytest.mark.redis
def test_no_ttl_sets_no_expiry(redis_url: str, key_prefix: str, raw: redis.Redis) -> None:
    store = RedisOnlineStore(redis_url, key_prefix=key_prefix)
    v = view(ttl=None)
    store.write_batch(Namespace("proj", v, 1), batch(v, {"driver_id": [1]}, [NOW_US]))
    store.close()
    (key,) = raw.scan_iter(match=key_prefix + "*")
    assert raw.pttl(key) == -1


def test_hash_tag_is_the_entity_key() -> None:
    store = RedisOnlineStore("redis://127.0.0.1:1/0")
    one = encode_keys(keys_table(driver_id=[1]), ["driver_id"])
    two = encode_keys(keys_table(driver_id=[2]), ["driver_id"])
    a = store._keys(Namespace("proj", view("a"), 1), one)[0]
    b = store._keys(Namespace("other", view("b"), 7), one)[0]
    c = store._keys(Namespace("proj", view("a"), 1), two)[0]
    assert key_slot(a) == key_slot(b)  # every view's row of one entity: one cluster slot
    assert key_slot(a) != key_slot(c)
    store.close()


def test_keys_are_prefix_hex_and_brace_even_for_a_slice() -> None:
    encoded = pa.array([b"\x00\xff", b"", b"\x10{}"]).slice(1)
    assert _redis_keys(b"p:{", encoded) == [b"p:{}", b"p:{107b7d}"]


def test_key_prefix_must_not_hold_hash_tag_braces() -> None:
    with pytest.raises(OnlineStoreError, match="must not contain"):
        RedisOnlineStore("redis://127.0.0.1:6379/0", key_prefix="fs:{x}")


# -- outages ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_redis_is_an_online_store_error_without_the_password() -> None:
    port = _free_port()
    store = RedisOnlineStore(f"redis://:s3cret@127.0.0.1:{port}/0", timeout=2)
    v = view()
    ns = Namespace("proj", v, 1)
    calls = [
        store.ping,
        lambda: store.read(ns, keys_table(driver_id=[1]), ["rate"]),
        lambda: store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US])),
        lambda: store.delete_project("proj"),
    ]
    for call in calls:
        with pytest.raises(OnlineStoreError) as info:
            call()
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "s3cret" not in str(info.value)
        assert "***" in str(info.value)
    store.close()


class ThrowawayRedis:
    """A private ``redis-server`` on a fixed port that a test may kill and restart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def throwaway() -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        _unavailable("redis-server is not on PATH (needed for the outage tests)")
    server = ThrowawayRedis(_free_port())
    server.start()
    yield server
    server.stop()


@pytest.mark.redis
def test_same_store_works_again_after_redis_restarts(throwaway: ThrowawayRedis) -> None:
    store = RedisOnlineStore(throwaway.url, timeout=2)
    v = view()
    ns = Namespace("proj", v, 1)
    assert store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[1.0])).written == 1
    throwaway.stop()
    with pytest.raises(OnlineStoreError, match=f"127.0.0.1:{throwaway.port}"):
        store.read(ns, keys_table(driver_id=[1]), ["rate"])
    with pytest.raises(OnlineStoreError):
        store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[1.0]))
    throwaway.start()  # an empty server (no persistence): the script must be loaded again too
    store.ping()
    assert store.write_batch(ns, batch(v, {"driver_id": [2]}, [NOW_US], rate=[2.0])).written == 1
    out = store.read(ns, keys_table(driver_id=[1, 2]), ["rate"])
    assert out.column(FOUND).to_pylist() == [False, True]
    store.close()


@pytest.mark.redis
def test_write_script_is_reloaded_after_a_script_flush(throwaway: ThrowawayRedis) -> None:
    store = RedisOnlineStore(throwaway.url)
    v = view()
    ns = Namespace("proj", v, 1)
    store.write_batch(ns, batch(v, {"driver_id": [1]}, [NOW_US], rate=[1.0]))
    admin = redis.Redis.from_url(throwaway.url)
    admin.script_flush()
    admin.close()
    result = store.write_batch(
        ns, batch(v, {"driver_id": [1, 2]}, [NOW_US - 1, NOW_US], rate=[7.0, 2.0])
    )
    assert (result.written, result.skipped_older) == (1, 1)
    store.close()


# -- opening the store -----------------------------------------------------------------------


def test_open_online_store_reads_url_prefix_and_grace(tmp_path: Path) -> None:
    config = parse_config(
        {
            "project": "demo",
            "online_store": {
                "type": "redis",
                "url": "redis://127.0.0.1:6379/13",
                "key_prefix": "team:",
                "expiry_grace": "30m",
            },
        },
        tmp_path,
    )
    store = open_online_store(config)
    assert isinstance(store, RedisOnlineStore)
    assert (store.key_prefix, store.expiry_grace) == ("team:", timedelta(minutes=30))
    store.close()


def test_redis_store_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` raise ImportError
    monkeypatch.delitem(sys.modules, "featurestore.online.redis_store")
    config = parse_config({"project": "demo", "online_store": {"type": "redis"}}, tmp_path)
    with pytest.raises(OnlineStoreError, match=r"pip install 'featurestore\[redis\]'"):
        open_online_store(config)


def test_importing_featurestore_does_not_import_redis() -> None:
    code = "import sys, featurestore, featurestore.online; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
