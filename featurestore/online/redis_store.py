"""The production online store: Redis, through redis-py (hiredis parser) and a connection pool.

Key layout: one string key per (view version, entity key), holding the view's packed row (see
:mod:`featurestore.online.codec`)::

    <key_prefix><project>:<view>:v<version>:{<hex of the typed entity key>}
    e.g.  fs:demo:driver_stats:v3:{010000000000000001}

* The hash tag ``{...}`` is the entity key, so on Redis Cluster every view's row of one entity
  lives in one slot (a lookup of several views for one entity touches one node) while different
  entities spread over all slots. It is hex so no ``}`` byte can end the tag early.
* The namespace comes first so ``delete_project`` can ``SCAN MATCH <prefix><project>:*`` (and
  retention and erasure a namespace's ``<prefix><project>:<view>:v<N>:{*``), and version 2's keys
  never touch version 1's.
* A lookup of N keys is one ``MGET``. Writes run a Lua script (``EVALSHA``, loaded once, reloaded
  on ``NOSCRIPT``) over up to ``chunk_size`` keys per call, pipelined: for each key it compares
  the stored row's 16 header bytes with the new row's byte by byte (no Lua numbers, which are
  doubles, and no locale-dependent string comparison) and sets the new row, with ``PXAT`` expiry
  at ``event_ts + ttl + expiry_grace`` when the view has a TTL, only if it is at least as new.

On Redis Cluster (:class:`~featurestore.online.redis_cluster.RedisClusterOnlineStore`) the same
layout holds; reads and script calls are split by hash slot there, through the hooks below.

Every Redis failure surfaces as :class:`~featurestore.errors.OnlineStoreError` naming the server
(without its password); a broken connection is dropped from the pool and re-dialled on the next
call, so the store works again as soon as Redis is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from featurestore.errors import OnlineStoreError
from featurestore.online.base import (
    Namespace,
    OnlineStore,
    StateUpdate,
    SupportsRowDeletion,
    SupportsStateUpdates,
    WriteResult,
)
from featurestore.online.codec import (
    HEADER_END,
    CodecCache,
    binary_parts,
    encode_keys,
    header_timestamp,
    hex_digits,
)
from featurestore.online.identity import DEFAULT_REDIS_PREFIX, redis_identity
from featurestore.online.redis_states import COMPARE_AND_SET, update_states

if TYPE_CHECKING:
    from featurestore.config import RepoConfig
    from featurestore.online.backends import OnlineStoreSettings

# KEYS: row keys. ARGV: per key, the packed row then its PXAT (epoch ms; "0": no expiry).
# Returns how many rows were written.
_WRITE_SCRIPT = f"""
local written = 0
for i = 1, #KEYS do
  local new = ARGV[2 * i - 1]
  local old = redis.call('GET', KEYS[i])
  local newer = true
  -- Equal headers (a re-run) are the common case and need no byte loop.
  if old and #old >= {HEADER_END} and string.sub(old, 2, {HEADER_END}) ~= string.sub(new, 2, {HEADER_END}) then
    for j = 2, {HEADER_END} do
      local a, b = string.byte(new, j), string.byte(old, j)
      if a ~= b then
        newer = a > b
        break
      end
    end
  end
  if newer then
    local at = ARGV[2 * i]
    if at == '0' then
      redis.call('SET', KEYS[i], new)
    else
      redis.call('SET', KEYS[i], new, 'PXAT', at)
    end
    written = written + 1
  end
end
return written
"""


@dataclass(frozen=True)
class _Script:
    """A Lua script run by ``EVALSHA`` (loaded on ``NOSCRIPT``)."""

    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


#: One script call: its keys and its arguments.
_Call = tuple[list[bytes], list[Any]]
_WRITE = _Script(_WRITE_SCRIPT)
_COMPARE_AND_SET = _Script(COMPARE_AND_SET)

# KEYS: row keys. ARGV[1]: "1" to remove the rows older than their cut-off, "0" to count them;
# ARGV[i + 1]: the cut-off of KEYS[i] as a row header stores event times (8 bytes, see codec).
# Returns 1 per key whose row is older, else 0. Deciding and removing in one script keeps a row
# that a concurrent write has just made newer.
_OLDER_THAN_SCRIPT = """
local older = {}
for i = 1, #KEYS do
  older[i] = 0
  local event, cutoff = redis.call('GETRANGE', KEYS[i], 1, 8), ARGV[i + 1]
  if #event == 8 then
    for j = 1, 8 do
      local a, b = string.byte(event, j), string.byte(cutoff, j)
      if a ~= b then
        if a < b then
          older[i] = 1
          if ARGV[1] == '1' then
            redis.call('UNLINK', KEYS[i])
          end
        end
        break
      end
    end
  end
end
return older
"""


class RedisOnlineStore(OnlineStore, SupportsRowDeletion, SupportsStateUpdates):
    """Online rows in Redis (``url`` like ``redis://host:6379/0``; ``rediss://`` for TLS).

    ``chunk_size`` keys go to one script call (it blocks the server while it runs, so keep it in
    the low thousands); ``chunks_per_round_trip`` calls share one pipeline round trip.
    ``replica_acks`` > 0 acknowledges a write only once that many replicas hold it (``WAIT``), so
    a failover loses no acknowledged write.
    """

    DEFAULT_PREFIX = DEFAULT_REDIS_PREFIX

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        expiry_grace: timedelta = timedelta(days=1),
        chunk_size: int = 1000,
        chunks_per_round_trip: int = 20,
        timeout: float = 10.0,
        replica_acks: int = 0,
    ) -> None:
        if "{" in key_prefix or "}" in key_prefix:
            raise OnlineStoreError(
                f"redis key_prefix {key_prefix!r} must not contain '{{' or '}}' (they mark the "
                "hash tag of every key)"
            )
        self.url = url
        self.shown_url = _without_password(url)
        self.key_prefix = key_prefix
        self.expiry_grace = expiry_grace
        self.chunk_size = chunk_size
        self.chunks_per_round_trip = chunks_per_round_trip
        self.replica_acks = replica_acks
        self._codecs = CodecCache()
        # Few, quick retries: enough to redial a connection Redis closed (a restart), not so many
        # that an outage takes long to report.
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)
        self._timeout = timeout
        try:
            self._client = self._connect(retry)
        except ValueError as exc:
            raise OnlineStoreError(f"invalid redis url {self.shown_url}: {exc}") from None
        self._older_than = self._client.register_script(_OLDER_THAN_SCRIPT)
        # The async client of each event loop (a client is bound to the loop it runs on).
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown_url!r}, key_prefix={self.key_prefix!r})"

    # -- what differs on Redis Cluster (see redis_cluster.py) ------------------------------------

    def _connect(self, retry: Retry) -> Any:
        """The synchronous client (a pooled ``redis.Redis`` here)."""
        pool = redis.ConnectionPool.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=retry,
        )
        return redis.Redis(connection_pool=pool)

    def _connect_async(self) -> Any:
        """An asyncio client for the running event loop."""
        retry = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)
        return redis.asyncio.Redis.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=retry,
        )

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        """Values of ``keys``, in order (one ``MGET``)."""
        return self._client.mget(keys)  # type: ignore[no-any-return]

    async def _mget_async(self, keys: list[bytes]) -> list[bytes | None]:
        return await self._async_client().mget(keys)  # type: ignore[no-any-return]

    def _same_slot_groups(self, keys: Sequence[bytes]) -> list[list[int]]:
        """Positions of ``keys`` grouped so one script call may take each group (one server:
        any grouping; a cluster needs one slot per call)."""
        return [list(range(len(keys)))]

    @property
    def identity(self) -> str:
        return redis_identity(self.url, self.key_prefix)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            raise OnlineStoreError(
                f"Redis at {self.shown_url}: {action} failed ({type(exc).__name__}: {exc}); "
                "check that the server is up and the url in featurestore.yaml is right"
            ) from exc

    def _namespace_prefix(self, namespace: Namespace) -> bytes:
        """``<prefix><project>:<view>:v<version>:{``: every key of the namespace starts so."""
        text = f"{self.key_prefix}{namespace.project}:{namespace.view.name}:v{namespace.version}:{{"
        return text.encode()

    def _keys(self, namespace: Namespace, entity_keys: pa.Array) -> list[bytes]:
        """Full Redis keys for null-free encoded entity keys."""
        return _redis_keys(self._namespace_prefix(namespace), entity_keys)

    # -- OnlineStore ---------------------------------------------------------------------------

    def write_batch(self, namespace: Namespace, batch: pa.RecordBatch) -> WriteResult:
        """Write with the never-overwrite-newer rule, atomically per key; acknowledged on return."""
        prepared = self._codecs.prepare(namespace, batch, self.expiry_grace)
        n = len(prepared)
        if not n:
            return WriteResult(expired=prepared.expired)
        keys = self._keys(namespace, prepared.keys)
        args: list[Any] = [None] * (2 * n)
        args[0::2] = prepared.values.to_pylist()
        if prepared.expires_at_us is None:
            args[1::2] = [b"0"] * n
        else:  # PXAT takes milliseconds; round up so a row never expires early
            args[1::2] = (-(-prepared.expires_at_us // 1000)).astype(np.int64).tolist()
        calls = []
        for group in self._same_slot_groups(keys):
            for i in range(0, len(group), self.chunk_size):
                chunk = group[i : i + self.chunk_size]
                calls.append(
                    (
                        [keys[j] for j in chunk],
                        [a for j in chunk for a in (args[2 * j], args[2 * j + 1])],
                    )
                )
        written = 0
        with self._errors(f"writing {namespace.view.label}"):
            for i in range(0, len(calls), self.chunks_per_round_trip):
                written += self._run_writes(calls[i : i + self.chunks_per_round_trip])
        return WriteResult(written=written, skipped_older=n - written, expired=prepared.expired)

    def _run_writes(self, calls: Sequence[tuple[list[bytes], list[Any]]]) -> int:
        """Run write script calls in one pipeline round trip (how many rows they wrote)."""
        return sum(int(result) for result in self._run_script(_WRITE, calls))

    def _run_script(self, script: _Script, calls: Sequence[_Call]) -> list[Any]:
        """Run ``script`` once per call (keys, args), in one pipeline round trip; the results in
        call order."""
        return self._run_script_on(self._client, script, calls)

    def _run_script_on(self, client: Any, script: _Script, calls: Sequence[_Call]) -> list[Any]:
        """Run script calls in one pipeline on one server's ``client``; load the script and rerun
        the calls that hit ``NOSCRIPT`` (a fresh or flushed server, a promoted replica). With
        ``replica_acks``, a ``WAIT`` on the same connection makes the write acknowledged only once
        that many replicas hold it."""
        with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            if self.replica_acks:
                pipe.execute_command("WAIT", self.replica_acks, int(self._timeout * 1000))
            results = pipe.execute(raise_on_error=False)
        if self.replica_acks:
            acks = results.pop()
            if isinstance(acks, Exception):
                raise acks
            if int(acks) < self.replica_acks:
                raise OnlineStoreError(
                    f"Redis at {self.shown_url}: a write reached {acks} replica(s), "
                    f"replica_acks asks for {self.replica_acks}; it may be lost on a failover"
                )
        missing = []
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError):
                missing.append(i)
            elif isinstance(result, Exception):
                raise result
        if missing:
            client.script_load(script.source)
            rerun = self._run_script_on(client, script, [calls[i] for i in missing])
            for i, result in zip(missing, rerun, strict=True):
                results[i] = result
        return list(results)

    def read(self, namespace: Namespace, keys: pa.Table, features: Sequence[str]) -> pa.Table:
        """One ``MGET`` for all keys; a key with a null join key is not found."""
        codec = self._codecs.get(namespace.view)
        entity_keys = encode_keys(keys, namespace.view.join_keys)
        if entity_keys.null_count:
            valid = entity_keys.is_valid()
            slots = pc.cumulative_sum(valid.cast(pa.int64())).to_pylist()
            found = self._get(namespace, entity_keys.filter(valid))
            values = [
                found[s - 1] if ok else None for s, ok in zip(slots, valid.to_pylist(), strict=True)
            ]
        else:
            values = self._get(namespace, entity_keys)
        return codec.decode(values, features)

    def read_packed(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """One ``MGET`` for every key of every read."""
        keys = self._packed_keys(reads)
        if not keys:
            return [[] for _ in reads]
        with self._errors("reading online rows"):
            values = self._mget(keys)
        return _split(values, reads)

    async def read_packed_async(
        self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]
    ) -> list[list[bytes | None]]:
        """One ``MGET`` for every key of every read, on the running event loop's async client."""
        keys = self._packed_keys(reads)
        if not keys:
            return [[] for _ in reads]
        with self._errors("reading online rows"):
            values = await self._mget_async(keys)
        return _split(values, reads)

    def _packed_keys(self, reads: Sequence[tuple[Namespace, Sequence[bytes]]]) -> list[bytes]:
        keys: list[bytes] = []
        for namespace, entity_keys in reads:
            head = self._namespace_prefix(namespace)
            keys.extend(head + key.hex().encode() + b"}" for key in entity_keys)
        return keys

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            try:
                client = self._connect_async()
            except ValueError as exc:
                raise OnlineStoreError(f"invalid redis url {self.shown_url}: {exc}") from None
            self._async_clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the running event loop's async client (``close`` closes the sync one)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _get(self, namespace: Namespace, entity_keys: pa.Array) -> list[bytes | None]:
        if not len(entity_keys):
            return []
        with self._errors(f"reading {namespace.view.label}"):
            return self._mget(self._keys(namespace, entity_keys))

    def delete_project(self, project: str) -> int:
        """``SCAN`` the project's keys and ``UNLINK`` them in batches (never ``KEYS``)."""
        pattern = _glob_escape(self.key_prefix) + project + ":*"
        removed = 0
        with self._errors(f"deleting project {project!r}"):
            for batch in self._scan(pattern, 1000):
                removed += int(self._client.unlink(*batch))
        return removed

    def _scan(self, pattern: str, batch_size: int) -> Iterator[list[bytes]]:
        """Keys matching ``pattern`` (``SCAN MATCH``), in batches of at most ``batch_size``."""
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=batch_size):
            batch.append(key)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _namespace_pattern(self, namespace: Namespace) -> str:
        return _glob_escape(self._namespace_prefix(namespace).decode()) + "*"

    # -- SupportsRowDeletion -------------------------------------------------------------------

    def scan_entity_keys(
        self, namespace: Namespace, *, batch_size: int = 1000
    ) -> Iterator[list[bytes]]:
        """``SCAN`` the namespace; each key's hash tag is its hex entity key."""
        start = len(self._namespace_prefix(namespace))
        with self._errors(f"scanning {namespace.view.label} v{namespace.version}"):
            for batch in self._scan(self._namespace_pattern(namespace), batch_size):
                yield [bytes.fromhex(key[start:-1].decode()) for key in batch]

    def delete_entity_keys(
        self, namespace: Namespace, entity_keys: Sequence[bytes], *, dry_run: bool = False
    ) -> int:
        """``UNLINK`` the keys (``EXISTS`` on a dry run), 1000 per call."""
        keys = self._packed_keys([(namespace, list(dict.fromkeys(entity_keys)))])
        count = 0
        with self._errors(f"deleting rows of {namespace.view.label} v{namespace.version}"):
            for i in range(0, len(keys), 1000):
                chunk = keys[i : i + 1000]
                count += int(
                    self._client.exists(*chunk) if dry_run else self._client.unlink(*chunk)
                )
        return count

    def delete_older_than(
        self, cutoffs: Mapping[Namespace, int], *, dry_run: bool = False
    ) -> dict[Namespace, int]:
        """One ``SCAN`` of each project's keys; per batch, a script reads each row's event time
        from its header and unlinks the rows older than their namespace's cut-off, in one step.
        Keys of other namespaces are passed over."""
        counts = dict.fromkeys(cutoffs, 0)
        wanted = {
            self._namespace_prefix(ns): (ns, header_timestamp(cutoff))
            for ns, cutoff in cutoffs.items()
        }
        mode = b"0" if dry_run else b"1"
        with self._errors("removing rows older than their retention"):
            for project in sorted({ns.project for ns in cutoffs}):
                pattern = _glob_escape(self.key_prefix) + project + ":*"
                for batch in self._scan(pattern, 1000):
                    # A key's namespace prefix runs up to its hash tag's "{" (no name has one).
                    hits = [(key, wanted.get(key[: key.find(b"{") + 1])) for key in batch]
                    chosen = [(key, hit) for key, hit in hits if hit is not None]
                    if not chosen:
                        continue
                    for group in self._same_slot_groups([key for key, _ in chosen]):
                        part = [chosen[i] for i in group]
                        keys = [key for key, _ in part]
                        args = [mode, *(cutoff for _, (_, cutoff) in part)]
                        older = self._older_than(keys=keys, args=args)
                        for (_, (namespace, _)), flag in zip(part, older, strict=True):
                            counts[namespace] += int(flag)
        return counts

    # -- SupportsStateUpdates ------------------------------------------------------------------

    def update_states(
        self, namespace: Namespace, entity_keys: Sequence[bytes], update: StateUpdate
    ) -> int:
        """Read, merge and compare-and-set each key's state (see :mod:`.redis_states`)."""
        return update_states(self, namespace, entity_keys, update, _COMPARE_AND_SET)

    def ping(self) -> None:
        """Round-trip a ``PING``."""
        with self._errors("ping"):
            self._client.ping()

    def close(self) -> None:
        """Close every pooled connection; later calls dial new ones."""
        self._client.close()
        disconnect = getattr(self._client, "connection_pool", None)
        if disconnect is not None:
            disconnect.disconnect()


def _split(
    values: list[bytes | None], reads: Sequence[tuple[Namespace, Sequence[bytes]]]
) -> list[list[bytes | None]]:
    """One MGET's answers, cut back into one list per read."""
    out, start = [], 0
    for _, entity_keys in reads:
        out.append(values[start : start + len(entity_keys)])
        start += len(entity_keys)
    return out


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to show in messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _glob_escape(text: str) -> str:
    """Escape the characters SCAN MATCH treats as glob syntax."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _redis_keys(prefix: bytes, keys: pa.Array) -> list[bytes]:
    """``prefix + hex(key) + b"}"`` for every element of a (null-free) binary array.

    Assembled in one numpy buffer and sliced, so a lookup of one key costs a few microseconds.
    """
    data, offsets = binary_parts(keys)
    digits, lengths = hex_digits(data), np.diff(offsets) * 2
    sizes = len(prefix) + lengths + 1
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out = np.empty(int(ends[-1]) if len(ends) else 0, np.uint8)
    out[starts[:, None] + np.arange(len(prefix))] = np.frombuffer(prefix, np.uint8)
    out[np.repeat(starts + len(prefix) - offsets[:-1] * 2, lengths) + np.arange(len(digits))] = (
        digits
    )
    out[ends - 1] = ord("}")
    joined = out.tobytes()
    bounds = ends.tolist()
    return [joined[a:b] for a, b in zip([0, *bounds], bounds, strict=False)]


def open_store(settings: OnlineStoreSettings, config: RepoConfig) -> RedisOnlineStore:
    """The factory of the ``redis`` row of :data:`featurestore.online.backends.ONLINE_BACKENDS`:
    a :class:`RedisClusterOnlineStore` when ``cluster: true``."""
    from featurestore.online.redis_settings import RedisOnlineStoreConfig

    assert isinstance(settings, RedisOnlineStoreConfig)
    kind = RedisOnlineStore
    if settings.cluster:
        # Imported here: redis_cluster builds on this module.
        from featurestore.online.redis_cluster import RedisClusterOnlineStore

        kind = RedisClusterOnlineStore
    return kind(
        settings.url,
        key_prefix=settings.key_prefix,
        expiry_grace=settings.expiry_grace,
        replica_acks=settings.replica_acks,
        timeout=settings.timeout,
    )
