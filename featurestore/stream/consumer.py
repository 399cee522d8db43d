"""The stream consumer: messages in, online and offline out, exactly once.

Per batch of one stream source:

1. read up to ``batch_size`` messages (first the ones delivered before a crash and never
   acknowledged, then new ones);
2. parse them (:mod:`featurestore.stream.parse`); unparseable ones become dead letters;
3. validate the rows (the quality layer, as a push's: a strict failure sends the batch's rows to
   the dead letters with the reason; a warning is recorded);
4. write them online (a row never replaces a newer one) and append them offline as one file whose
   metadata records the batch's last position (:mod:`featurestore.offline.file_positions`);
5. send the dead letters, then acknowledge every message of the batch.

Killed anywhere, a restarted consumer gets the unacknowledged messages again: those at or before
the last position recorded offline are written online only, the rest both ways, so no event is
lost and none is stored twice. Online, a plain view's write is idempotent (the latest row per
key); an aggregated view's state records the newest stream position it merged, in the same
atomic update, and skips the events at or before it (see
:mod:`featurestore.online.aggregation_views`), so none is counted twice. A materialization of an
aggregated view that runs between a batch's online write and its offline file keeps the batch's
events by their positions (:func:`featurestore.online.aggregation_state.rebuild`), so none is
dropped either.

An unreachable (or too slow: the store's timeout) online store or broker holds the batch: nothing
more is read, so memory stays bounded by one batch per source. The consumer retries with backoff,
keeps its lock on the source alive, and logs one line when the outage starts and one when it ends
(:mod:`featurestore.stream.outages`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import OnlineStoreError, ValidationFailedError
from featurestore.offline.file_positions import (
    position_key,
    positions_in_files,
    positions_metadata,
)
from featurestore.offline.store_data import StoreData
from featurestore.push.pusher import Pusher, PushMode, PushValidation
from featurestore.stream.brokers import Broker, BrokerUnavailableError
from featurestore.stream.metrics import StreamMetrics
from featurestore.stream.outages import Outages
from featurestore.stream.parse import DeadLetter, Message, MessageParser, ParsedBatch


@dataclass
class SourceState:
    """One stream source being consumed."""

    source: StreamSource
    broker: Broker
    parser: MessageParser
    checkpoint_key: str
    durable: str | None  # the last position stored offline by this consumer
    events: int = 0
    dead: int = 0


@dataclass
class ConsumerReport:
    """Totals of a consumer's run."""

    events: int = 0
    dead_letters: int = 0
    batches: int = 0
    outages: int = 0
    seconds: float = 0.0
    per_source: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        return (
            f"{self.events:,} events in {self.batches:,} batches ({rate:,.0f}/s), "
            f"{self.dead_letters:,} dead letters, {self.outages} outages, {self.seconds:.1f} s"
        )


class StreamConsumer:
    """Consumes stream sources into the stores; see the module."""

    def __init__(
        self,
        pusher: Pusher,
        sources: Sequence[tuple[StreamSource, Broker]],
        *,
        consumer: str,
        validate: PushValidation | None = None,
        metrics: StreamMetrics | None = None,
        batch_size: int = 10_000,
        block_ms: int = 100,
        compact: Callable[[list[str]], object] | None = None,
        compact_every: float = 300.0,
    ) -> None:
        self.pusher = pusher
        self.validate = validate
        self.metrics = metrics or StreamMetrics()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.compact = compact
        self.compact_every = compact_every
        self.report = ConsumerReport()
        data = StoreData(pusher.config)
        self.states = []
        for source, broker in sources:
            target = pusher.target(source.name)
            key = f"{consumer}:{source.topic}"
            files = data.readable_pushed_files(source.name)
            recorded = positions_in_files(files)
            self.states.append(
                SourceState(source, broker, MessageParser(target.columns), key, recorded.get(key))
            )
        self._stop: threading.Event | None = None  # set by run(); stops retries too
        self.outages = Outages(sleep=self._pause)

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        max_events: int | None = None,
        idle_seconds: float | None = None,
    ) -> ConsumerReport:
        """Consume until ``stop`` is set, ``max_events`` were stored, or nothing arrived for
        ``idle_seconds`` (each ``None``: no such limit)."""
        started = time.perf_counter()
        last_event = last_compaction = last_lag = time.monotonic()
        self._stop = stop
        try:
            while stop is None or not stop.is_set():
                got = self.step()
                now = time.monotonic()
                if got:
                    last_event = now
                elif idle_seconds is not None and now - last_event >= idle_seconds:
                    break
                if max_events is not None and self.report.events >= max_events:
                    break
                if now - last_lag >= 1.0:
                    self._update_lag()
                    last_lag = now
                if self.compact is not None and now - last_compaction >= self.compact_every:
                    self.compact([s.source.name for s in self.states])
                    last_compaction = now
        finally:
            self.report.seconds = time.perf_counter() - started
        return self.report

    def step(self) -> int:
        """One batch from each source; returns the messages handled."""
        handled = 0
        for state in self.states:
            handled += self._with_retries(state)
        return handled

    def close(self) -> None:
        for state in self.states:
            state.broker.close()

    # -- one batch ------------------------------------------------------------------------------

    def _with_retries(self, state: SourceState) -> int:
        """Read one batch and store it, retrying through outages; nothing more is read until
        it is stored. Stopped during an outage, the batch is left unacknowledged (the next run
        gets it again)."""
        messages: list[Message] | None = None
        while self._stop is None or not self._stop.is_set():
            try:
                if messages is None:
                    messages = state.broker.read(self.batch_size, self.block_ms)
                self._handle(state, messages)
                self.outages.succeeded()
                return len(messages)
            except (OnlineStoreError, BrokerUnavailableError) as exc:
                held = len(messages or ())
                if self.outages.failed(state.source.name, exc, held):
                    self.report.outages += 1
                    self.metrics.outage(state.source.name)
                self._keep_lock(state)
        return 0

    def _handle(self, state: SourceState, messages: list[Message]) -> None:
        if not messages:
            return
        parsed = state.parser.parse(messages)
        dead = list(parsed.dead)
        if parsed.table.num_rows:
            dead += self._store(state, parsed)
        state.broker.dead_letter(dead)
        state.broker.acknowledge([m.position for m in messages])
        stored = parsed.table.num_rows - (len(dead) - len(parsed.dead))
        state.events += stored
        state.dead += len(dead)
        self.report.events += stored
        self.report.dead_letters += len(dead)
        self.report.batches += 1
        self.report.per_source[state.source.name] = state.events
        self.metrics.batch(state.source.name, stored, len(dead), parsed.event_micros)

    def _store(self, state: SourceState, parsed: ParsedBatch) -> list[DeadLetter]:
        """Write the batch's rows online and offline; returns rows refused by validation."""
        table, positions = parsed.table, parsed.positions
        split = 0
        if state.durable is not None:  # redelivered after a crash: offline already has these
            durable = position_key(state.durable)
            while split < len(positions) and position_key(positions[split]) <= durable:
                split += 1
        # Aggregation states skip what they already merged by position; plain views need none.
        target = self.pusher.target(state.source.name)
        keys = (
            [position_key(p) for p in positions]
            if any(view.is_aggregated for view, _ in target.views)
            else None
        )
        if split:
            self.pusher.push(
                state.source.name,
                table.slice(0, split),
                PushMode.ONLINE,
                positions=None if keys is None else keys[:split],
            )
        fresh = table.slice(split)
        if not fresh.num_rows:
            return []
        last = positions[-1]
        try:
            self.pusher.push(
                state.source.name,
                fresh,
                PushMode.ONLINE_AND_OFFLINE,
                validate=self.validate,
                offline_metadata=positions_metadata({state.checkpoint_key: last}),
                positions=None if keys is None else keys[split:],
            )
        except ValidationFailedError as exc:
            reason = f"validation failed: {exc}"
            rows = fresh.to_pylist()
            return [
                DeadLetter(Message(p, _as_text(row)), reason)
                for p, row in zip(positions[split:], rows, strict=True)
            ]
        state.durable = last
        return []

    # -- outages ------------------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        if self._stop is None:
            time.sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _keep_lock(self, state: SourceState) -> None:
        """Keep the claim on the source through an outage of the online store (lost anyway if
        the broker is the one down)."""
        with contextlib.suppress(BrokerUnavailableError):
            state.broker.keep_alive()

    def _update_lag(self) -> None:
        for state in self.states:
            try:
                lag = state.broker.lag()
            except BrokerUnavailableError:
                continue
            self.metrics.lag(state.source.name, lag)


def _as_text(row: dict[str, object]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in row.items()}
