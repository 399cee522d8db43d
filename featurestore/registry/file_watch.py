"""Noticing that a SQLite registry's file went away or was replaced while it is open.

SQLite connections hold their file open: once the file is deleted they go on answering from the
unlinked copy, so a long-running process (``featurestore serve``) would serve a registry nobody
can see any more and report itself healthy. :class:`RegistryFileWatch` compares the path with
the file the registry opened before each transaction (one ``stat``, a few microseconds):

* the path is gone: :class:`~featurestore.errors.RegistryNotFoundError` (the REST service
  answers 503 and ``/health`` says why), until a registry is there again;
* another file is at the path (restored from a backup, or created again by ``featurestore
  apply``): the caller drops its connections and opens the new file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from featurestore.errors import RegistryNotFoundError

__all__ = ["RegistryFileWatch", "missing_registry_message"]


def missing_registry_message(path: Path) -> str:
    """The one message for a registry file that is not there."""
    return (
        f"no registry at {path} (the file does not exist): run `featurestore apply` to create "
        "it (after `featurestore init` for a new repository), or point `registry:` in "
        "featurestore.yaml at the existing one"
    )


class RegistryFileWatch:
    """Which file a SQLite registry opened, and whether the path still leads to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity = self._current()
        self._lock = threading.Lock()

    def _current(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise RegistryNotFoundError(
                f"the registry {self.path} was deleted while in use: restore the file, or run "
                "`featurestore apply` to create a new registry"
            ) from None
        return stat.st_dev, stat.st_ino

    def replaced(self) -> bool:
        """True once when another file took the path since the last look (then the caller
        must reconnect); raises :class:`RegistryNotFoundError` while the path is empty."""
        identity = self._current()
        if identity == self._identity:
            return False
        with self._lock:
            if identity == self._identity:
                return False
            self._identity = identity
            return True
