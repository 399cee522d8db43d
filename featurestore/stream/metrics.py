"""The stream consumer's Prometheus metrics, served on its own port (``--metrics-port``).

* ``featurestore_stream_events_total{source}`` - events stored (its rate is events/s);
* ``featurestore_stream_dead_letters_total{source}`` - messages sent to the dead-letter stream;
* ``featurestore_stream_lag{source}`` - messages in the topic not yet delivered to the consumer;
* ``featurestore_stream_delay_seconds{source}`` - end-to-end delay, from an event's timestamp to
  the moment it is online (a sample of up to :data:`DELAY_SAMPLES` events per batch);
* ``featurestore_stream_outages_total{source}`` - times the online store or broker was lost.

It also keeps the last delays in memory, for the consumer's own progress lines and the benchmark.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Events per batch whose delay is observed.
DELAY_SAMPLES = 64

_DELAY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class StreamMetrics:
    """One consumer's instruments, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "featurestore_stream_events", "Events stored.", ("source",), registry=self.registry
        )
        self.dead = Counter(
            "featurestore_stream_dead_letters",
            "Messages sent to the dead-letter stream.",
            ("source",),
            registry=self.registry,
        )
        self.lag_gauge = Gauge(
            "featurestore_stream_lag",
            "Messages in the topic not yet delivered to the consumer.",
            ("source",),
            registry=self.registry,
        )
        self.delay = Histogram(
            "featurestore_stream_delay_seconds",
            "Seconds from an event's timestamp to its value being online.",
            ("source",),
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.outages = Counter(
            "featurestore_stream_outages",
            "Outages of the online store or the broker.",
            ("source",),
            registry=self.registry,
        )
        self.recent_delays: deque[float] = deque(maxlen=100_000)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` from a background thread."""
        start_http_server(port, addr=host, registry=self.registry)

    def batch(self, source: str, stored: int, dead: int, event_micros: Sequence[int]) -> None:
        self.events.labels(source).inc(stored)
        if dead:
            self.dead.labels(source).inc(dead)
        if event_micros:
            now = time.time() * 1_000_000
            step = max(1, len(event_micros) // DELAY_SAMPLES)
            histogram = self.delay.labels(source)
            for micros in event_micros[::step]:
                seconds = max(0.0, (now - micros) / 1_000_000)
                histogram.observe(seconds)
                self.recent_delays.append(seconds)

    def lag(self, source: str, lag: int | None) -> None:
        if lag is not None:
            self.lag_gauge.labels(source).set(lag)

    def outage(self, source: str) -> None:
        self.outages.labels(source).inc()
