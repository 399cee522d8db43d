"""The facade's view of freshness: ``store.status()`` and the freshness log every write feeds.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`)::

    for row in store.status():
        print(row.view, row.watermark, row.online_age, row.stream_lag, row.breached)

Per online view (at its current version): when it was last materialized and up to when (its
watermark in the current online store), the newest event time written online by any path
(materialization, push, stream) and its age, the stream lag of its stream source, and whether its
``freshness`` objective is breached. Only views the principal may ``describe`` are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.stream_source import StreamSource
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import definition_target
from featurestore.governance.guard import PrincipalLike
from featurestore.online import online_store_identity
from featurestore.online.freshness import FreshnessLog, read_freshness


@dataclass(frozen=True)
class ViewStatus:
    """The freshness of one view's online values."""

    view: str
    version: int
    last_materialized: datetime | None
    watermark: datetime | None
    newest_online_event: datetime | None
    last_online_write: datetime | None
    online_age: timedelta | None
    stream_lag: int | None
    objective: timedelta | None

    @property
    def breached(self) -> bool:
        """The view has a freshness objective and its newest online value is older (or there
        is none)."""
        if self.objective is None:
            return False
        return self.online_age is None or self.online_age > self.objective

    def to_dict(self) -> dict[str, object]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        def seconds(span: timedelta | None) -> float | None:
            return None if span is None else span.total_seconds()

        return {
            "view": self.view,
            "version": self.version,
            "last_materialized": iso(self.last_materialized),
            "watermark": iso(self.watermark),
            "newest_online_event": iso(self.newest_online_event),
            "last_online_write": iso(self.last_online_write),
            "online_age_seconds": seconds(self.online_age),
            "stream_lag": self.stream_lag,
            "freshness_objective_seconds": seconds(self.objective),
            "freshness_breached": self.breached,
        }


class FreshnessOperations(FacadeBase):
    """Freshness of the online values, recorded by every write and read by ``status``."""

    _freshness_log: FreshnessLog | None = None

    @property
    def freshness_log(self) -> FreshnessLog:
        """Where online writes note the newest event time they wrote (opened on first use)."""
        if self._freshness_log is None:
            self._freshness_log = FreshnessLog(
                self.registry, self.project, online_store_identity(self.config)
            )
        return self._freshness_log

    def status(
        self,
        views: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        principal: PrincipalLike = None,
    ) -> list[ViewStatus]:
        """Freshness of each online view the principal may describe (``views``: only these)."""
        if self._freshness_log is not None:
            self._freshness_log.flush()  # this process's own writes first
        guard = self.guard
        who = guard.principal(principal)
        wanted = None if views is None else set(views)
        chosen = [
            v
            for v in self.registry.list(self.project, "feature_view")
            if isinstance(v, FeatureView)
            and v.online
            and (wanted is None or v.name in wanted)
            and guard.allowed(who, "describe", [definition_target(self.project, v)])
        ]
        store = online_store_identity(self.config)
        watermarks = self.registry.list_watermarks(self.project, online_store=store)
        written = read_freshness(self.registry, self.project, store)
        moment = now if now is not None else datetime.now(timezone.utc)
        lags: dict[str, int | None] = {}
        rows = []
        for view in sorted(chosen, key=lambda v: v.name):
            version = self.registry.current_version(self.project, "feature_view", view.name)
            mark = watermarks.get((view.name, version))
            fresh = written.get((view.name, version))
            newest = fresh.newest_event if fresh is not None else None
            lag = None
            if isinstance(view.source, StreamSource):
                if view.source.name not in lags:
                    lags[view.source.name] = _lag(view.source, f"featurestore.{self.project}")
                lag = lags[view.source.name]
            rows.append(
                ViewStatus(
                    view=view.name,
                    version=version,
                    last_materialized=None if mark is None else mark.updated_at,
                    watermark=None if mark is None else mark.end,
                    newest_online_event=newest,
                    last_online_write=None if fresh is None else fresh.written_at,
                    online_age=None if newest is None else moment - newest,
                    stream_lag=lag,
                    objective=view.freshness,
                )
            )
        return rows


def _lag(source: StreamSource, group: str) -> int | None:
    from featurestore.stream.brokers import stream_lag  # loads the broker's client only here

    return stream_lag(source, group)
