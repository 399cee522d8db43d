"""The facade's stream consumer (``featurestore stream``).

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`)::

    consumer = store.stream_consumer()            # every stream source of the repository
    consumer.run(stop_event)

Consuming writes the views' online and offline data, so it needs ``write_online`` (for the views
served online) and ``write_offline`` on every view reading a consumed source, checked once when
the consumer starts; the start is audited. Rows are validated as pushes are.
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import DefinitionError, ObjectNotFoundError, did_you_mean
from featurestore.governance.access import definition_target
from featurestore.governance.guard import PrincipalLike
from featurestore.offline.compact_operations import CompactionOperations
from featurestore.stream.brokers import Broker, open_broker
from featurestore.stream.consumer import StreamConsumer
from featurestore.stream.metrics import StreamMetrics


class StreamOperations(CompactionOperations):
    """Running a consumer of the repository's stream sources."""

    def stream_consumer(
        self,
        views: Sequence[str] | None = None,
        *,
        consumer: str = "featurestore",
        batch_size: int = 10_000,
        block_ms: int = 100,
        metrics: StreamMetrics | None = None,
        compact_every: float = 300.0,
        principal: PrincipalLike = None,
    ) -> StreamConsumer:
        """A consumer of the stream sources read by ``views`` (default: every stream source of
        the repository), as ``consumer`` of the project's consumer group."""
        readers = self._stream_readers()
        if views is not None:
            wanted = set(views)
            known = sorted({v.name for vs in readers.values() for v in vs})
            for name in views:
                if name not in known:
                    raise ObjectNotFoundError(
                        f"feature view {name!r} reads no stream source in project "
                        f"{self.project!r}; views reading one: {known}{did_you_mean(name, known)}",
                        kind="feature_view",
                        name=name,
                    )
            readers = {s: vs for s, vs in readers.items() if any(v.name in wanted for v in vs)}
        if not readers:
            raise DefinitionError(
                f"project {self.project!r} has no feature view reading a StreamSource; "
                "define one (see docs/streams.md) and apply it"
            )
        guard = self.guard
        who = guard.principal(principal)
        for source_views in readers.values():
            targets = [definition_target(self.project, v) for v in source_views]
            if any(v.online for v in source_views):
                guard.require(
                    who,
                    "write_online",
                    [t for t, v in zip(targets, source_views, strict=True) if v.online],
                )
            guard.require(who, "write_offline", targets)
        group = f"featurestore.{self.project}"
        opened: list[tuple[StreamSource, Broker]] = []
        try:
            for source_views in readers.values():
                source = source_views[0].source
                assert isinstance(source, StreamSource)
                opened.append((source, open_broker(source, group=group, consumer=consumer)))
        except BaseException:
            for _, broker in opened:
                broker.close()
            raise
        guard.record(who, "stream", f"project:{self.project}", "ok", {"sources": sorted(readers)})

        def compact(names: list[str]) -> object:
            return self.compact(names, principal=who)

        return StreamConsumer(
            self.pusher,
            opened,
            consumer=consumer,
            validate=self._push_validation(who),
            metrics=metrics,
            batch_size=batch_size,
            block_ms=block_ms,
            compact=compact,
            compact_every=compact_every,
        )

    def _stream_readers(self) -> dict[str, list[FeatureView]]:
        found: dict[str, list[FeatureView]] = {}
        for view in self.registry.list(self.project, "feature_view"):
            if isinstance(view, FeatureView) and isinstance(view.source, StreamSource):
                found.setdefault(view.source.name, []).append(view)
        return found
