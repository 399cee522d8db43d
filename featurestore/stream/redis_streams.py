"""Redis Streams as a stream source's broker (``broker: redis://host:port/db``).

The consumer reads with a consumer group (``XREADGROUP``), so the group remembers what was
delivered and what was acknowledged: after a crash, the consumer first gets again what it had been
delivered and never acknowledged (``XREADGROUP ... 0``), then new messages (``>``).
Acknowledgement (``XACK``) comes only after the batch is durable online and offline.

Dead letters go to the stream ``<topic>.dead``: the original fields, plus ``_reason``,
``_position`` (the original entry id) and ``_source``.

One consumer per group and topic: a second one would interleave positions, and the consumer's
exactly-once bookkeeping relies on one ordered sequence. A lock key held while it runs
(``featurestore:stream-lock:<group>:<topic>``, renewed, expiring :data:`LOCK_SECONDS` after its
holder dies) refuses a second consumer with a clear error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import ConfigError
from featurestore.stream.brokers import Broker, BrokerUnavailableError
from featurestore.stream.parse import DeadLetter, Message

#: Seconds a dead consumer's lock outlives it.
LOCK_SECONDS = 10
_RENEW_EVERY = 2.0
#: Dead letters read (and deleted) per call when erasing.
_ERASE_PAGE = 1000


class RedisStreamBroker(Broker):
    def __init__(self, source: StreamSource, *, group: str, consumer: str) -> None:
        self.source = source
        self.topic = source.topic
        self.group = group
        self.consumer = consumer
        self.client = redis.Redis.from_url(
            source.broker, decode_responses=True, socket_timeout=10, socket_connect_timeout=5
        )
        self.client.set_response_callback("XREADGROUP", _raw)
        self._backlog = True  # first read what was delivered before and never acknowledged
        self._lock_key = f"featurestore:stream-lock:{group}:{self.topic}"
        self._lock_value = f"{socket.gethostname()}:{os.getpid()}"
        self._renewed = 0.0
        with _unavailable(source):
            self._take_lock()
            try:
                self.client.xgroup_create(self.topic, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read(self, count: int, block_ms: int) -> list[Message]:
        with _unavailable(self.source):
            self._renew_lock()
            if self._backlog:
                found = self._read("0", count, None)
                if found:
                    return found
                self._backlog = False
            return self._read(">", count, block_ms)

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Message]:
        # The raw reply (fields as Redis' flat [name, value, ...] lists): turning each entry into
        # a dict would cost more than parsing it.
        blocking = [] if block_ms is None else ["BLOCK", block_ms]
        reply: Any = self.client.execute_command(  # type: ignore[no-untyped-call]
            "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", count, *blocking,
            "STREAMS", self.topic, start,
        )  # fmt: skip
        messages: list[Message] = []
        streams = reply.items() if isinstance(reply, dict) else (reply or [])
        for _stream, entries in streams:
            for position, flat in entries:
                if flat is None:  # deleted from the stream (XDEL) after delivery
                    continue
                messages.append(Message(position, flat))
        return messages

    def acknowledge(self, positions: Sequence[str]) -> None:
        if positions:
            with _unavailable(self.source):
                self.client.xack(self.topic, self.group, *positions)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        with _unavailable(self.source):
            pipe = self.client.pipeline(transaction=False)
            for letter in letters:
                fields = {
                    **letter.message.fields,
                    "_reason": letter.reason,
                    "_position": letter.message.position,
                    "_source": self.source.name,
                }
                pipe.xadd(f"{self.topic}.dead", fields)  # type: ignore[arg-type]
            pipe.execute()

    def keep_alive(self) -> None:
        with _unavailable(self.source):
            self._renew_lock()

    def lag(self) -> int | None:
        with _unavailable(self.source):
            return _group_lag(self.client, self.topic, self.group)

    @classmethod
    def lag_of(cls, source: StreamSource, group: str) -> int | None:
        client = redis.Redis.from_url(source.broker, decode_responses=True, socket_timeout=2)
        try:
            with _unavailable(source):
                return _group_lag(client, source.topic, group)
        finally:
            client.close()

    @classmethod
    def erase_dead_letters(
        cls, source: StreamSource, matches: Callable[[Mapping[str, str]], bool], *, dry_run: bool
    ) -> int:
        client = redis.Redis.from_url(source.broker, decode_responses=True, socket_timeout=10)
        dead = f"{source.topic}.dead"
        found: list[str] = []
        try:
            with _unavailable(source):
                start = "-"
                while True:
                    page: Any = client.xrange(dead, min=start, count=_ERASE_PAGE)
                    found += [entry for entry, fields in page if fields and matches(fields)]
                    if len(page) < _ERASE_PAGE:
                        break
                    start = f"({page[-1][0]}"  # exclusive: after the page's last entry
                if not dry_run:
                    for i in range(0, len(found), _ERASE_PAGE):
                        client.xdel(dead, *found[i : i + _ERASE_PAGE])
        finally:
            client.close()
        return len(found)

    def close(self) -> None:
        # Only our own lock: another consumer may hold it after an outage. If the broker is
        # gone, the lock expires by itself.
        with contextlib.suppress(redis.RedisError):
            self.client.eval(_RELEASE, 1, self._lock_key, self._lock_value)
        self.client.close()

    # -- one consumer per group and topic -------------------------------------------------------

    def _take_lock(self) -> None:
        if self.client.set(self._lock_key, self._lock_value, nx=True, ex=LOCK_SECONDS):
            self._renewed = time.monotonic()
            return
        holder = str(self.client.get(self._lock_key) or "")
        host, _, pid = holder.rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
            self.client.set(self._lock_key, self._lock_value, ex=LOCK_SECONDS)  # it died
            self._renewed = time.monotonic()
            return
        raise ConfigError(
            f"stream source {self.source.name!r}: topic {self.topic!r} of group {self.group!r} "
            f"is being consumed by {holder or 'another consumer'}; run one consumer per stream "
            f"source (its lock expires {LOCK_SECONDS} s after its holder stops)"
        )

    def _renew_lock(self) -> None:
        """Renew our lock, or take it back if it expired and nobody took it. A consumer cut off
        for longer than :data:`LOCK_SECONDS` (a broker outage, a pause) may find another
        consumer holding it: it stops rather than read the source beside it."""
        if time.monotonic() - self._renewed < _RENEW_EVERY:
            return
        answer = self.client.eval(_RENEW, 1, self._lock_key, self._lock_value, LOCK_SECONDS)
        if answer != 1:
            raise ConfigError(
                f"stream source {self.source.name!r}: topic {self.topic!r} of group "
                f"{self.group!r} is now consumed by {answer} (this consumer was cut off from "
                f"the broker for more than {LOCK_SECONDS} s and its lock expired); stopping, "
                "so that one consumer reads the source"
            )
        self._renewed = time.monotonic()


# Renew the lock if it is ours or free; otherwise answer its holder.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return holder
"""
# Delete the lock only if it is ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _group_lag(client: Any, topic: str, group: str) -> int | None:
    try:
        groups: Any = client.xinfo_groups(topic)
    except redis.ResponseError:  # no such stream yet
        return None
    for info in groups:
        if info.get("name") == group:
            lag = info.get("lag")
            return None if lag is None else int(lag)
    return None


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _unavailable(source: StreamSource) -> Iterator[None]:
    """Turns a lost connection into :class:`BrokerUnavailableError` naming the source."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailableError(
            f"stream source {source.name!r}: broker {source.broker} unavailable: {exc}"
        ) from exc
