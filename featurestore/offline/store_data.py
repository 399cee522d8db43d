"""The data the store owns: rows pushed to the offline store, as Parquet under ``data_path``.

Layout (``offline_store.data_path`` in ``featurestore.yaml``, default ``data/store``)::

    <data_path>/<project>/push/<push source>/part-<epoch µs>-<random>.parquet

A push writes one file. It is first written under a dot-name (``.part-....parquet.tmp``), which
no reader lists, and renamed into place once the whole push succeeded: a reader sees all of a
push or none of it, and a failed push leaves nothing behind. The offline engine reads a push
source's view from its batch files plus these files.

A process killed between staging and publishing does leave its staged file behind (so do a
dataset save and a row-removing rewrite, which stage the same way). Every dot-name ending in
``.tmp`` under ``<data_path>/<project>/`` is such a *staged file* (:meth:`StoreData.staged_files`);
one untouched for :data:`STALE_STAGED_SECONDS` belongs to a write that will never finish. The
next push to the same source deletes its folder's stale ones, and an erasure deletes every stale
one and removes the entity's rows from the others.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.config import RepoConfig
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource, SparkSource
from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import DefinitionError
from featurestore.offline.compaction import live_files
from featurestore.offline.file_positions import positions_in_files

#: Seconds after which a staged file counts as left behind by an interrupted write (no push or
#: save stays between staging and publishing that long).
STALE_STAGED_SECONDS = 3600.0


class StoreData:
    """Paths of the store-owned data of one project."""

    def __init__(self, config: RepoConfig) -> None:
        self.root = config.data_dir
        self.project = config.project
        self.repo_path = config.repo_path

    def push_folder(self, source_name: str) -> Path:
        return self.root / self.project / "push" / source_name

    def pushed_files(self, source_name: str) -> list[str]:
        """Every committed file of a push source, oldest first: the files compaction covered
        (until they are deleted) included, as erasure and retention must rewrite them too."""
        folder = self.push_folder(source_name)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        # os.listdir, not Path.glob: a folder of 10,000 pushes is listed on every retrieval.
        prefix = f"{folder}{os.sep}"
        return sorted(
            prefix + name
            for name in names
            if name.startswith("part-") and name.endswith(".parquet")
        )

    def readable_pushed_files(self, source_name: str) -> list[str]:
        """The files a reader reads for a push source: without those a compacted file covers
        (:mod:`featurestore.offline.compaction`)."""
        return live_files(self.pushed_files(source_name))

    @contextmanager
    def push_lock(self, source_name: str) -> Iterator[list[Path]]:
        """Hold the push folder's lock while rewriting its files (compaction, erasure,
        retention rewrite them one writer at a time); yields its files as listed under the lock.

        Pushes take no lock: they only add files, which compaction leaves alone until they are
        published and older than every push still being staged.
        """
        folder = self.push_folder(source_name)
        if not folder.is_dir():
            yield []
            return
        with open(folder / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield [Path(p) for p in self.pushed_files(source_name)]
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def pushed_sources(self) -> list[str]:
        """Names of the push sources that have a folder of pushed files, sorted."""
        folder = self.root / self.project / "push"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def staged_files(self, folder: Path | None = None) -> list[Path]:
        """The staged (unpublished) files under ``folder`` (default: the project's whole data
        folder), sorted."""
        folder = self.root / self.project if folder is None else folder
        found: list[Path] = []
        # os.walk, not rglob: a push stages into a folder that may hold thousands of files.
        for parent, _, names in os.walk(folder):
            found.extend(Path(parent, n) for n in names if n.startswith(".") and n.endswith(".tmp"))
        return sorted(found)

    def discard_stale(self, folder: Path | None = None) -> list[Path]:
        """Delete the stale staged files under ``folder`` (default: the project's data
        folder); returns them."""
        return [path for path in self.staged_files(folder) if discard_if_stale(path)]

    def view_files(self, view: FeatureView) -> list[str]:
        """Every Parquet file holding the view's offline rows: its source's files, then (for a
        push source) what was pushed to the offline store."""
        files = view.source.files(self.repo_path)
        if isinstance(view.source, PushSource):
            files = files + self.readable_pushed_files(view.source.name)
        return files

    def durable_positions(self, view: FeatureView, files: Sequence[str]) -> dict[str, str]:
        """The stream positions (consumer -> largest position) that ``files`` hold: pass the
        very listing of :meth:`view_files` the engine reads, not a new one, or a file published
        in between would be counted as read (its events dropped online) or read but not
        counted (kept twice). Only a stream consumer writes positions, into the store's own
        push folder, so only a stream source's pushed files are opened (their footers)."""
        if not isinstance(view.source, StreamSource):
            return {}
        prefix = f"{self.push_folder(view.source.name)}{os.sep}"
        return positions_in_files([f for f in files if f.startswith(prefix)])

    def check_not_owned(self, view: FeatureView) -> None:
        """Refuse a source whose path reaches into the store's own folder: the store may rewrite
        or delete what is there, and pushed rows would be read twice. A table
        (:class:`SparkSource`) is the catalog's, not a path of the view: nothing to check."""
        if isinstance(view.source, SparkSource):
            return
        root = self.root.resolve()
        pattern = view.source.resolve(self.repo_path)
        # Everything under the pattern's fixed prefix may match when the pattern recurses (a
        # folder source, or a ``**`` glob); otherwise the files it matches today tell.
        prefix = Path(pattern.split("*")[0].split("?")[0].split("[")[0])
        recursive = "**" in pattern
        reached = [str(root)] if recursive and root.is_relative_to(prefix.resolve()) else []
        reached += [p for p in view.source.files(self.repo_path) if _under(p, root)]
        if reached:
            raise DefinitionError(
                f"{view.label}: its source {view.source.path!r} reaches into the store's own data "
                f"folder {root} (offline_store.data_path), e.g. {reached[0]}; point the source "
                "at your own files, or move data_path out of its way"
            )

    def stage(
        self, source_name: str, table: pa.Table, metadata: dict[bytes, bytes] | None = None
    ) -> StagedFile:
        """Write ``table`` under a name no reader lists; :meth:`StagedFile.commit` publishes it.

        ``metadata`` goes into the file's schema metadata (a stream consumer's positions, see
        :mod:`featurestore.offline.file_positions`)."""
        if metadata:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        folder = self.push_folder(source_name)
        folder.mkdir(parents=True, exist_ok=True)
        self.discard_stale(folder)  # what interrupted pushes to this source left
        name = f"part-{time.time_ns() // 1000:017d}-{secrets.token_hex(4)}.parquet"
        staged = folder / f".{name}.tmp"
        try:
            pq.write_table(table, staged)
            with open(staged, "rb") as handle:
                os.fsync(handle.fileno())
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return StagedFile(staged, folder / name)


class StagedFile:
    """A written file waiting to be published (:meth:`commit`) or dropped (:meth:`discard`)."""

    def __init__(self, staged: Path, final: Path) -> None:
        self.staged = staged
        self.final = final

    def commit(self) -> Path:
        os.replace(self.staged, self.final)
        return self.final

    def discard(self) -> None:
        self.staged.unlink(missing_ok=True)


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether the staged file at ``path`` was last written :data:`STALE_STAGED_SECONDS` ago
    or more (False when it is gone)."""
    try:
        written = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - written >= STALE_STAGED_SECONDS


def discard_if_stale(path: Path) -> bool:
    """Delete the staged file at ``path`` when it is stale; returns whether it did."""
    if not is_stale(path):
        return False
    path.unlink(missing_ok=True)
    return True


def _under(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root)
