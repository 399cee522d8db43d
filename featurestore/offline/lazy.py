"""Public names of a package imported on first use, so an engine's package (and its settings)
import without the engine's client library::

    __getattr__ = lazy_exports(__name__, {"SparkEngine": "featurestore.offline.spark.engine"})

The package keeps ``if TYPE_CHECKING:`` imports of the same names so type checkers see them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each public name to the module
    that defines it (``"module"``, or ``"module:attribute"`` for a name kept as an alias),
    imported when the name is first read."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}",
                name=name,
                obj=sys.modules.get(package),
            )
        module, _, attribute = home.partition(":")
        return getattr(importlib.import_module(module), attribute or name)

    return __getattr__
