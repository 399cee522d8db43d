"""A stream of events feeding feature views: read by ``featurestore stream``.

    trip_events = StreamSource(name="trip_events", broker="redis://127.0.0.1:6379/0",
                               topic="trips", timestamp_field="event_timestamp",
                               batch_source=FileSource(path="data/trips.parquet"))

A stream source is a push source whose rows arrive from a broker (``redis://`` for Redis Streams)
instead of ``store.push``: its batch source gives the offline history and the column types, and
the consumer writes each batch online (never replacing a newer row), appends it to the offline
store's own folder, and only then acknowledges it (:mod:`featurestore.stream.consumer`). A view
reading it is served and retrieved exactly as a view reading a push source.

Where the stream is (``broker``) is deployment, not definition: changing it makes no new version.
What is read (``topic``, ``format``, ``event_id``, ``schema``) is part of the definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from featurestore.definitions.field import Field
from featurestore.definitions.sources import FileSource, PushSource
from featurestore.errors import DefinitionError

#: Message formats a stream source may declare.
FORMATS = ("json", "avro")


class StreamSource(PushSource):
    """Events from a broker's topic, with the history in ``batch_source`` (see the module)."""

    type_name = "stream"

    def __init__(
        self,
        *,
        name: str,
        broker: str,
        topic: str,
        batch_source: FileSource,
        timestamp_field: str | None = None,
        schema: Sequence[Field] = (),
        format: str = "json",
        event_id: str | None = None,
        description: str = "",
    ) -> None:
        super().__init__(name=name, batch_source=batch_source, description=description)
        label = f"stream source {name!r}"
        if not isinstance(broker, str) or "://" not in broker:
            raise DefinitionError(
                f"{label}: broker must be a URL such as 'redis://127.0.0.1:6379/0', got {broker!r}"
            )
        if not isinstance(topic, str) or not topic:
            raise DefinitionError(f"{label}: topic must be a non-empty string, got {topic!r}")
        if format not in FORMATS:
            raise DefinitionError(f"{label}: format must be one of {list(FORMATS)}, got {format!r}")
        if timestamp_field is not None and timestamp_field != batch_source.timestamp_field:
            raise DefinitionError(
                f"{label}: timestamp_field {timestamp_field!r} differs from its batch source's "
                f"{batch_source.timestamp_field!r}; stream rows are stored with the batch "
                "source's columns, so both must name the same column"
            )
        fields = list(schema)
        for item in fields:
            if not isinstance(item, Field):
                raise DefinitionError(f"{label}: schema must list Field objects, got {item!r}")
        self.broker = broker
        self.topic = topic
        self.schema = fields
        self.format = format
        self.event_id = event_id

    @property
    def scheme(self) -> str:
        """The broker's URL scheme (``redis``, ``kafka``)."""
        return self.broker.split("://", 1)[0]

    def spec(self) -> dict[str, Any]:
        return {
            **super().spec(),
            "type": self.type_name,
            "topic": self.topic,
            "format": self.format,
            "event_id": self.event_id,
            "schema": [f.spec() for f in self.schema],
        }

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "broker": self.broker}

    @classmethod
    def from_dicts(cls, spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> StreamSource:
        meta = meta or {}
        own = ("type", "name", "topic", "format", "event_id", "schema")
        batch_spec = {k: v for k, v in spec.items() if k not in own}
        return cls(
            name=spec["name"],
            broker=meta.get("broker", "redis://127.0.0.1:6379/0"),
            topic=spec["topic"],
            batch_source=FileSource.from_dicts(batch_spec, meta.get("batch_source")),
            schema=[Field.from_dicts(f, None) for f in spec.get("schema", [])],
            format=spec.get("format", "json"),
            event_id=spec.get("event_id"),
            description=meta.get("description", ""),
        )

    def __repr__(self) -> str:
        return (
            f"StreamSource(name={self.name!r}, broker={self.broker!r}, topic={self.topic!r}, "
            f"batch_source={self.batch_source!r})"
        )
