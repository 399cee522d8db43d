"""Redis Cluster: the Redis online store's layout and scripts, split by hash slot.

``online_store: {type: redis, url: redis://127.0.0.1:7000, cluster: true}``. The URL names any
node; the client discovers the others and follows ``MOVED``/``ASK`` redirections, so a failover
or a resharding is handled by redis-py (it refreshes its slot map and retries).

Every key's hash tag is its entity key (see :mod:`featurestore.online.redis_store`), so all views
of one entity live in one slot. What changes against one server:

* a lookup of many keys is grouped by slot: one ``MGET`` per slot, all of one node's ``MGET``\\ s in
  one pipelined round trip, never one command per key (the asyncio client uses redis-py's
  ``mget_nonatomic``, which does the same through a cluster pipeline);
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
        """One ``MGET`` per slot, each node's in one plain pipeline: a cluster pipeline costs
        tens of microseconds per command in Python, a node's own pipeline a few."""
        manager = self._client.nodes_manager
        by_node: dict[str, tuple[Any, list[list[int]]]] = {}
        for group in self._same_slot_groups(keys):
            node = manager.get_node_from_slot(key_slot(keys[group[0]]))
            by_node.setdefault(node.name, (node, []))[1].append(group)
        values: list[bytes | None] = [None] * len(keys)
        for node, groups in by_node.values():
            with self._client.get_redis_connection(node).pipeline(transaction=False) as pipe:
                for group in groups:
                    pipe.execute_command("MGET", *(keys[i] for i in group))
                answers = pipe.execute()
            for group, answer in zip(groups, answers, strict=True):
                for i, value in zip(group, answer, strict=True):
                    values[i] = value
        return values

    def _refresh_slots(self) -> None:
        # While a failover is still under way this fails too; the next call tries again.
        with contextlib.suppress(RedisError):
            self._client.nodes_manager.initialize()

    async def _mget_async(self, keys: list[bytes]) -> list[bytes | None]:
        return await self._async_client().mget_nonatomic(keys)  # type: ignore[no-any-return]

    def _same_slot_groups(self, keys: Sequence[bytes]) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key_slot(key), []).append(i)
        return list(groups.values())

    def _run_script(self, script: _Script, calls: Sequence[_Call]) -> list[Any]:
        """Each node's calls in one pipeline (all keys of a call share a slot, so one node);
        the results in call order."""
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(_WRITE_ATTEMPTS):
            by_node: dict[str, tuple[Any, list[int]]] = {}
            manager = self._client.nodes_manager
            for i in pending:
                node = manager.get_node_from_slot(key_slot(calls[i][0][0]))
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
