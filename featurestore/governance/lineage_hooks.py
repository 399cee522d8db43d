"""Lineage around the facade's operations: the registry graph and the OpenLineage events.

The :class:`~featurestore.store.FeatureStore` facade calls these hooks; each operation records
its edges in the graph (:mod:`featurestore.governance.lineage`) and, when configured, reports
itself as OpenLineage runs (:mod:`featurestore.governance.openlineage`), one job per view:

==============================  ===================================  ==========================
operation                       graph edges                          OpenLineage job
==============================  ===================================  ==========================
apply                           source -> view vN, entity -> view,   ``<project>.apply.<view>``
                                view vN -> service vM                per new view version
materialize (per view)          view vN -> run -> online store       ``<project>.materialize.<view>``
push to the offline store       push source -> store data -> views   ``<project>.push.<source>``
``job.save_dataset(name)``      views vN (and service) -> dataset    ``<project>.save_dataset.<name>``
==============================  ===================================  ==========================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from featurestore.config import RepoConfig
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource
from featurestore.errors import FeatureStoreError, ObjectNotFoundError
from featurestore.governance.audit import AuditLog
from featurestore.governance.datasets import SavedDatasets
from featurestore.governance.lineage import ONLINE_STORE, LineageEdge, LineageGraph, LineageNode
from featurestore.governance.on_demand_lineage import on_demand_edges
from featurestore.governance.openlineage import (
    FILE_NAMESPACE,
    DatasetRef,
    LineageEmitter,
    LineageRun,
    file_dataset,
    open_emitter,
    pushed_dataset,
    source_datasets,
    store_namespace,
    view_dataset,
)
from featurestore.materialize.materializer import from_epoch_us
from featurestore.materialize.progress import ViewReport
from featurestore.offline.base import FeatureRequest, LatestWindow, RetrievalJob, SavedDataset
from featurestore.offline.store_data import StoreData
from featurestore.push import PushMode, PushReport
from featurestore.registry.base import Registry
from featurestore.registry.plan import Plan

_NEW_VERSION = ("added", "changed")


#: Given the report of the push a :meth:`LineageHooks.pushing` block made.
PushObserver = Callable[[PushReport], None]


class LineageHooks:
    """Lineage of one project's operations; the facade holds one."""

    def __init__(self, config: RepoConfig, registry: Registry) -> None:
        self.config = config
        self.project = config.project
        self.registry = registry
        self.data = StoreData(config)
        self.graph = LineageGraph(registry, self.project)
        self.datasets = SavedDatasets(registry, self.project, self.data)
        #: The OpenLineage emitter (silent without ``lineage.openlineage``); retention and
        #: erasure report their runs with ``emitter.emit_run(...)``.
        self.emitter: LineageEmitter = open_emitter(config)

    def close(self) -> None:
        self.emitter.close()

    # -- apply ---------------------------------------------------------------------------------

    def after_apply(self, plan: Plan) -> None:
        """Record the edges the current definitions imply (each once), and report every new
        view version as an apply run."""
        views = self._current("feature_view")
        services = self._current("feature_service")
        versions = {view.name: version for view, version in views}
        edges = [e for view, version in views for e in _view_edges(view, version)]
        on_demand = self._current("on_demand_feature_view")
        for view, version in on_demand:
            edges += on_demand_edges(view, version, versions)
        # A service's on-demand views are part of it as its feature views are.
        versions |= {view.name: version for view, version in on_demand}
        for service, version in services:
            assert isinstance(service, FeatureService)
            edges += _service_edges(service, version, versions)
        self.graph.ensure(edges)
        if not self.emitter.enabled:
            return
        changed = {
            c.name for c in plan.changes if c.kind == "feature_view" and c.change in _NEW_VERSION
        }
        for view, version in views:
            if view.name in changed:
                assert isinstance(view, FeatureView)
                inputs = self._inputs(view)
                self.emitter.emit_run(
                    f"{self.project}.apply.{view.name}",
                    inputs,
                    [view_dataset(self.project, view, version, inputs)],
                    job_type="APPLY",
                )

    def _current(self, kind: str) -> list[tuple[Any, int]]:
        found = []
        for obj in self.registry.list(self.project, kind):
            try:
                found.append((obj, self.registry.current_version(self.project, kind, obj.name)))
            except ObjectNotFoundError:
                continue  # deleted since it was listed
        return found

    def _inputs(self, view: FeatureView) -> list[DatasetRef]:
        try:
            return source_datasets(view, self.data)
        except FeatureStoreError:
            # The source matches no file now: the run that needs it reports that, not lineage.
            return [file_dataset(view.source.resolve(self.config.repo_path), read_schema=False)]

    # -- materialization -----------------------------------------------------------------------

    def materialization_listener(self) -> MaterializationLineage:
        """What the materializer tells about each view's run."""
        return MaterializationLineage(self)

    # -- push ----------------------------------------------------------------------------------

    @contextmanager
    def pushing(
        self, source: str, mode: PushMode, views: Sequence[tuple[FeatureView, int]]
    ) -> Iterator[PushObserver]:
        """Around a push of ``source`` read by ``views``: a push to the offline store is
        recorded (push source -> store data -> views) and reported as a run; an online-only
        push is not (it is the hot path, and writes nothing the offline store keeps)."""
        if not mode.offline:
            yield _ignore
            return
        folder = self.data.push_folder(source)
        name = os.path.relpath(folder, self.data.root / self.project)
        pushed = LineageNode("store_data", name)
        origin = LineageNode("push_source", source)
        inputs = [DatasetRef(namespace=store_namespace(self.project), name=f"push_source.{source}")]
        outputs = [DatasetRef(namespace=FILE_NAMESPACE, name=str(folder))]
        reports: list[PushReport] = []
        with self.emitter.run(
            f"{self.project}.push.{source}", inputs, outputs, job_type="PUSH"
        ) as run:
            yield reports.append
            report = reports[-1] if reports else None
            if report is not None and report.offline_file is not None:
                self.graph.ensure(
                    [LineageEdge(pushed, _view_node(v, n), "feeds") for v, n in views]
                )
                self.graph.record(
                    [
                        LineageEdge(
                            origin,
                            pushed,
                            "pushed",
                            run_id=run.run_id,
                            detail={"rows": report.rows, "file": report.offline_file},
                        )
                    ]
                )
                written = pushed_dataset(folder) or outputs[0]
                run.outputs = [replace(written, rows=report.rows)]
                run.inputs = [replace(inputs[0], fields=written.fields)]

    # -- saved datasets ------------------------------------------------------------------------

    def dataset_saver(
        self,
        requests: Sequence[FeatureRequest],
        *,
        service: FeatureService | str | None,
        principal: str | None,
    ) -> DatasetSaver:
        """The saver the facade gives a retrieval job (see :meth:`RetrievalJob.save_dataset`)."""
        return DatasetSaver(self, list(requests), service, principal)


class MaterializationLineage:
    """Per view run: START when it begins; COMPLETE and the graph edges (view vN -> run ->
    online store, with the window and the rows) when it ends, or FAIL."""

    def __init__(self, hooks: LineageHooks) -> None:
        self.hooks = hooks
        self._runs: dict[tuple[str, int], tuple[LineageRun, LatestWindow]] = {}

    def view_started(self, view: FeatureView, version: int, window: LatestWindow) -> None:
        hooks = self.hooks
        emitting = hooks.emitter.enabled
        inputs = hooks._inputs(view) if emitting else []
        outputs = (
            [view_dataset(hooks.project, view, version, inputs, name=f"online_store.{view.name}")]
            if emitting
            else []
        )
        run = hooks.emitter.start(
            f"{hooks.project}.materialize.{view.name}",
            inputs,
            outputs,
            job_type="MATERIALIZE",
            nominal=(_from_us(window.start_us), _from_us(window.end_us)),
        )
        self._runs[(view.name, version)] = (run, window)

    def view_finished(self, report: ViewReport) -> None:
        run, window = self._runs.pop((report.view, report.version))
        node = LineageNode("materialization", run.run_id)
        detail = {
            "view": report.view,
            "version": report.version,
            "window_start": _iso(window.start_us),
            "window_end": _iso(window.end_us),
            "keys": report.keys,
            "written": report.written,
            "rows_read": report.rows_read,
        }
        self.hooks.graph.record(
            [
                LineageEdge(
                    LineageNode("feature_view", report.view, report.version),
                    node,
                    "materialized_by",
                    run_id=run.run_id,
                    detail=detail,
                ),
                LineageEdge(
                    node,
                    LineageNode("online_store", ONLINE_STORE),
                    "writes",
                    run_id=run.run_id,
                    detail={**detail, "online_store": self.hooks.config.online_store.type},
                ),
            ]
        )
        run.outputs = [replace(o, rows=report.written) for o in run.outputs]
        self.hooks.emitter.complete(run)

    def view_failed(self, view: FeatureView, version: int, error: BaseException) -> None:
        entry = self._runs.pop((view.name, version), None)
        if entry is not None:
            self.hooks.emitter.fail(entry[0], error)


class DatasetSaver:
    """Saves one retrieval job's frame: file, registry record, lineage, audit, events."""

    def __init__(
        self,
        hooks: LineageHooks,
        requests: list[FeatureRequest],
        service: FeatureService | str | None,
        principal: str | None,
    ) -> None:
        self.hooks = hooks
        self.requests = requests
        self.service = service
        self.principal = principal

    def __call__(self, job: RetrievalJob, name: str, *, overwrite: bool) -> SavedDataset:
        hooks = self.hooks
        views = {r.view.name: self._version(r.view) for r in self.requests}
        service = self._service()
        outputs = [o for r in self.requests for o in r.output_names]
        inputs = [
            view_dataset(hooks.project, r.view, views[r.view.name], features=r.features)
            for r in self.requests
        ]
        failures_before = len(hooks.emitter.failures)
        planned = [file_dataset(hooks.datasets.path(name), read_schema=False)]
        with hooks.emitter.run(
            f"{hooks.project}.save_dataset.{name}", inputs, planned, job_type="SAVE_DATASET"
        ) as run:

            def record(conn: Connection, saved: SavedDataset) -> None:
                hooks.graph.record(self._edges(saved, service, run.run_id), conn)

            saved = hooks.datasets.save(
                job,
                name,
                overwrite=overwrite,
                views=views,
                feature_columns=outputs,
                principal=self.principal,
                service=None if service is None else service[0],
                on_record=record,
            )
            run.outputs = [self._output(saved, inputs)]
        AuditLog(hooks.registry, hooks.project).record(
            self.principal,
            "save_dataset",
            f"saved_dataset:{name}",
            "ok",
            {
                "location": saved.location,
                "rows": saved.rows,
                "views": saved.views,
                "fingerprint": saved.fingerprint,
                "overwrite": overwrite,
                "lineage_failures": hooks.emitter.failures[failures_before:],
            },
        )
        return saved

    def _version(self, view: FeatureView) -> int:
        """The registry version whose definition is exactly the one joined (the latest one,
        should the same definition have been applied twice)."""
        entries = self.hooks.registry.history(self.hooks.project, view.name, "feature_view")
        matching = [e.version for e in entries if e.content_hash == view.content_hash]
        if not matching:
            raise ObjectNotFoundError(
                f"{view.label} as joined is not a registered version in project "
                f"{self.hooks.project!r}; apply it before saving a dataset built from it"
            )
        return max(matching)

    def _service(self) -> tuple[str, int | None] | None:
        """The service asked through, with its registered version (None: not registered)."""
        if self.service is None:
            return None
        name = self.service if isinstance(self.service, str) else self.service.name
        try:
            version = self.hooks.registry.current_version(
                self.hooks.project, "feature_service", name
            )
        except ObjectNotFoundError:
            return (name, None)
        if isinstance(self.service, FeatureService):
            stored = self.hooks.registry.get(self.hooks.project, "feature_service", name)
            if stored.content_hash != self.service.content_hash:
                return (name, None)  # an ad-hoc service that only shares the name
        return (name, version)

    def _edges(
        self, saved: SavedDataset, service: tuple[str, int | None] | None, run_id: str
    ) -> list[LineageEdge]:
        target = LineageNode("saved_dataset", saved.name)
        edges = [
            LineageEdge(
                LineageNode("feature_view", r.view.name, saved.views[r.view.name]),
                target,
                "used_by",
                run_id=run_id,
                detail={"features": list(r.features), "columns": list(r.output_names)},
            )
            for r in self.requests
        ]
        if service is not None and service[1] is not None:
            edges.append(
                LineageEdge(
                    LineageNode("feature_service", service[0], service[1]),
                    target,
                    "used_by",
                    run_id=run_id,
                    detail={"views": saved.views},
                )
            )
        return edges

    def _output(self, saved: SavedDataset, inputs: Sequence[DatasetRef]) -> DatasetRef:
        written = file_dataset(saved.location)
        sources = {}
        for request, dataset in zip(self.requests, inputs, strict=True):
            for feature, column in zip(request.features, request.output_names, strict=True):
                sources[column] = (dataset.column(feature),)
        return replace(
            written, version=saved.fingerprint[:16], column_lineage=sources, rows=saved.rows
        )


def _view_node(view: FeatureView, version: int) -> LineageNode:
    return LineageNode("feature_view", view.name, version)


def _source_node(path: str) -> LineageNode:
    return LineageNode("source", path if os.path.isabs(path) else os.path.normpath(path))


def _view_edges(view: FeatureView, version: int) -> list[LineageEdge]:
    """The edges a view version's definition implies: its source and its entities."""
    node = _view_node(view, version)
    source = view.source
    edges = []
    if isinstance(source, PushSource):
        push = LineageNode("push_source", source.name)
        edges.append(LineageEdge(_source_node(source.batch_source.path), push, "feeds"))
        edges.append(LineageEdge(push, node, "feeds"))
    else:
        mapping = dict(source.field_mapping)
        edges.append(
            LineageEdge(_source_node(source.path), node, "feeds", detail={"field_mapping": mapping})
        )
    edges += [LineageEdge(LineageNode("entity", e.name), node, "keys") for e in view.entities]
    return edges


def _service_edges(
    service: FeatureService, version: int, view_versions: dict[str, int]
) -> list[LineageEdge]:
    """view vN -> service vM for the current version of each view the service uses."""
    node = LineageNode("feature_service", service.name, version)
    return [
        LineageEdge(
            LineageNode(p.view.kind, p.view.name, view_versions[p.view.name]),
            node,
            "part_of",
            detail={"features": p.feature_names},
        )
        for p in service.projections
        if p.view.name in view_versions
    ]


def _ignore(report: PushReport) -> None:
    """An online-only push leaves no lineage."""


def _from_us(value: int | None) -> datetime | None:
    return None if value is None else from_epoch_us(value)


def _iso(value: int | None) -> str | None:
    moment = _from_us(value)
    return None if moment is None else moment.isoformat()


__all__ = ["DatasetSaver", "LineageHooks", "MaterializationLineage", "PushObserver"]
