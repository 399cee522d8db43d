"""The brokers a stream source can name, and the interface the consumer reads them through.

Chosen by the ``broker`` URL's scheme from :data:`BROKERS`; each row names its class as
``module:Class``, imported only when a consumer opens it (so ``redis`` is loaded only for a
``redis://`` stream)::

    broker = open_broker(source, group="featurestore.prod", consumer="featurestore")

Only Redis Streams is shipped: a Kafka broker needs a test against a real Kafka, which these
machines cannot install from their package registries (see ``docs/streams.md``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import ConfigError, ExtraNotInstalledError
from featurestore.stream.parse import DeadLetter, Message

#: Broker URL scheme -> (``module:Class``, the package extra its client library comes with).
BROKERS: dict[str, tuple[str, str]] = {
    "redis": ("featurestore.stream.redis_streams:RedisStreamBroker", "redis"),
}


class BrokerUnavailableError(ConnectionError):
    """The broker cannot be reached now (the consumer retries with backoff)."""


class Broker(ABC):
    """One stream source's topic, read by one consumer of a consumer group."""

    @abstractmethod
    def __init__(self, source: StreamSource, *, group: str, consumer: str) -> None: ...

    @abstractmethod
    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` messages in stream order: first those delivered to this consumer
        before and never acknowledged (after a crash), then new ones, waiting up to
        ``block_ms`` for some."""

    @abstractmethod
    def acknowledge(self, positions: Sequence[str]) -> None:
        """The messages at ``positions`` are durable: never deliver them again."""

    @abstractmethod
    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Keep ``letters`` (message and reason) where an operator can read them."""

    def keep_alive(self) -> None:  # noqa: B027 - brokers without a claim to renew keep it
        """Renew this consumer's claim on the topic while it waits out an outage of the online
        store (raises :class:`BrokerUnavailableError` when the broker is down too)."""

    @abstractmethod
    def lag(self) -> int | None:
        """Messages in the topic not yet delivered to the group (None: unknown)."""

    @abstractmethod
    def close(self) -> None: ...

    @classmethod
    @abstractmethod
    def lag_of(cls, source: StreamSource, group: str) -> int | None:
        """:meth:`lag` of ``group`` without being one of its consumers."""

    @classmethod
    @abstractmethod
    def erase_dead_letters(
        cls, source: StreamSource, matches: Callable[[Mapping[str, str]], bool], *, dry_run: bool
    ) -> int:
        """Delete (``dry_run``: count) the dead letters of ``source`` whose message fields
        ``matches`` says hold an erased entity; without joining a consumer group."""


def open_broker(source: StreamSource, *, group: str, consumer: str) -> Broker:
    """The broker of ``source``, read as ``consumer`` of ``group``."""
    broker: Broker = _broker_class(source)(source, group=group, consumer=consumer)
    return broker


def stream_lag(source: StreamSource, group: str) -> int | None:
    """Messages of ``source``'s topic not yet delivered to ``group`` (None: unknown, or the
    broker is unreachable), asked without joining the group."""
    try:
        lag: int | None = _broker_class(source).lag_of(source, group)
    except BrokerUnavailableError:
        return None
    return lag


def _broker_class(source: StreamSource) -> type[Broker]:
    row = BROKERS.get(source.scheme)
    if row is None:
        raise ConfigError(
            f"stream source {source.name!r}: broker {source.broker!r}: unknown scheme "
            f"{source.scheme!r}; supported: {sorted(BROKERS)}"
        )
    path, extra = row
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"stream source {source.name!r} needs the {extra!r} extra: "
            f"pip install 'featurestore[{extra}]' ({exc})"
        ) from None
    broker_class: type[Broker] = getattr(module, class_name)
    return broker_class


def erase_dead_letters(
    source: StreamSource, matches: Callable[[Mapping[str, str]], bool], *, dry_run: bool
) -> int:
    """:meth:`Broker.erase_dead_letters` of ``source``'s broker (erasure: dead letters are
    messages the store kept, with their feature values)."""
    return _broker_class(source).erase_dead_letters(source, matches, dry_run=dry_run)
