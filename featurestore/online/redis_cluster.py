"""Redis Cluster: the Redis online store's layout and scripts, split by hash slot.

``online_store: {type: redis, url: redis://127.0.0.1:7000, cluster: true}``. The URL names any
node; the client discovers the others and follows ``MOVED``/``ASK`` redirections, so a failover
or a resharding is handled by redis-py (it refreshes its slot map and retries).

Every key's hash tag is its entity key (see :mod:`featurestore.online.redis_store`), so all views
of one entity live in one slot. What changes against one server:

* a lookup of many keys is grouped by slot: one ``MGET`` per slot, all of one node's ``MGET``\\ s in
  one pipelined round trip, the nodes' round trips overlapping (every node's commands are sent
  before any answer is read), never one command per key (the asyncio client uses redis-py's
  ``mget_nonatomic``, which does the same through a cluster pipeline, its nodes concurrently);
* a write script call takes the keys of one slot only (Lua scripts may not cross slots), so keys
  are grouped by slot before they are chunked; a cluster pipeline sends each node its calls in
  one round trip;
* ``SCAN`` walks every primary; ``UNLINK``/``EXISTS`` of many keys are split by slot.

Writes go to each node in one pipeline of their own (with ``WAIT`` on the same connection when
``replica_acks`` is set). A redirection or a lost node makes the store refresh its slot map and
rerun the calls that did not land, a few times with a short backoff: rerunning is safe, since a
write never replaces a newer row. If the cluster is still down after that, the write fails with
:class:`~featurestore.errors.OnlineStoreError` and nothing after it is acknowledged.
"""

from __future__ import annotations

import contextlib
import time
from binascii import crc_hqx
from collections.abc import Sequence
from typing import Any

import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

try:  # hiredis's marker for an incomplete answer
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - an older redis-py
    _NOT_ENOUGH_DATA = False

from featurestore.online.redis_store import RedisOnlineStore, _Call, _Script

# Errors after which the slot map may be stale: refresh it and retry the calls that failed.
_TOPOLOGY_ERRORS = (
    MovedError,
    AskError,
    TryAgainError,
    ClusterDownError,
    RedisConnectionError,
    RedisTimeoutError,
)
_WRITE_ATTEMPTS = 8
# 16384 hash slots: a CRC16 modulo 16384 is its low 14 bits.
_SLOT_MASK = 16383
_READ_ATTEMPTS = 2


class RedisClusterOnlineStore(RedisOnlineStore):
    """Online rows on a Redis Cluster (``url`` names any of its nodes)."""

    def _connect(self, retry: Retry) -> Any:
        return redis.cluster.RedisCluster.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=retry,
        )

    def _connect_async(self) -> Any:
        retry = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)
        return redis.asyncio.cluster.RedisCluster.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=retry,
        )

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        # A lookup retries once after refreshing the slot map (a node that failed over); past
        # that it fails fast, so REST answers 503 and the caller retries.
        for attempt in range(_READ_ATTEMPTS):
            try:
                return self._mget_by_node(keys)
            except _TOPOLOGY_ERRORS:
                if attempt + 1 == _READ_ATTEMPTS:
                    raise
                self._refresh_slots()
        raise AssertionError("unreachable")

    def _mget_by_node(self, keys: list[bytes]) -> list[bytes | None]:
        """One ``MGET`` per slot; every node's ``MGET``\\ s are sent on one connection of its
        own before any answer is read, so the nodes' round trips overlap (a lookup waits about
        one round trip, not one per node). The commands are packed here and the answers read
        with the connection's parser: redis-py's pipeline costs tens of microseconds per
        command in Python, which a 100-entity lookup (about one slot per key) would pay 200
        times."""
        by_node: dict[str, tuple[Any, list[list[int]]]] = {}
        for slot, group in self._slot_groups(keys).items():
            node = self._primary_of(slot)
            entry = by_node.get(node.name)
            if entry is None:
                entry = by_node[node.name] = (node, [])
            entry[1].append(group)
        values: list[bytes | None] = [None] * len(keys)
        taken: list[tuple[Any, Any, list[list[int]]]] = []
        try:
            for node, groups in by_node.values():
                pool = self._client.get_redis_connection(node).connection_pool
                connection = pool.get_connection()
                taken.append((pool, connection, groups))
                connection.send_packed_command([_packed_mgets(keys, groups)], check_health=False)
            for _, connection, groups in taken:
                answers = _read_answers(connection, len(groups))
                for group, answer in zip(groups, answers, strict=True):
                    for i, value in zip(group, answer, strict=True):
                        values[i] = value
        except BaseException:
            # Answers may be left unread on any of them: never hand those back to the pool.
            for _, connection, _ in taken:
                connection.disconnect()
            raise
        finally:
            for pool, connection, _ in taken:
                pool.release(connection)
        return values

    def close(self) -> None:
        """Close every node's pooled connections (redis-py's ``RedisCluster.close`` leaves them
        open); later calls dial new ones."""
        nodes = list(self._client.nodes_manager.nodes_cache.values())
        self._client.close()
        for node in nodes:
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()

    def _refresh_slots(self) -> None:
        # While a failover is still under way this fails too; the next call tries again.
        with contextlib.suppress(RedisError):
            self._client.nodes_manager.initialize()

    async def _mget_async(self, keys: list[bytes]) -> list[bytes | None]:
        return await self._async_client().mget_nonatomic(keys)  # type: ignore[no-any-return]

    def _same_slot_groups(self, keys: Sequence[bytes]) -> list[list[int]]:
        return list(self._slot_groups(keys).values())

    def _slot_groups(self, keys: Sequence[bytes]) -> dict[int, list[int]]:
        return slot_groups(keys)

    def _primary_of(self, slot: int) -> Any:
        """The master serving ``slot`` in the client's slot map (read as is: redis-py's
        ``get_node_from_slot`` takes a lock and a deprecation check per call, which a lookup
        of a hundred slots would pay a hundred times)."""
        manager = self._client.nodes_manager
        nodes = manager.slots_cache.get(slot)
        return nodes[0] if nodes else manager.get_node_from_slot(slot)

    def _run_script(self, script: _Script, calls: Sequence[_Call]) -> list[Any]:
        """Each node's calls in one pipeline (all keys of a call share a slot, so one node);
        the results in call order."""
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(_WRITE_ATTEMPTS):
            by_node: dict[str, tuple[Any, list[int]]] = {}
            for i in pending:
                node = self._primary_of(key_slot(calls[i][0][0]))
                by_node.setdefault(node.name, (node, []))[1].append(i)
            failed: list[int] = []
            last_error: RedisError | None = None
            for node, positions in by_node.values():
                try:
                    answers = self._run_script_on(
                        self._client.get_redis_connection(node),
                        script,
                        [calls[i] for i in positions],
                    )
                except _TOPOLOGY_ERRORS as exc:
                    failed.extend(positions)
                    last_error = exc
                    continue
                for i, answer in zip(positions, answers, strict=True):
                    results[i] = answer
            if not failed:
                return results
            pending = failed
            if attempt + 1 == _WRITE_ATTEMPTS:
                assert last_error is not None
                raise last_error
            time.sleep(min(0.05 * 2**attempt, 1.0))
            self._refresh_slots()
        return results


def _packed_mgets(keys: Sequence[bytes], groups: Sequence[Sequence[int]]) -> bytes:
    """``MGET`` of each group of ``keys`` in the Redis protocol (RESP), as one buffer."""
    parts: list[bytes] = []
    for group in groups:
        parts.append(b"*%d\r\n$4\r\nMGET\r\n" % (len(group) + 1))
        for i in group:
            key = keys[i]
            parts.append(b"$%d\r\n%s\r\n" % (len(key), key))
    return b"".join(parts)


def _read_answers(connection: Any, count: int) -> list[Any]:
    """The next ``count`` answers on ``connection``. With hiredis (the ``redis`` extra installs
    it) the answers are taken from its reader directly: ``Connection.read_response`` costs a few
    microseconds per answer (it formats the host for its error message every call), which a
    100-entity lookup, about one ``MGET`` per slot, would pay a hundred times. An error answer
    (``MOVED``, ``ASK``, ...) is raised as ``read_response`` raises it."""
    parser = connection._parser
    reader = getattr(parser, "_reader", None)
    if reader is None or not hasattr(reader, "gets"):
        return [connection.read_response() for _ in range(count)]
    answers: list[Any] = []
    try:
        while len(answers) < count:
            answer = reader.gets()
            if answer is _NOT_ENOUGH_DATA:
                parser.read_from_socket()
                continue
            if isinstance(answer, Exception):
                raise answer
            answers.append(answer)
    except OSError as exc:
        # A socket error as ``read_response`` reports it: a connection error (retried after a
        # slot-map refresh).
        raise RedisConnectionError(
            f"Error while reading from {connection.host}:{connection.port}"
        ) from exc
    return answers


def slot_groups(keys: Sequence[bytes]) -> dict[int, list[int]]:
    """Positions of ``keys`` by hash slot."""
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        # redis-py's key_slot, inline: a lookup of 100 entities computes 100 slots.
        start = key.find(b"{")
        if start > -1:
            end = key.find(b"}", start + 1)
            tag = key[start + 1 : end] if end > start + 1 else key
        else:
            tag = key
        slot = crc_hqx(tag, 0) & _SLOT_MASK
        group = groups.get(slot)
        if group is None:
            groups[slot] = [i]
        else:
            group.append(i)
    return groups
