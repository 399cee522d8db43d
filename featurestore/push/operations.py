"""The facade's pushes (``store.push``) and direct online writes (Feast's
``write_to_online_store``).

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
from featurestore.push.pusher import Pusher, PushMode, PushReport


class OnlineWriteOperations(FacadeBase):
    """Rows of one feature view written straight to the online store; the pusher."""

    _pusher: Pusher | None = None

    @property
    def pusher(self) -> Pusher:
        """Push ingestion and direct online writes, opened on first use."""
        if self._pusher is None:
            self._pusher = Pusher(self.config, self.registry, self.online)
            self._pusher.freshness = self.write_listener
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

    def push(
        self,
        push_source_name: str,
        df: PushInput,
        to: PushMode | str = PushMode.ONLINE,
        *,
        principal: PrincipalLike = None,
    ) -> PushReport:
        """Send rows to the views reading push source ``push_source_name``.

        ``df`` (pandas, pyarrow, or ``{column: [values]}``) uses the source's column names and
        carries its timestamp column, join keys and features. ``to`` is ``"online"`` (default,
        as in Feast), ``"offline"`` (appended to the store's data folder; the next historical
        retrieval sees it) or ``"online_and_offline"``. Rows are validated against the views'
        schema before anything is written; online, a row never replaces a newer one.
        """
        pusher = self.pusher
        who, guard = self.guard.principal(principal), self.guard
        mode = PushMode.parse(to)
        if guard.access.enforced:
            views = [v for v, _ in pusher.target(push_source_name).views]
            targets = [definition_target(self.project, v) for v in views]
            for action in ("write_online",) * mode.online + ("write_offline",) * mode.offline:
                guard.require(who, action, targets)
        readers = pusher.target(push_source_name).views if mode.offline else ()
        with self.lineage.pushing(push_source_name, mode, readers) as observe:
            report = pusher.push(push_source_name, df, mode, validate=self._push_validation(who))
            observe(report)
        guard.record(
            who,
            "push",
            f"push_source:{push_source_name}",
            "ok",
            {"to": mode.value, "rows": report.rows, "views": [v.view for v in report.online]},
        )
        return report
