"""``featurestore stream``: consume the repository's stream sources until stopped."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import click

from featurestore.cli.app import CliContext
from featurestore.stream.metrics import StreamMetrics


def register(cli: click.Group) -> None:
    """Attach ``stream`` to ``cli``."""
    cli.add_command(stream)


@click.command()
@click.option(
    "--views", "views", multiple=True, help="Only the stream sources of this view (repeatable)."
)
@click.option(
    "--consumer", default="featurestore", show_default=True, help="Consumer name in the group."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--metrics-port", type=int, default=None, help="Serve Prometheus /metrics on this port."
)
@click.option(
    "--report-every",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between progress lines.",
)
@click.option(
    "--compact-every",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds between compactions of the offline files.",
)
@click.option("--max-events", type=int, default=None, hidden=True)
@click.option(
    "--idle-exit", type=float, default=None, help="Stop after this many seconds with no message."
)
@click.pass_obj
def stream(
    state: CliContext,
    views: tuple[str, ...],
    consumer: str,
    batch_size: int,
    metrics_port: int | None,
    report_every: float,
    compact_every: float,
    max_events: int | None,
    idle_exit: float | None,
) -> None:
    """Consume stream sources: write each batch online, append it offline, then acknowledge it.

    Runs until interrupted (Ctrl-C, SIGTERM); a consumer killed at any point and started again
    loses no event and stores none twice.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    metrics = StreamMetrics()
    if metrics_port is not None:
        metrics.serve(metrics_port)
    consumer_ = state.store.stream_consumer(
        list(views) or None,
        consumer=consumer,
        batch_size=batch_size,
        metrics=metrics,
        compact_every=compact_every,
    )
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    names = ", ".join(s.source.name for s in consumer_.states)
    state.console.print(
        f"Consuming {names} as {consumer!r}"
        + (f"; metrics on :{metrics_port}/metrics" if metrics_port else "")
    )
    reporter = threading.Thread(
        target=_report, args=(state, consumer_, stop, report_every), daemon=True
    )
    reporter.start()
    try:
        report = consumer_.run(stop, max_events=max_events, idle_seconds=idle_exit)
    finally:
        stop.set()
        consumer_.close()
    state.console.print(f"Stopped: {report.summary()}")


def _report(state: CliContext, consumer: object, stop: threading.Event, every: float) -> None:
    from featurestore.stream.consumer import StreamConsumer

    assert isinstance(consumer, StreamConsumer)
    last_events, last_time = 0, time.monotonic()
    while not stop.wait(every):
        now = time.monotonic()
        events = consumer.report.events
        rate = (events - last_events) / (now - last_time)
        delays = sorted(consumer.metrics.recent_delays)
        p99 = delays[int(len(delays) * 0.99)] * 1000 if delays else 0.0
        state.console.print(
            f"{events:,} events ({rate:,.0f}/s), {consumer.report.dead_letters:,} dead letters, "
            f"delay p99 {p99:,.0f} ms"
        )
        last_events, last_time = events, now
