"""The facade's direct online writes: Feast's ``write_to_online_store``.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`);
the write checks ``write_online`` on the view through the guard and leaves an audit record.

    store.write_to_online_store("driver_stats", df)    # df: join keys, features, event_timestamp
"""

from __future__ import annotations

from featurestore.facade_base import FacadeBase
from featurestore.governance.access import definition_target
from featurestore.governance.guard import PrincipalLike
from featurestore.push.frame import PushInput
from featurestore.push.online_write import OnlineWriteReport
from featurestore.push.pusher import Pusher


class OnlineWriteOperations(FacadeBase):
    """Rows of one feature view written straight to the online store; the pusher."""

    _pusher: Pusher | None = None

    @property
    def pusher(self) -> Pusher:
        """Push ingestion and direct online writes, opened on first use."""
        if self._pusher is None:
            self._pusher = Pusher(self.config, self.registry, self.online)
            self._pusher.freshness = self.freshness_log
        return self._pusher

    def write_to_online_store(
        self, feature_view_name: str, df: PushInput, *, principal: PrincipalLike = None
    ) -> OnlineWriteReport:
        """Write ``df``'s rows to the online namespace of ``feature_view_name`` (its current
        version), as Feast's ``write_to_online_store`` does.

        ``df`` (pandas, pyarrow, or ``{column: [values]}``) uses the view's names: its join keys
        and features, the event timestamp (the source's timestamp field, or ``event_timestamp``)
        and optionally the created timestamp (the source's created column, or ``created``;
        default: now). Rows are checked, and validated as a push's are (a strict validation that
        fails raises ValidationFailedError), before anything is written; a row never replaces a
        newer one. Needs ``write_online`` on the view. Unlike :meth:`push`, nothing goes offline: the
        values are not in the view's source, so a later historical retrieval will not see them.
        """
        guard = self.guard
        who = guard.principal(principal)
        view, version = self.pusher.online_view(feature_view_name)
        guard.require(who, "write_online", [definition_target(self.project, view)])
        report = self.pusher.write_view(view, version, df, self._write_validation(who))
        guard.record(
            who,
            "write_online",
            f"feature_view:{view.name}",
            "ok",
            {"version": version, "rows": report.rows, "written": report.result.written},
        )
        return report
