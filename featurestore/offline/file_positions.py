"""Stream positions kept in the metadata of the offline files a stream consumer writes.

A consumer appends each batch to the offline store as one file, then acknowledges the batch to
the broker. Killed between the two, it gets the batch again on restart: the positions in the
files tell it which events are already stored offline, so none is stored twice. The file and its
positions are published by the same rename, so they can never disagree::

    {b"featurestore.stream": b'{"featurestore/featurestore:trips": "1733000000000-5"}'}

A position is a Redis Streams entry id (``<milliseconds>-<sequence>``); compaction keeps, for
each consumer, the largest position of the files it merges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

#: The schema metadata key of a file's stream positions (a JSON object: consumer -> position).
POSITIONS_KEY = b"featurestore.stream"


def position_key(position: str) -> tuple[int, int]:
    """``"1733000000000-5"`` -> ``(1733000000000, 5)``, in stream order."""
    millis, _, sequence = position.partition("-")
    return int(millis), int(sequence or 0)


def positions_of(metadata: Mapping[bytes, bytes] | None) -> dict[str, str]:
    """The positions recorded in a file's schema metadata (empty when none)."""
    raw = (metadata or {}).get(POSITIONS_KEY)
    return {} if raw is None else {str(k): str(v) for k, v in json.loads(raw).items()}


def merge_positions(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The largest position of each consumer over ``maps``."""
    merged: dict[str, str] = {}
    for positions in maps:
        for consumer, position in positions.items():
            known = merged.get(consumer)
            if known is None or position_key(position) > position_key(known):
                merged[consumer] = position
    return merged


def positions_metadata(positions: Mapping[str, str]) -> dict[bytes, bytes]:
    """Schema metadata recording ``positions`` (empty when there are none)."""
    if not positions:
        return {}
    return {POSITIONS_KEY: json.dumps(dict(sorted(positions.items()))).encode()}
