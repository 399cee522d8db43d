"""Prometheus metrics of the service, on a registry of its own per app.

* ``featurestore_api_requests_total{endpoint, method, status}`` and
  ``featurestore_api_request_seconds{endpoint, method}`` - per route template;
* ``featurestore_online_lookup_seconds`` - time in the facade's online lookup (online-store
  round trips plus decoding), so store latency shows apart from HTTP overhead;
* ``featurestore_online_store_ping_seconds`` - the health check's round trip;
* ``featurestore_lookup_statuses_total{status}`` - values served, by status;
* ``featurestore_view_online_age_seconds{view}`` - age of the view's newest online value,
  ``featurestore_view_stream_lag{view}`` - its stream source's undelivered messages, and
  ``featurestore_view_freshness_breached{view}`` - 1 when its freshness objective is breached
  (read from the registry at scrape time).

With ``--workers > 1`` each worker counts its own requests (no multiprocess aggregation yet).
"""

from __future__ import annotations

import time
from collections import Counter as TallyCounter
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client import generate_latest as _generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featurestore.online.freshness_operations import ViewStatus

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

#: ``/metrics``' content type: the text format every Prometheus scrapes (``version=0.0.4``);
#: prometheus_client's "latest" (1.0.0) needs Prometheus 3, and our names need none of it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

_FAST_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class Metrics:
    """The service's instruments; one instance (and Prometheus registry) per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "featurestore_api_requests",
            "HTTP requests answered, by route, method and status.",
            ("endpoint", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "featurestore_api_request_seconds",
            "HTTP request latency by route and method.",
            ("endpoint", "method"),
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self.lookup_latency = Histogram(
            "featurestore_online_lookup_seconds",
            "Time spent in online lookups (online store round trips and decoding).",
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self.ping_latency = Histogram(
            "featurestore_online_store_ping_seconds",
            "Online store ping round trip, measured by /health.",
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self.statuses = Counter(
            "featurestore_lookup_statuses",
            "Feature values served by online lookups, by status.",
            ("status",),
            registry=self.registry,
        )

        self.online_age = Gauge(
            "featurestore_view_online_age_seconds",
            "Age of the view's newest online value.",
            ("view",),
            registry=self.registry,
        )
        self.stream_lag = Gauge(
            "featurestore_view_stream_lag",
            "Messages of the view's stream source not yet delivered to its consumer.",
            ("view",),
            registry=self.registry,
        )
        self.breached = Gauge(
            "featurestore_view_freshness_breached",
            "1 when the view's newest online value is older than its freshness objective.",
            ("view",),
            registry=self.registry,
        )

    def freshness(self, rows: Iterable[ViewStatus]) -> None:
        """Set the per-view freshness gauges from ``store.status()``."""
        for row in rows:
            if row.online_age is not None:
                self.online_age.labels(row.view).set(row.online_age.total_seconds())
            if row.stream_lag is not None:
                self.stream_lag.labels(row.view).set(row.stream_lag)
            self.breached.labels(row.view).set(1 if row.breached else 0)

    def count_statuses(self, per_feature: Iterable[list[str]]) -> None:
        """Count the statuses of a lookup's feature columns."""
        tally: TallyCounter[str] = TallyCounter()
        for statuses in per_feature:
            tally.update(statuses)
        for status, count in tally.items():
            self.statuses.labels(status).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return _generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (``/v1/feature-views/{name}``),
    so path parameters never explode the label set; unmatched paths count as ``unmatched``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - start)
