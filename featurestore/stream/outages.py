"""Outages of what a stream consumer writes to (the online store) or reads from (the broker).

The consumer holds its batch and retries; this module paces the retries (exponential backoff up
to :data:`MAX_BACKOFF_SECONDS`) and says so once: one log line when an outage starts, one when
it ends, however many attempts fail in between (the first line is shortened here)::

    stream source 'trip_events': outage: ... Redis at redis://10.0.0.5:6379/0: ... failed
        (TimeoutError: Timeout reading from socket) ...; holding 2,000 message(s), reading
        nothing more, retrying with backoff up to 5 s
    stream source 'trip_events': recovered after 12.4 s (9 failed attempts); consuming again
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("featurestore.stream")

#: Longest wait between two attempts during an outage.
MAX_BACKOFF_SECONDS = 5.0
#: First wait after a failed attempt (doubled after each further failure).
FIRST_BACKOFF_SECONDS = 0.1


class Outages:
    """The current outage, if any (one at a time: the consumer retries one batch until it is
    stored)."""

    def __init__(self, sleep: Callable[[float], object] = time.sleep) -> None:
        self.sleep = sleep
        self.count = 0
        self._since: float | None = None
        self._source = ""
        self._failures = 0
        self._backoff = FIRST_BACKOFF_SECONDS

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, source: str, exc: Exception, held: int) -> bool:
        """An attempt for ``source`` failed with ``exc`` while holding ``held`` messages: log
        it if an outage starts, then wait before the next attempt. Returns whether an outage
        started."""
        started = self._since is None
        if started:
            self._since = time.monotonic()
            self._source = source
            self._failures = 0
            self.count += 1
            log.warning(
                "stream source %r: outage: %s; holding %s message(s), reading nothing more, "
                "retrying with backoff up to %.0f s",
                source,
                exc,
                f"{held:,}",
                MAX_BACKOFF_SECONDS,
            )
        self._failures += 1
        self.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
        return started

    def succeeded(self) -> None:
        """An attempt succeeded: log the end of the outage, if one was going on."""
        if self._since is None:
            return
        log.warning(
            "stream source %r: recovered after %.1f s (%d failed attempts); consuming again",
            self._source,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since = None
        self._backoff = FIRST_BACKOFF_SECONDS
