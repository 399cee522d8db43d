"""Noticing registry changes cheaply: the state token, asked at most once per interval.

Hot paths (online lookups, pushes) cache what they resolved from the registry. A
:class:`FreshnessGate` tells them when to drop that cache::

    gate = FreshnessGate(registry, "demo", interval=1.0)
    if gate.changed():       # asks the registry at most once a second
        cache.clear()
"""

from __future__ import annotations

import threading
import time

from featurestore.registry.base import Registry


class FreshnessGate:
    """Whether the project's registry state changed since the last look, checked at most once
    per ``interval`` seconds (so a change is noticed within that interval)."""

    def __init__(self, registry: Registry, project: str, *, interval: float = 1.0) -> None:
        self.registry = registry
        self.project = project
        self.interval = interval
        self._token: str | None = None
        self._next_check = float("-inf")
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the next :meth:`changed` would ask the registry (no call is made here)."""
        return time.monotonic() >= self._next_check

    def changed(self) -> bool:
        """True when the registry's state token differs from the one last seen (and the first
        time); False without a registry call while the interval has not passed."""
        now = time.monotonic()
        if now < self._next_check:
            return False
        with self._lock:
            if now < self._next_check:
                return False
            token = self.registry.state_token(self.project)
            self._next_check = now + self.interval
            if token == self._token:
                return False
            self._token = token
            return True
