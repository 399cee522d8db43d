"""Stream positions kept in the metadata of the offline files a stream consumer writes.

A consumer appends each batch to the offline store as one file, then acknowledges the batch to
the broker. Killed between the two, it gets the batch again on restart: the positions in the
files tell it which events are already stored offline, so none is stored twice. The file and its
positions are published by the same rename, so they can never disagree::

    {b"featurestore.stream": b'{"featurestore/featurestore:trips": "1733000000000-5"}'}

A position is a Redis Streams entry id (``<milliseconds>-<sequence>``); compaction keeps, for
each consumer, the largest position of the files it merges. A consumer is named
``<consumer>:<topic>``.

Materializing an aggregated view uses them too: the positions of the files the offline engine
read (:func:`positions_in_files` of exactly its listing, exposed as ``durable`` on the result of
``read_events``) tell which streamed events the read holds, so the online states keep the ones
merged online whose file was published after the listing (:func:`newest_position`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping, Sequence

import pyarrow.parquet as pq

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


def positions_in_files(files: Sequence[str]) -> dict[str, str]:
    """The largest position of each consumer recorded in ``files`` (their Parquet footers)."""
    return merge_positions(_file_positions(path) for path in files)


def _file_positions(path: str) -> dict[str, str]:
    stat = os.stat(path)
    return dict(_positions_of_version(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4096)
def _positions_of_version(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """One version of a file's positions, its footer read once: every materialization of a
    streamed view asks for all of its files' (a published file never changes in place)."""
    return tuple(positions_of(pq.read_schema(path).metadata).items())


def newest_position(positions: Mapping[str, str], topic: str) -> tuple[int, int] | None:
    """The largest of ``positions`` (consumer -> position) in ``topic``, the consumers named
    ``<consumer>:<topic>`` (None: no position in that topic). Positions of one topic are one
    ordered sequence whichever consumer wrote them, so the largest says what is stored."""
    suffix = f":{topic}"
    keys = [position_key(p) for name, p in positions.items() if name.endswith(suffix)]
    return max(keys, default=None)
