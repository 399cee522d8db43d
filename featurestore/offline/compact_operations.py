"""The facade's compaction of the offline store's pushed files (``featurestore compact``).

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`)::

    report = store.compact()                   # every push source with pushed files
    report = store.compact(["driver_stats_push"])

Compacting a push source rewrites its files, so it needs ``write_offline`` on every view that
reads it (``admin`` on the project when none does any more), and leaves an audit record. How the
files are merged, and why no reader sees a row twice or misses one, is in
:mod:`featurestore.offline.compaction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource
from featurestore.errors import ObjectNotFoundError, did_you_mean
from featurestore.facade_base import FacadeBase
from featurestore.governance.access import Target, definition_target, project_target
from featurestore.governance.guard import PrincipalLike
from featurestore.offline.compaction import (
    COVERED_GRACE_SECONDS,
    FolderCompaction,
    compact_folder,
)
from featurestore.offline.store_data import StoreData


@dataclass
class CompactionReport:
    """What :meth:`CompactionOperations.compact` did, per push source."""

    sources: list[FolderCompaction] = field(default_factory=list)

    @property
    def merged(self) -> int:
        return sum(s.merged for s in self.sources)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.sources)


class CompactionOperations(FacadeBase):
    """Merging the small files pushes leave in the offline store."""

    def compact(
        self,
        sources: Sequence[str] | None = None,
        *,
        grace_seconds: float = COVERED_GRACE_SECONDS,
        principal: PrincipalLike = None,
    ) -> CompactionReport:
        """Merge the small pushed files of ``sources`` (default: every push source with pushed
        files) into larger ones; delete files compacted more than ``grace_seconds`` ago.

        Readers are never stopped: they see the small files or the merged one, never both.
        """
        data = StoreData(self.config)
        present = data.pushed_sources()
        names = present if sources is None else list(dict.fromkeys(sources))
        readers = self._push_readers()
        for name in names:
            if name not in present and name not in readers:
                known = sorted(set(present) | set(readers))
                raise ObjectNotFoundError(
                    f"push source {name!r}: no pushed files and no feature view in project "
                    f"{self.project!r} reads it; push sources: {known}{did_you_mean(name, known)}",
                    kind="push_source",
                    name=name,
                )
        guard = self.guard
        who = guard.principal(principal)
        for name in names:
            views = readers.get(name, [])
            if views:
                targets: list[Target] = [definition_target(self.project, v) for v in views]
                guard.require(who, "write_offline", targets)
            else:  # nothing reads it any more: the project's data, the admin's to rewrite
                guard.require(who, "admin", [project_target(self.project)])
        report = CompactionReport()
        for name in names:
            folder = data.push_folder(name)
            with data.push_lock(name) as files:
                in_flight = []
                for staged in data.staged_files(folder):
                    if "~c" in staged.name:  # a compaction that died (we hold the lock)
                        staged.unlink(missing_ok=True)
                    else:
                        in_flight.append(staged)
                done = compact_folder(
                    folder,
                    [str(p) for p in files],
                    in_flight=in_flight,
                    grace_seconds=grace_seconds,
                )
            report.sources.append(done)
            guard.record(
                who,
                "compact",
                f"push_source:{name}",
                "ok",
                {
                    "merged": done.merged,
                    "written": len(done.written),
                    "rows": done.rows,
                    "deleted": done.deleted,
                },
            )
        return report

    def _push_readers(self) -> dict[str, list[FeatureView]]:
        """Push source name -> the current views reading it."""
        found: dict[str, list[FeatureView]] = {}
        for view in self.registry.list(self.project, "feature_view"):
            if isinstance(view, FeatureView) and isinstance(view.source, PushSource):
                found.setdefault(view.source.name, []).append(view)
        return found
