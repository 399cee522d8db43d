"""The :class:`FeatureStore` facade: the one way in for the SDK, the CLI and the REST service.

It stays thin: it reads the repository's config, opens the registry and the offline engine, and
delegates. Anything every entry point must do (validation now; access control, audit and lineage
later) happens here, once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from featurestore.browse import BrowseOperations
from featurestore.config import RepoConfig, load_config
from featurestore.definitions.base import Definition
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import AccessDeniedError, FeatureReferenceError, ObjectNotFoundError
from featurestore.governance.access import (
    Principal,
    Target,
    authorize_apply,
    definition_target,
    feature_targets,
    project_target,
    service_targets,
)
from featurestore.governance.guard import Guard, PrincipalLike, PrincipalSpec
from featurestore.governance.lineage import Direction, LineageResult
from featurestore.governance.lineage_hooks import LineageHooks
from featurestore.governance.lookup_guard import LookupGuard
from featurestore.governance.operations import GovernanceOperations
from featurestore.governance.retention import RetentionRules, epoch_us
from featurestore.loader import load_repo
from featurestore.materialize import MaterializationReport, Materializer
from featurestore.materialize.arguments import window_bound
from featurestore.materialize.pending import unmaterialized_warnings
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import (
    EntityFrameInput,
    OfflineEngine,
    RetrievalJob,
    SavedDataset,
    require_aggregations,
)
from featurestore.offline.source_schema import type_join_keys
from featurestore.offline.store_data import StoreData
from featurestore.online import OnlineStore, online_store_identity, open_online_store
from featurestore.online.consistency import ConsistencyReport, check_consistency
from featurestore.online.freshness_operations import FreshnessOperations
from featurestore.online.lookup import EntityRowsInput, OnlineLookup, OnlineResponse
from featurestore.online.teardown import TeardownOperations
from featurestore.push import Pusher
from featurestore.push.operations import OnlineWriteOperations
from featurestore.quality.operations import QualityOperations
from featurestore.registry import Plan, Registry, open_registry
from featurestore.stream.operations import StreamOperations
from featurestore.transform.online import OnDemandLookup
from featurestore.transform.operations import OnDemandOperations

#: The environment variable the SDK and CLI read a token from.
TOKEN_ENV = "FEATURESTORE_TOKEN"


class FeatureStore(
    BrowseOperations,
    QualityOperations,
    GovernanceOperations,
    OnlineWriteOperations,
    OnDemandOperations,
    StreamOperations,
    FreshnessOperations,
    TeardownOperations,
):
    """Entry point to a feature repository.

    store = FeatureStore(repo_path="repo")        # reads repo/featurestore.yaml
    store.apply([driver, driver_stats])
    df = store.get_historical_features(entity_df=entities,
                                       features=["driver_stats:conv_rate"]).to_pandas()
    """

    def __init__(
        self,
        repo_path: str | os.PathLike[str] = ".",
        *,
        config: RepoConfig | None = None,
        principal: Principal | str | None = None,
        token: str | None = None,
    ) -> None:
        self.config = config if config is not None else load_config(repo_path)
        # Who this store acts for: a token (default: $FEATURESTORE_TOKEN) wins over a name.
        self._principal_spec = PrincipalSpec(
            token=token if token is not None else os.environ.get(TOKEN_ENV) or None,
            name=principal,
        )
        self._guard: Guard | None = None
        self._registry: Registry | None = None
        self._offline: OfflineEngine | None = None
        self._online: OnlineStore | None = None
        self._lookup: OnDemandLookup | None = None
        self._pusher: Pusher | None = None
        self._lineage: LineageHooks | None = None
        self._retention: RetentionRules | None = None

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def repo_path(self) -> Path:
        return self.config.repo_path

    @property
    def registry(self) -> Registry:
        """The registry, opened on first use; a SQLite file that does not exist is a
        :class:`~featurestore.errors.RegistryNotFoundError` (only :meth:`apply` creates it)."""
        return self._open_registry(create=False)

    def _open_registry(self, *, create: bool) -> Registry:
        if self._registry is None:
            self._registry = open_registry(self.config.registry, create=create)
        return self._registry

    @property
    def guard(self) -> Guard:
        """Access checks and the audit log (see :mod:`featurestore.governance.guard`)."""
        if self._guard is None:
            self._guard = Guard(self.config, self.registry, self._principal_spec)
        return self._guard

    @property
    def principal(self) -> Principal:
        """Who this store acts for (resolved from its token or name; ``anonymous`` without)."""
        return self.guard.principal()

    @property
    def offline(self) -> OfflineEngine:
        """The offline engine ``offline_store.type`` names (see
        :mod:`featurestore.offline.backends`), opened on first use."""
        if self._offline is None:
            self._offline = open_offline_engine(self.config)
        return self._offline

    @property
    def online(self) -> OnlineStore:
        """The online store, opened on first use."""
        if self._online is None:
            self._online = open_online_store(self.config)
        return self._online

    @property
    def lineage(self) -> LineageHooks:
        """Lineage: the graph in the registry (``.graph``), saved datasets (``.datasets``) and
        the OpenLineage emitter (``.emitter``); see :mod:`featurestore.governance.lineage`."""
        if self._lineage is None:
            self._lineage = LineageHooks(self.config, self.registry)
        return self._lineage

    @property
    def retention(self) -> RetentionRules:
        """Each view's effective retention window: its own, else ``retention.default``."""
        if self._retention is None:
            default = self.config.retention.default
            self._retention = RetentionRules(self.registry, self.project, default)
        return self._retention

    # -- definitions ---------------------------------------------------------------------------

    def plan(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool = False
    ) -> Plan:
        """What :meth:`apply` would change, without changing anything.

        With ``objects=None`` the repository's own files are loaded and compared, and objects
        missing from them count as deleted (as ``featurestore plan`` does).
        """
        objects, delete_missing = self._desired(objects, delete_missing)
        self._validate_sources(objects, delete_missing)
        self.guard.require(self.principal, "describe", [project_target(self.project)])
        return self.registry.plan(self.project, objects, delete_missing=delete_missing)

    def apply(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool = False
    ) -> Plan:
        """Validate and register definitions, all or nothing; returns the plan that was applied.

        ``objects=None`` applies the repository's files and deletes registered objects that are
        no longer in them (as ``featurestore apply`` does).
        """
        # The one operation that may start a registry (every other one reports it missing).
        self._open_registry(create=True)
        objects, delete_missing = self._desired(objects, delete_missing)
        self._validate_sources(objects, delete_missing)
        who, guard = self.principal, self.guard
        # Rights are checked on the plan the registry computes under its lock, in the same
        # transaction as the writes: a policy committed meanwhile is seen, never silently lost.
        check = authorize_apply(self.project, who, objects)
        try:
            applied = self.registry.apply(
                self.project, objects, delete_missing=delete_missing, check=check
            )
        except AccessDeniedError as denied:
            # Recorded once the apply has rolled back: the audit log shares its database.
            guard.record_denial(who, denied)
            raise
        self.lineage.after_apply(applied)
        # What this process resolved from the registry follows the apply at once (other
        # processes notice within their freshness interval).
        self._lookup, self._pusher, self._write_time = None, None, None
        guard.record_apply(who, applied)
        store = online_store_identity(self.config)
        pending = unmaterialized_warnings(applied, objects, self.registry, self.project, store)
        return replace(applied, warnings=pending)

    def _desired(
        self, objects: Sequence[Definition] | None, delete_missing: bool
    ) -> tuple[list[Definition], bool]:
        if objects is None:
            return load_repo(self.repo_path).objects, True
        return list(objects), delete_missing

    def _validate_sources(self, objects: Sequence[Definition], delete_missing: bool) -> None:
        data = StoreData(self.config)
        views = [obj for obj in objects if isinstance(obj, FeatureView)]
        # Views that stay registered share entities with these: their key types must agree.
        staying = [] if delete_missing else self.registry.list(self.project, "feature_view")
        type_join_keys(views, self.repo_path, [v for v in staying if isinstance(v, FeatureView)])
        for view in views:
            data.check_not_owned(view)
            if view.validation is not None:
                # A suite file is read now: the registry keeps the suite itself.
                view.validation = view.validation.resolve(self.repo_path)
                view.validation.check_columns(view.label, view.feature_names)

    # -- retrieval -----------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        """A point-in-time correct training frame: one row per entity row, in input order.

        ``features`` is a list of ``"view:feature"`` / ``"view@N:feature"`` references, a
        :class:`FeatureService`, or the name of a registered feature service.
        ``filter_by_created_timestamp=True`` (Feast's name) also leaves out source rows created
        after the entity row's timestamp, or with no created timestamp: only what existed at
        prediction time is served. Views whose source has no created column are unaffected.
        """
        references = self._references(features)
        plan = self._retrieval_plan(references, full_feature_names)  # on-demand views too
        requests = plan.requests
        guard = self.guard
        targets = [
            target
            for r in requests
            for target in feature_targets(
                self.project, r.view, r.features, governing=guard.governing(r.view)
            )
        ]
        targets += self._on_demand_targets([p.view for p in plan.parts])
        if isinstance(features, FeatureService | str):
            service = features if isinstance(features, FeatureService) else None
            targets += self._service_targets(service or self._feature_service(str(features)))
        self.guard.require(self.principal, "read_offline", targets)
        # Rows older than a view's retention window are never served, from any source.
        requests = self.retention.apply(requests, epoch_us(datetime.now(timezone.utc)))
        require_aggregations(self.offline, requests)
        job = plan.wrap(
            self.offline.get_historical_features(
                entity_df, requests, filter_by_created_timestamp=filter_by_created_timestamp
            )
        )
        # job.save_dataset(name) records the frame through the lineage layer.
        asked_through = features if isinstance(features, FeatureService | str) else None
        saver = self.lineage.dataset_saver(
            requests, service=asked_through, principal=self.guard.audit_name(self.principal)
        )
        # A saved frame's statistics are recorded too: drift checks compare with them.
        visible = plan.visible(requests)  # on-demand inputs not asked for are not in the frame
        job.attach_saver(self._profiling_saver(saver, visible, None) if visible else saver)
        return job

    def get_saved_dataset(self, name: str) -> SavedDataset:
        """The record of a training set saved with ``job.save_dataset(name)``."""
        self.guard.require(self.principal, "describe", [project_target(self.project)])
        return self.lineage.datasets.get(name)

    def trace_lineage(
        self,
        name: str,
        direction: Direction = "both",
        *,
        kind: str | None = None,
        runs: int | None = None,
        principal: PrincipalLike = None,
    ) -> LineageResult:
        """The lineage of the nodes called ``name``: what they are built from (``upstream``),
        what is built from them (``downstream``) or both; needs ``describe`` on the project."""
        guard = self.guard
        guard.require(guard.principal(principal), "describe", [project_target(self.project)])
        return self.lineage.graph.trace(name, direction, kind=kind, runs=runs)

    def list_saved_datasets(self, *, principal: PrincipalLike = None) -> list[SavedDataset]:
        """Every saved training set of the project, by name (needs ``describe``)."""
        guard = self.guard
        guard.require(guard.principal(principal), "describe", [project_target(self.project)])
        return self.lineage.datasets.list()

    def _service_targets(self, service: FeatureService) -> list[Target]:
        # The registered service's metadata decides, not that of an object built in code.
        return service_targets(self.project, self.guard.governing(service))[:1]

    def _references(self, features: Sequence[str] | FeatureService | str) -> list[str]:
        if isinstance(features, FeatureService):
            return features.feature_refs()
        if isinstance(features, str):
            if ":" in features:
                raise FeatureReferenceError(
                    f"features={features!r}: pass a list of references, e.g. [{features!r}]"
                )
            return self._feature_service(features).feature_refs()
        return list(features)

    def _view_lookup(self, name: str, version: int | None) -> FeatureView:
        try:
            return self._feature_view(name, version)
        except ObjectNotFoundError as exc:
            raise FeatureReferenceError.from_not_found(exc) from None

    # -- online path ---------------------------------------------------------------------------

    def materialize(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        feature_views: Sequence[str] | None = None,
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        progress: bool | None = None,
        principal: PrincipalLike = None,
    ) -> MaterializationReport:
        """Write each view's latest row per entity with event time in ``[start, end]`` online.

        A write-time on-demand view named in ``feature_views`` stands for its source views:
        materializing them computes it.

        ``start_date`` / ``end_date`` are Feast's names for ``start`` / ``end``. ``progress``
        shows a progress bar (default: when stderr is a terminal). ``principal`` is who asks
        (default: the store's; the REST service passes the bearer token's owner).
        """
        start = window_bound("materialize", "start", start, "start_date", start_date)
        end = window_bound("materialize", "end", end, "end_date", end_date)
        feature_views = self._with_write_time_sources(feature_views)
        who = self._require_views("materialize", feature_views, principal)
        report = self._materializer(progress, who).materialize(start, end, feature_views)
        self._record_materialization(report, who)
        return report

    def materialize_incremental(
        self,
        end: datetime | None = None,
        feature_views: Sequence[str] | None = None,
        *,
        end_date: datetime | None = None,
        progress: bool | None = None,
        principal: PrincipalLike = None,
    ) -> MaterializationReport:
        """Materialize what arrived since each view's watermark (late rows too) up to ``end``."""
        end = window_bound("materialize_incremental", "end", end, "end_date", end_date)
        feature_views = self._with_write_time_sources(feature_views)
        who = self._require_views("materialize", feature_views, principal)
        report = self._materializer(progress, who).materialize_incremental(end, feature_views)
        self._record_materialization(report, who)
        return report

    def _require_views(
        self, action: str, names: Sequence[str] | None, principal: PrincipalLike
    ) -> Principal:
        """Who asks, once allowed ``action`` on the named views (default: every online view);
        AccessDeniedError otherwise."""
        guard = self.guard
        who = guard.principal(principal)
        if not guard.access.enforced:
            return who
        if names is None:
            views = [
                v
                for v in self.registry.list(self.project, "feature_view")
                if isinstance(v, FeatureView) and v.online
            ]
        else:
            listed = [names] if isinstance(names, str) else list(names)
            views = []
            for name in listed:
                try:
                    views.append(self._feature_view(name))
                except ObjectNotFoundError:
                    continue  # the operation itself reports an unknown view
        guard.require(who, action, [definition_target(self.project, v) for v in views])
        return who

    def _record_materialization(self, report: MaterializationReport, who: Principal) -> None:
        guard = self.guard
        for view in report.views:
            guard.record(
                who,
                "materialize",
                f"feature_view:{view.view}",
                "ok",
                {"version": view.version, "keys": view.keys, "written": view.written},
            )

    def _materializer(self, progress: bool | None, who: Principal) -> Materializer:
        return Materializer(
            project=self.project,
            registry=self.registry,
            offline=self.offline,
            online=self.online,
            progress=progress,
            listener=self.lineage.materialization_listener(),
            retention=self.retention.of,
            validation=self._materialization_validation(who),
            freshness=self.write_listener,
            spool_dir=self.config.resolve(self.config.offline_store.temp_directory),
        )

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: EntityRowsInput | None = None,
        *,
        entities: dict[str, Sequence[object]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: PrincipalLike = None,
    ) -> OnlineResponse:
        """Latest values per entity, with event timestamps and a status per value.

        Pass ``entity_rows=[{"driver_id": 1}, ...]`` or ``entities={"driver_id": [1, ...]}``.
        Statuses are evaluated at ``as_of`` (default: now): a value older than its view's TTL
        at that instant is ``OUTSIDE_MAX_AGE``, one from after it ``NOT_FOUND``.
        ``principal`` is who asks (default: the store's principal; the REST service passes the
        bearer token's owner); every requested view and feature needs ``read_online``.
        """
        references = self._online_references(features)
        return self._online_lookup().lookup(
            references,
            entity_rows=entity_rows,
            entities=entities,
            full_feature_names=full_feature_names,
            as_of=as_of,
            principal=principal,
        )

    async def get_online_features_async(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: EntityRowsInput | None = None,
        *,
        entities: dict[str, Sequence[object]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: PrincipalLike = None,
    ) -> OnlineResponse:
        """:meth:`get_online_features` for asyncio code (the REST service uses it): with Redis,
        a lookup of up to 128 entity rows awaits one round trip on an async client and never
        blocks the event loop; anything that must read the registry runs in a thread."""
        return await self._online_lookup().lookup_async(
            self._online_references(features),
            entity_rows=entity_rows,
            entities=entities,
            full_feature_names=full_feature_names,
            as_of=as_of,
            principal=principal,
        )

    def _online_lookup(self) -> OnDemandLookup:
        if self._lookup is None:
            inner = OnlineLookup(
                self.project,
                self.registry,
                self.online,
                authorize=self._lookup_guard(),
                retention=self.retention.of,
                stored=self.write_time.stored,
            )
            self._lookup = self._on_demand_lookup(inner)
        return self._lookup

    def _lookup_guard(self) -> LookupGuard:
        return LookupGuard(self.guard, self.project, self._feature_service)

    def _online_references(
        self, features: Sequence[str] | FeatureService | str
    ) -> Sequence[str] | str:
        # A service name goes to the lookup as is: it resolves and caches it per registry state,
        # where _references would read the registry on every call.
        return features if isinstance(features, str) else self._references(features)

    def consistency_check(
        self,
        feature_views: Sequence[str] | None = None,
        *,
        sample: int = 1000,
        as_of: datetime | None = None,
        seed: int | None = None,
    ) -> ConsistencyReport:
        """Compare online lookups with a historical retrieval at the same instant, per feature.

        The report shows values: like the lookups and retrievals it compares, it needs
        ``read_online`` and ``read_offline`` on every feature of every view it checks.
        """
        return check_consistency(
            self,
            feature_views=feature_views,
            sample=sample,
            as_of=as_of,
            seed=seed,
            authorize=self._lookup_guard(),
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the running event loop's async connections, then :meth:`close`."""
        if self._online is not None:
            await self._online.aclose()
        self.close()

    def close(self) -> None:
        """Close the registry, the offline engine and the online store."""
        if self._freshness_log is not None:
            self._freshness_log.flush()
            self._freshness_log = None
        if self._guard is not None:
            self._guard.close()
            self._guard = None
        if self._online is not None:
            self._online.close()
            self._online = None
            self._lookup = None
            self._pusher = None
            self._write_time = None
        if self._offline is not None:
            self._offline.close()
            self._offline = None
        if self._quality is not None:
            # Passing push validations still pending go to the registry first.
            self._quality.flush_pushes()
            self._quality = None
        if self._lineage is not None:
            self._lineage.close()
            self._lineage = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
