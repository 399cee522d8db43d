"""Erasure of stream dead letters: the messages a stream consumer kept because they could not be
stored (``<topic>.dead``, see :mod:`featurestore.stream`). They hold the message's fields, entity
keys and feature values included, so erasing an entity deletes every dead letter whose key fields
name it.

A dead letter is matched by its text fields: the source column of each join key must hold the
entity's value, as text (``"1001"``) or as text that parses to it (``"01001"`` for an integer
key). A message without those fields cannot be attributed to any entity and stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import ErasureError
from featurestore.governance.holdings import Removal
from featurestore.stream.brokers import BrokerUnavailableError, erase_dead_letters

PLACE = "dead_letters"


def erase_stream_dead_letters(
    sources: Sequence[tuple[StreamSource, Mapping[str, Any]]], *, dry_run: bool
) -> list[Removal]:
    """Delete (``dry_run``: count) the dead letters of each stream source holding the entity,
    given as the source and the entity's values by source column; one :class:`Removal` per
    source with any."""
    found: list[Removal] = []
    seen: set[tuple[str, str, str]] = set()
    for source, values in sources:
        identity = (source.broker, source.topic, repr(sorted(values.items())))
        if identity in seen:
            continue
        seen.add(identity)
        try:
            rows = erase_dead_letters(source, _matcher(values), dry_run=dry_run)
        except BrokerUnavailableError as exc:
            raise ErasureError(
                f"erase: cannot reach the broker of stream source {source.name!r} to erase its "
                f"dead letters ({exc}); what was removed before stays removed, run the erasure "
                "again once the broker is back"
            ) from exc
        if rows:
            found.append(Removal(PLACE, f"{source.topic}.dead", rows, source.name))
    return found


def _matcher(values: Mapping[str, Any]) -> Callable[[Mapping[str, str]], bool]:
    def matches(fields: Mapping[str, str]) -> bool:
        return all(_holds(fields.get(column), value) for column, value in values.items())

    return matches


def _holds(text: str | None, value: Any) -> bool:
    """Whether a message field's ``text`` names ``value`` (a join key's typed value)."""
    if text is None or value is None:
        return False
    if text == str(value):
        return True
    if isinstance(value, bool):
        return text.strip().lower() in (("true", "1", "t") if value else ("false", "0", "f"))
    if isinstance(value, (int, float)):
        try:
            return type(value)(text.strip()) == value
        except ValueError:
            return False
    return False
