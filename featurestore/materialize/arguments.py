"""Feast's keyword names for a materialization window, accepted alongside ours.

Feast users write ``store.materialize(start_date=..., end_date=...)`` and
``store.materialize_incremental(end_date=...)``; the facade takes those as well as ``start`` /
``end``, so code moved over from Feast runs unchanged.
"""

from __future__ import annotations

from datetime import datetime


def window_bound(
    method: str, name: str, ours: datetime | None, feast_name: str, feast: datetime | None
) -> datetime:
    """The bound given either as ``name`` or as Feast's ``feast_name``; exactly one is needed.

    Raises TypeError, as Python does for a missing or doubled argument, naming both spellings.
    """
    if ours is None:
        if feast is None:
            raise TypeError(f"{method}() needs {name}= (or Feast's {feast_name}=)")
        return feast
    if feast is not None:
        raise TypeError(
            f"{method}() got both {name}= and {feast_name}= (Feast's name for it); pass one"
        )
    return ours
