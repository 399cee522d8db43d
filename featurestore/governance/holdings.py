"""What the store holds for one project: the places retention and erasure remove rows from.

* the online store: one namespace per stored version of every feature view, deleted views
  included (their rows stay online until something removes them), and of every write-time
  on-demand view (its computed values, keyed like its source views);
* pushed offline data: ``<data_path>/<project>/push/<source>/part-*.parquet``
  (:mod:`featurestore.offline.store_data`);
* saved datasets (:mod:`featurestore.governance.datasets`) whose file lies in the store's data
  folder (``<data_path>/<project>/datasets/<name>.parquet``).
* staged files that interrupted writes left under ``<data_path>/<project>/``
  (:mod:`featurestore.offline.store_data`); a stale one is removed whole (:func:`remove_stale`);
* for erasure, the quality history in the registry (:mod:`featurestore.governance.quality_scrub`)
  and the dead letters of stream sources (:mod:`featurestore.governance.dead_letters`).

Files the store does not own (the views' sources, a dataset saved outside the data folder) are
never rewritten. The audit log belongs to the store too, but it is append-only: nothing here
touches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from featurestore.config import RepoConfig
from featurestore.definitions.base import Definition
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView, WriteTimeStorage
from featurestore.definitions.sources import PushSource
from featurestore.errors import ObjectNotFoundError
from featurestore.governance.datasets import SavedDatasets
from featurestore.offline.entity_frame import DEFAULT_TIMESTAMP_COLUMN
from featurestore.offline.store_data import StoreData, is_stale
from featurestore.online.base import Namespace
from featurestore.registry.base import Registry
from featurestore.registry.schema import saved_datasets


@dataclass(frozen=True)
class StoredView:
    """One stored version of a view: its definition then (join keys, source) and the view's
    latest definition (current, or the last one of a deleted view), whose governance settings
    (retention) apply to every version."""

    namespace: Namespace
    latest: FeatureView

    @property
    def view(self) -> FeatureView:
        return self.namespace.view

    @property
    def version(self) -> int:
        return self.namespace.version

    @property
    def label(self) -> str:
        return f"{self.view.name} v{self.version}"


@dataclass(frozen=True)
class PushedData:
    """The files pushed to one push source, and every stored view version that reads it."""

    source: str
    files: tuple[Path, ...]
    readers: tuple[StoredView, ...]


@dataclass(frozen=True)
class DatasetFile:
    """A saved training set. ``owned``: its file lies in the store's data folder, so the store
    may rewrite it. ``timestamp_column`` is its entity timestamp column (None when it cannot be
    told); ``views`` the names of the views it was built from."""

    name: str
    path: Path
    owned: bool
    timestamp_column: str | None
    views: tuple[str, ...]


@dataclass(frozen=True)
class Removal:
    """Rows one run removed (on a dry run: would remove) in one place.

    ``place`` is ``online``, ``pushed``, ``dataset``, ``staged`` (a file an interrupted write
    left), ``dead_letters`` (a stream's kept bad messages) or ``quality`` (records of the
    quality history, counted instead of rows); ``name``
    says which namespace (``view vN``), file, dataset or records; ``owner`` is the view, push
    source or dataset the place belongs to, and ``path`` its file (None online and in the
    registry).
    """

    place: str
    name: str
    rows: int
    owner: str
    path: str | None = None

    def describe(self) -> str:
        unit = {"online": "key(s)", "quality": "record(s)"}.get(self.place, "row(s)")
        return f"{self.place} {self.name}: {self.rows} {unit}"


def totals(removed: Sequence[Removal]) -> dict[str, int]:
    """Rows, keys and records removed per kind of place (see :class:`Removal`)."""
    per_place: dict[str, int] = {}
    for removal in removed:
        per_place[removal.place] = per_place.get(removal.place, 0) + removal.rows
    return per_place


def remove_stale(path: Path, *, dry_run: bool) -> Removal | None:
    """Delete (``dry_run``: count) the staged file at ``path`` when it is stale: the write that
    staged it will never publish it. Its ``Removal`` counts every row in it (0 when it was cut
    short and cannot be read); None when the file is not stale."""
    if not is_stale(path):
        return None
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException):
        rows = 0  # cut short mid-write: unreadable, and removed all the same
    if not dry_run:
        path.unlink(missing_ok=True)
    return Removal("staged", str(path), rows, path.parent.name, str(path))


class Holdings:
    """The places one project's rows are kept in (read from the registry and the data folder)."""

    def __init__(self, config: RepoConfig, registry: Registry) -> None:
        self.config = config
        self.project = config.project
        self.registry = registry
        self.data = StoreData(config)
        self._views: list[StoredView] | None = None

    def views(self) -> list[StoredView]:
        """Every stored version of every feature view, by name then version, then every
        stored version of every write-time on-demand view."""
        if self._views is None:
            stored: list[StoredView] = []
            for name, versions in self.registry.versions(self.project, "feature_view").items():
                latest = self._latest(name)
                assert isinstance(latest, FeatureView)
                for version in versions:
                    view = self.registry.get(self.project, "feature_view", name, version)
                    assert isinstance(view, FeatureView)
                    stored.append(StoredView(Namespace(self.project, view, version), latest))
            stored += self._write_time_views()
            self._views = stored
        return self._views

    def _latest(self, name: str, kind: str = "feature_view") -> Definition:
        try:
            view = self.registry.get(self.project, kind, name)
        except ObjectNotFoundError:  # deleted: its last version carries its last settings
            last = self.registry.history(self.project, name, kind)[-1].version
            view = self.registry.get(self.project, kind, name, last)
        return view

    def _write_time_views(self) -> list[StoredView]:
        """The namespaces of write-time on-demand views (any version that was write-time),
        keyed like their source views now; one whose source views are all gone is passed
        over (nothing can tell its keys' types)."""
        kind = "on_demand_feature_view"
        stored: list[StoredView] = []
        for name, versions in self.registry.versions(self.project, kind).items():
            latest = self._storage(self._latest(name, kind))
            for version in versions:
                view = self.registry.get(self.project, kind, name, version)
                storage = self._storage(view)
                if storage is not None:
                    stored.append(
                        StoredView(Namespace(self.project, storage, version), latest or storage)
                    )
        return stored

    def _storage(self, view: Definition) -> WriteTimeStorage | None:
        assert isinstance(view, OnDemandFeatureView)
        if not view.write_to_online_store:
            return None
        sources = []
        for name in view.view_sources:
            source = self._latest(name)
            assert isinstance(source, FeatureView)
            sources.append(source)
        return WriteTimeStorage(view, sources)

    def pushed(self) -> list[PushedData]:
        """Every push source with a folder of pushed files, with the view versions reading it."""
        found = []
        for source in self.data.pushed_sources():
            readers = tuple(
                s
                for s in self.views()
                if isinstance(s.view.source, PushSource)
                and s.view.source.name == source
                and not isinstance(s.view, WriteTimeStorage)  # keyed like a reader, reads none
            )
            files = tuple(Path(f) for f in self.data.pushed_files(source))
            found.append(PushedData(source, files, readers))
        return found

    def datasets(self) -> list[DatasetFile]:
        """The project's saved datasets whose file exists."""
        root = self.config.data_dir.resolve()
        found = []
        for saved in SavedDatasets(self.registry, self.project, self.data).list():
            path = Path(saved.location)
            path = path if path.is_absolute() else self.config.repo_path / path
            if not path.is_file():
                continue
            found.append(
                DatasetFile(
                    name=saved.name,
                    path=path,
                    owned=path.resolve().is_relative_to(root),
                    timestamp_column=_timestamp_column(path, saved.entity_columns),
                    views=tuple(saved.views),
                )
            )
        return found

    def recount_dataset(self, dataset: DatasetFile) -> None:
        """Record a rewritten dataset's new row count in the registry."""
        rows = pq.ParquetFile(dataset.path).metadata.num_rows
        d = saved_datasets
        with self.registry.writing() as conn:
            conn.execute(
                update(d)
                .where(d.c.project == self.project, d.c.name == dataset.name)
                .values(rows=rows)
            )


def _timestamp_column(path: Path, entity_columns: Sequence[str]) -> str | None:
    """The dataset's entity timestamp column, by the entity frame's rule: ``event_timestamp``,
    else its only timestamp-typed entity column; None when that does not tell."""
    if DEFAULT_TIMESTAMP_COLUMN in entity_columns:
        return DEFAULT_TIMESTAMP_COLUMN
    schema: pa.Schema = pq.read_schema(path)
    stamps = [
        c
        for c in entity_columns
        if c in schema.names and pa.types.is_timestamp(schema.field(c).type)
    ]
    return stamps[0] if len(stamps) == 1 else None
