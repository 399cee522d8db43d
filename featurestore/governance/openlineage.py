"""OpenLineage events for what the store does: one job per view, START then COMPLETE or FAIL.

    emitter = open_emitter(config)     # emits nothing without `lineage: {openlineage: ...}`
    with emitter.run("demo.materialize.driver_stats", inputs, outputs, job_type="MATERIALIZE"):
        ...                            # START was sent; COMPLETE follows, or FAIL on an error
    emitter.emit_run("demo.erase.driver", inputs, outputs, job_type="ERASE")   # after the fact

Datasets are described with :class:`DatasetRef`, free of the openlineage package (which is the
optional ``lineage`` extra, imported only when events are configured): a namespace and name, the
columns (schema facet), the definition version (dataset version facet), which input columns each
column comes from (column-lineage facet) and, for outputs, how many rows were written (output
statistics facet). Parquet files are named ``file`` + absolute path, as OpenLineage names local
files; the store's own datasets live in namespace ``featurestore://<project>`` as
``feature_view.<name>``, ``online_store.<view>``, ``push_source.<name>`` and so on.

Emitting never fails the operation it describes: a transport error (an HTTP server that is down)
is logged as a warning and kept in :attr:`LineageEmitter.failures`; after one, the emitter pauses
for ``PAUSE_SECONDS`` so a dead server does not slow every later operation down.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource
from featurestore.errors import ConfigError
from featurestore.offline.store_data import StoreData

log = logging.getLogger("featurestore.lineage")

#: The namespace OpenLineage gives local files.
FILE_NAMESPACE = "file"
#: How long emission pauses after a transport error.
PAUSE_SECONDS = 30.0


def store_namespace(project: str) -> str:
    """The namespace of a project's own datasets (views, the online store, push sources)."""
    return f"featurestore://{project}"


@dataclass(frozen=True)
class FieldRef:
    """One column of one dataset, as column lineage names its inputs."""

    namespace: str
    name: str
    field: str


@dataclass(frozen=True)
class QualityAssertion:
    """One data quality assertion checked on a dataset (``dataQualityAssertions`` facet)."""

    assertion: str
    success: bool
    column: str | None = None


@dataclass(frozen=True)
class ColumnMetrics:
    """Statistics of one column of an input dataset (``dataQualityMetrics`` facet)."""

    null_count: int | None = None
    distinct_count: int | None = None
    count: int | None = None
    min: float | None = None
    max: float | None = None
    quantiles: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset an OpenLineage job reads or writes, with what its facets say.

    ``fields`` are (column, type) pairs; ``version`` the definition version; ``column_lineage``
    maps an output column to the input columns it is computed from; ``rows`` is how many rows a
    run wrote (outputs only). The quality layer adds ``assertions`` (checked on the dataset) and,
    on inputs, ``metrics_rows`` and ``column_metrics`` (its statistics).
    """

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    version: str | None = None
    column_lineage: Mapping[str, tuple[FieldRef, ...]] = field(default_factory=dict)
    rows: int | None = None
    assertions: tuple[QualityAssertion, ...] = ()
    metrics_rows: int | None = None
    column_metrics: Mapping[str, ColumnMetrics] = field(default_factory=dict)

    def column(self, name: str) -> FieldRef:
        return FieldRef(self.namespace, self.name, name)


@dataclass
class LineageRun:
    """One run of one job; ``outputs`` may be replaced (e.g. with row counts) before it ends."""

    job: str
    run_id: str
    inputs: list[DatasetRef]
    outputs: list[DatasetRef]
    job_type: str = "JOB"
    nominal: tuple[datetime | None, datetime | None] | None = None


class LineageEmitter:
    """Sends OpenLineage run events; this base sends nothing (events are not configured)."""

    enabled = False

    def __init__(self) -> None:
        #: Messages of the emissions that failed, oldest first (reported, never raised).
        self.failures: list[str] = []
        self._paused_until = 0.0

    # -- runs ----------------------------------------------------------------------------------

    def start(
        self,
        job: str,
        inputs: Sequence[DatasetRef],
        outputs: Sequence[DatasetRef],
        *,
        job_type: str = "JOB",
        run_id: str | None = None,
        nominal: tuple[datetime | None, datetime | None] | None = None,
    ) -> LineageRun:
        """Emit START of a new run of ``job`` and return it (its ``run_id`` is a UUID)."""
        run = LineageRun(
            job=job,
            run_id=run_id or str(uuid.uuid4()),
            inputs=list(inputs),
            outputs=list(outputs),
            job_type=job_type,
            nominal=nominal,
        )
        self._send("START", run, None)
        return run

    def complete(self, run: LineageRun) -> None:
        """Emit COMPLETE of ``run`` (same run id as its START)."""
        self._send("COMPLETE", run, None)

    def fail(self, run: LineageRun, error: BaseException) -> None:
        """Emit FAIL of ``run`` with the error's message."""
        self._send("FAIL", run, error)

    @contextmanager
    def run(
        self,
        job: str,
        inputs: Sequence[DatasetRef],
        outputs: Sequence[DatasetRef],
        *,
        job_type: str = "JOB",
        run_id: str | None = None,
        nominal: tuple[datetime | None, datetime | None] | None = None,
    ) -> Iterator[LineageRun]:
        """START on entry; COMPLETE on a normal exit, FAIL (and the error re-raised) otherwise."""
        run = self.start(job, inputs, outputs, job_type=job_type, run_id=run_id, nominal=nominal)
        try:
            yield run
        except BaseException as exc:
            self.fail(run, exc)
            raise
        self.complete(run)

    def emit_run(
        self,
        job: str,
        inputs: Sequence[DatasetRef],
        outputs: Sequence[DatasetRef],
        *,
        job_type: str = "JOB",
        error: BaseException | None = None,
        nominal: tuple[datetime | None, datetime | None] | None = None,
    ) -> str:
        """Report a run that already happened (START, then COMPLETE or FAIL with ``error``);
        returns its run id. Retention and erasure report their runs with it."""
        run = self.start(job, inputs, outputs, job_type=job_type, nominal=nominal)
        if error is None:
            self.complete(run)
        else:
            self.fail(run, error)
        return run.run_id

    def close(self) -> None:
        """Flush and release the transport."""

    # -- transport -----------------------------------------------------------------------------

    def _send(self, event_type: str, run: LineageRun, error: BaseException | None) -> None:
        if not self.enabled:
            return
        if time.monotonic() < self._paused_until:
            return
        try:
            self._emit(event_type, run, error)
        except Exception as exc:  # any transport failure: the operation itself must go on
            message = f"OpenLineage {event_type} of {run.job} (run {run.run_id}) not sent: {exc}"
            log.warning("%s; pausing emission for %.0f s", message, PAUSE_SECONDS)
            self.failures.append(message)
            self._paused_until = time.monotonic() + PAUSE_SECONDS

    def _emit(self, event_type: str, run: LineageRun, error: BaseException | None) -> None:
        """Send one event (subclasses)."""


def open_emitter(config: RepoConfig) -> LineageEmitter:
    """The emitter ``featurestore.yaml`` asks for (the base, silent one without a section)."""
    settings = config.lineage.openlineage
    if settings is None:
        return LineageEmitter()
    # Imported here, not at the top: openlineage-python is the optional `lineage` extra.
    try:
        from featurestore.governance.openlineage_client import OpenLineageEmitter
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "openlineage":
            raise
        raise ConfigError(
            "lineage.openlineage is set in featurestore.yaml, but the openlineage-python package "
            "is not installed: pip install 'featurestore[lineage]'"
        ) from None
    return OpenLineageEmitter(settings, config.repo_path)


# -- datasets of the store's objects ------------------------------------------------------------


def file_dataset(path: str | Path, *, read_schema: bool = True) -> DatasetRef:
    """A Parquet file (or a folder or glob of them), with the columns of its first file."""
    name = str(path)
    fields: tuple[tuple[str, str], ...] = ()
    if read_schema:
        fields = _parquet_fields(name)
    return DatasetRef(namespace=FILE_NAMESPACE, name=name, fields=fields)


def source_datasets(view: FeatureView, data: StoreData) -> list[DatasetRef]:
    """What a view reads: its source's Parquet path (a file, or the glob a folder stands for),
    and for a push source the store's folder of pushed rows when there is one."""
    pattern = view.source.resolve(data.repo_path)
    files = view.source.files(data.repo_path)
    found = [DatasetRef(namespace=FILE_NAMESPACE, name=pattern, fields=_parquet_fields(files[0]))]
    if isinstance(view.source, PushSource):
        pushed = pushed_dataset(data.push_folder(view.source.name))
        if pushed is not None:
            found.append(pushed)
    return found


def pushed_dataset(folder: Path) -> DatasetRef | None:
    """The store's folder of pushed rows of one push source, if anything was pushed there."""
    try:  # every push asks: no sort of a folder that may hold thousands of pushes
        first = min(
            (n for n in os.listdir(folder) if n.startswith("part-") and n.endswith(".parquet")),
            default=None,
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    if first is None:
        return None
    return DatasetRef(
        namespace=FILE_NAMESPACE, name=str(folder), fields=_parquet_fields(str(folder / first))
    )


def view_dataset(
    project: str,
    view: FeatureView,
    version: int,
    inputs: Sequence[DatasetRef] = (),
    *,
    name: str | None = None,
    features: Sequence[str] | None = None,
    rows: int | None = None,
) -> DatasetRef:
    """A view at one version (``name`` defaults to ``feature_view.<view>``): its join keys and
    features with their declared types, each feature computed from its source column."""
    chosen = view.feature_names if features is None else list(features)
    fields = [
        (key, "unknown" if dtype is None else dtype.name)
        for key, dtype in view.join_key_types.items()
    ]
    fields += [(f, view.feature(f).dtype.name) for f in chosen]
    lineage = {
        column: tuple(i.column(view.source.source_column(column)) for i in inputs)
        for column, _ in fields
    }
    return DatasetRef(
        namespace=store_namespace(project),
        name=name or f"feature_view.{view.name}",
        fields=tuple(fields),
        version=str(version),
        column_lineage=lineage if inputs else {},
        rows=rows,
    )


def _parquet_fields(path: str) -> tuple[tuple[str, str], ...]:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid):
        return ()  # a glob or a file that went away: the dataset is still named
    return tuple((f.name, str(f.type)) for f in schema)


__all__ = [
    "FILE_NAMESPACE",
    "ColumnMetrics",
    "DatasetRef",
    "FieldRef",
    "LineageEmitter",
    "LineageRun",
    "QualityAssertion",
    "file_dataset",
    "open_emitter",
    "pushed_dataset",
    "source_datasets",
    "store_namespace",
    "view_dataset",
]
