"""The :class:`FeatureStore` facade: the one way in for the SDK, the CLI and the REST service.

It stays thin: it reads the repository's config, opens the registry and the offline engine, and
delegates. Anything every entry point must do (validation now; access control, audit and lineage
later) happens here, once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from featurestore.config import RepoConfig, load_config
from featurestore.definitions.base import Definition
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import FeatureReferenceError, ObjectNotFoundError
from featurestore.loader import load_repo
from featurestore.materialize import MaterializationReport, Materializer
from featurestore.offline.base import EntityFrameInput, OfflineEngine, RetrievalJob
from featurestore.offline.duckdb_engine import DuckDBEngine
from featurestore.offline.source_schema import validate_view_source
from featurestore.offline.store_data import StoreData
from featurestore.online import OnlineStore, open_online_store
from featurestore.online.consistency import ConsistencyReport, check_consistency
from featurestore.online.lookup import EntityRowsInput, OnlineLookup, OnlineResponse
from featurestore.push import Pusher, PushInput, PushMode, PushReport
from featurestore.references import resolve_requests
from featurestore.registry import HistoryEntry, Plan, Registry, open_registry


class FeatureStore:
    """Entry point to a feature repository.

    store = FeatureStore(repo_path="repo")        # reads repo/featurestore.yaml
    store.apply([driver, driver_stats])
    df = store.get_historical_features(entity_df=entities,
                                       features=["driver_stats:conv_rate"]).to_pandas()
    """

    def __init__(
        self, repo_path: str | os.PathLike[str] = ".", *, config: RepoConfig | None = None
    ) -> None:
        self.config = config if config is not None else load_config(repo_path)
        self._registry: Registry | None = None
        self._offline: OfflineEngine | None = None
        self._online: OnlineStore | None = None
        self._lookup: OnlineLookup | None = None
        self._pusher: Pusher | None = None

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def repo_path(self) -> Path:
        return self.config.repo_path

    @property
    def registry(self) -> Registry:
        """The registry, opened on first use."""
        if self._registry is None:
            self._registry = open_registry(self.config.registry)
        return self._registry

    @property
    def offline(self) -> OfflineEngine:
        """The offline engine, opened on first use."""
        if self._offline is None:
            self._offline = DuckDBEngine(self.config)
        return self._offline

    @property
    def online(self) -> OnlineStore:
        """The online store, opened on first use."""
        if self._online is None:
            self._online = open_online_store(self.config)
        return self._online

    # -- definitions ---------------------------------------------------------------------------

    def plan(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool = False
    ) -> Plan:
        """What :meth:`apply` would change, without changing anything.

        With ``objects=None`` the repository's own files are loaded and compared, and objects
        missing from them count as deleted (as ``featurestore plan`` does).
        """
        objects, delete_missing = self._desired(objects, delete_missing)
        self._validate_sources(objects)
        return self.registry.plan(self.project, objects, delete_missing=delete_missing)

    def apply(
        self, objects: Sequence[Definition] | None = None, *, delete_missing: bool = False
    ) -> Plan:
        """Validate and register definitions, all or nothing; returns the plan that was applied.

        ``objects=None`` applies the repository's files and deletes registered objects that are
        no longer in them (as ``featurestore apply`` does).
        """
        objects, delete_missing = self._desired(objects, delete_missing)
        self._validate_sources(objects)
        return self.registry.apply(self.project, objects, delete_missing=delete_missing)

    def _desired(
        self, objects: Sequence[Definition] | None, delete_missing: bool
    ) -> tuple[list[Definition], bool]:
        if objects is None:
            return load_repo(self.repo_path).objects, True
        return list(objects), delete_missing

    def _validate_sources(self, objects: Sequence[Definition]) -> None:
        data = StoreData(self.config)
        for obj in objects:
            if isinstance(obj, FeatureView):
                validate_view_source(obj, self.repo_path)
                data.check_not_owned(obj)

    def get_entity(self, name: str) -> Entity:
        entity = self.registry.get(self.project, "entity", name)
        assert isinstance(entity, Entity)
        return entity

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """The view's current definition, or the one of ``version``."""
        view = self.registry.get(self.project, "feature_view", name, version)
        assert isinstance(view, FeatureView)
        return view

    def get_feature_service(self, name: str) -> FeatureService:
        service = self.registry.get(self.project, "feature_service", name)
        assert isinstance(service, FeatureService)
        return service

    def list_entities(self) -> list[Entity]:
        return [o for o in self.registry.list(self.project, "entity") if isinstance(o, Entity)]

    def list_feature_views(self) -> list[FeatureView]:
        return [
            o
            for o in self.registry.list(self.project, "feature_view")
            if isinstance(o, FeatureView)
        ]

    def list_feature_services(self) -> list[FeatureService]:
        return [
            o
            for o in self.registry.list(self.project, "feature_service")
            if isinstance(o, FeatureService)
        ]

    def history(self, name: str, kind: str | None = None) -> list[HistoryEntry]:
        """Every version and metadata change of the object(s) called ``name``, oldest first."""
        return self.registry.history(self.project, name, kind)

    # -- retrieval -----------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool = False,
    ) -> RetrievalJob:
        """A point-in-time correct training frame: one row per entity row, in input order.

        ``features`` is a list of ``"view:feature"`` / ``"view@N:feature"`` references, a
        :class:`FeatureService`, or the name of a registered feature service.
        """
        references = self._references(features)
        requests = resolve_requests(
            references, self._view_lookup, full_feature_names=full_feature_names
        )
        return self.offline.get_historical_features(entity_df, requests)

    def _references(self, features: Sequence[str] | FeatureService | str) -> list[str]:
        if isinstance(features, FeatureService):
            return features.feature_refs()
        if isinstance(features, str):
            if ":" in features:
                raise FeatureReferenceError(
                    f"features={features!r}: pass a list of references, e.g. [{features!r}]"
                )
            return self.get_feature_service(features).feature_refs()
        return list(features)

    def _view_lookup(self, name: str, version: int | None) -> FeatureView:
        try:
            return self.get_feature_view(name, version)
        except ObjectNotFoundError as exc:
            raise FeatureReferenceError(str(exc)) from None

    # -- online path ---------------------------------------------------------------------------

    def materialize(
        self,
        start: datetime,
        end: datetime,
        feature_views: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> MaterializationReport:
        """Write each view's latest row per entity with event time in ``[start, end]`` online.

        ``progress`` shows a progress bar (default: when stderr is a terminal).
        """
        return self._materializer(progress).materialize(start, end, feature_views)

    def materialize_incremental(
        self,
        end: datetime,
        feature_views: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> MaterializationReport:
        """Materialize what arrived since each view's watermark (late rows included) up to ``end``."""
        return self._materializer(progress).materialize_incremental(end, feature_views)

    def _materializer(self, progress: bool | None) -> Materializer:
        return Materializer(
            project=self.project,
            registry=self.registry,
            offline=self.offline,
            online=self.online,
            progress=progress,
        )

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: EntityRowsInput | None = None,
        *,
        entities: dict[str, Sequence[object]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: str | None = None,
    ) -> OnlineResponse:
        """Latest values per entity, with event timestamps and a status per value.

        Pass ``entity_rows=[{"driver_id": 1}, ...]`` or ``entities={"driver_id": [1, ...]}``.
        Statuses are evaluated at ``as_of`` (default: now): a value older than its view's TTL
        at that instant is ``OUTSIDE_MAX_AGE``, one from after it ``NOT_FOUND``.
        ``principal`` is who asks (the REST service passes the bearer token's owner); access
        control will decide on it, for now it is accepted and not used.
        """
        references = self._online_references(features)
        return self._online_lookup().lookup(
            references,
            entity_rows=entity_rows,
            entities=entities,
            full_feature_names=full_feature_names,
            as_of=as_of,
        )

    async def get_online_features_async(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: EntityRowsInput | None = None,
        *,
        entities: dict[str, Sequence[object]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: str | None = None,
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
        )

    def _online_lookup(self) -> OnlineLookup:
        if self._lookup is None:
            self._lookup = OnlineLookup(self.project, self.registry, self.online)
        return self._lookup

    def _online_references(
        self, features: Sequence[str] | FeatureService | str
    ) -> Sequence[str] | str:
        # A service name goes to the lookup as is: it resolves and caches it per registry state,
        # where _references would read the registry on every call.
        return features if isinstance(features, str) else self._references(features)

    def push(
        self,
        push_source_name: str,
        df: PushInput,
        to: PushMode | str = PushMode.ONLINE,
        *,
        principal: str | None = None,
    ) -> PushReport:
        """Send rows to the views reading push source ``push_source_name``.

        ``df`` (pandas, pyarrow, or ``{column: [values]}``) uses the source's column names and
        carries its timestamp column, join keys and features. ``to`` is ``"online"`` (default,
        as in Feast), ``"offline"`` (appended to the store's data folder; the next historical
        retrieval sees it) or ``"online_and_offline"``. Rows are validated against the views'
        schema before anything is written; online, a row never replaces a newer one.
        """
        if self._pusher is None:
            self._pusher = Pusher(self.config, self.registry, self.online)
        return self._pusher.push(push_source_name, df, to)

    def consistency_check(
        self,
        feature_views: Sequence[str] | None = None,
        *,
        sample: int = 1000,
        as_of: datetime | None = None,
        seed: int | None = None,
    ) -> ConsistencyReport:
        """Compare online lookups with a historical retrieval at the same instant, per feature."""
        return check_consistency(
            self, feature_views=feature_views, sample=sample, as_of=as_of, seed=seed
        )

    def teardown(self) -> int:
        """Remove the project's online data and its watermarks (so the next incremental run
        fills the store again); returns how many keys were removed."""
        removed = self.online.delete_project(self.project)
        self.registry.delete_watermarks(self.project)
        return removed

    # -- lifecycle -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the running event loop's async connections, then :meth:`close`."""
        if self._online is not None:
            await self._online.aclose()
        self.close()

    def close(self) -> None:
        """Close the registry, the offline engine and the online store."""
        if self._online is not None:
            self._online.close()
            self._online = None
            self._lookup = None
            self._pusher = None
        if self._offline is not None:
            self._offline.close()
            self._offline = None
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
