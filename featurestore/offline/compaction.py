"""Merging a push source's small files into larger ones, with no reader ever seeing a row twice
or missing one.

Every push (and every streamed batch) writes one Parquet file under the source's push folder
(:mod:`featurestore.offline.store_data`); after thousands of pushes, every retrieval opens
thousands of files. Compaction rewrites a run of small files as one file:

    part-00001733000000000001-1a2b3c4d.parquet     ┐
    part-00001733000000000002-5e6f7a8b.parquet     ├─ covered: skipped by readers, deleted later
    part-00001733000000000003-9c0d1e2f.parquet     ┘
    part-00001733000000000003-9c0d1e2f~c0001.parquet   the compacted file, naming what it covers

How it stays correct:

* **Atomic switch.** The compacted file names the files it *covers* in its own Parquet metadata,
  and is published by one rename. A reader lists the folder, then drops every file a listed
  compacted file covers (:func:`live_files`): before the rename it reads the small files, after it
  the compacted one, never both.
* **Nothing missing.** Covered files are deleted only :data:`COVERED_GRACE_SECONDS` after the
  compacted file was published, so a reader that listed the folder before the switch still finds
  them.
* **The same answer.** The point-in-time join breaks full ties by file order (a pushed file's
  place in the folder's listing, sorted by name, then row position). A compacted file holds its run's rows in that order and is named after the run's last
  file (``~`` sorts after ``.``), so it sits exactly where the run was. Only contiguous runs of
  small files are merged, and only files older than every push still being staged (whose
  file name is fixed when it is staged, and may be older than files already published).
* **One writer.** Compaction, erasure and retention rewrite a folder's files under its lock
  (:meth:`StoreData.push_lock`), so no erased row is copied into a compacted file behind their
  back.

Memory is bounded: files are read one at a time and written in row groups of
:data:`ROW_GROUP_ROWS` rows.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError
from featurestore.offline.file_positions import positions_in_files, positions_metadata

#: The Parquet metadata key listing the file names a compacted file covers (a JSON list).
COVERS_KEY = b"featurestore.covers"

#: Seconds a covered file is kept after its compacted file was published (for readers that
#: listed the folder before): a retrieval running longer than this may find it gone.
COVERED_GRACE_SECONDS = 3600.0

#: A file with fewer rows is small: a candidate for compaction.
SMALL_FILE_ROWS = 250_000

#: A compacted file is closed once it holds this many rows (at a file boundary).
TARGET_FILE_ROWS = 2_000_000

#: Rows buffered before a row group is written.
ROW_GROUP_ROWS = 128_000

_COMPACTED = re.compile(r"^(?P<base>part-[^~]+)~c(?P<generation>\d+)\.parquet$")


class CompactionError(FeatureStoreError):
    """A push folder could not be compacted (its files' schemas cannot be merged, a file is
    unreadable); nothing was published."""


@dataclass
class FolderCompaction:
    """What compacting one push folder did."""

    source: str
    files_before: int = 0
    files_after: int = 0
    merged: int = 0
    written: list[str] = field(default_factory=list)
    rows: int = 0
    deleted: int = 0
    seconds: float = 0.0


def covers(path: str | Path) -> list[str]:
    """The file names the compacted file at ``path`` covers (empty for a pushed file)."""
    if not _COMPACTED.match(os.path.basename(path)):
        return []
    stat = os.stat(path)
    return list(_covers_of(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=1024)
def _covers_of(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """A compacted file's covered names, read once per version of the file (every retrieval
    lists them; a compacted file of 10,000 pushes holds a few hundred KB of names)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(COVERS_KEY)
    return () if raw is None else tuple(str(name) for name in json.loads(raw))


def live_files(files: Sequence[str]) -> list[str]:
    """``files`` (one push folder's, sorted) without those a listed compacted file covers."""
    covered: set[str] = set()
    for path in files:
        if "~c" in path:  # cheap pre-filter: a folder of 10,000 pushes is read on every retrieval
            covered.update(covers(path))
    if not covered:
        return list(files)
    basename = os.path.basename
    return [path for path in files if basename(path) not in covered]


def compact_folder(
    folder: Path,
    files: Sequence[str],
    *,
    in_flight: Iterable[Path] = (),
    small_rows: int = SMALL_FILE_ROWS,
    target_rows: int = TARGET_FILE_ROWS,
    grace_seconds: float = COVERED_GRACE_SECONDS,
    now: float | None = None,
) -> FolderCompaction:
    """Compact the push folder ``folder`` whose committed files are ``files`` (sorted, listed
    under the folder's lock), with ``in_flight`` the staged files of pushes not yet published.

    Runs of two or more small live files older than every in-flight push become compacted files;
    covered files published more than ``grace_seconds`` ago are deleted.
    """
    started = time.perf_counter()
    report = FolderCompaction(source=folder.name, files_before=len(files))
    live = live_files(files)
    oldest_in_flight = min((_staged_name(p) for p in in_flight), default=None)
    eligible = [p for p in live if oldest_in_flight is None or Path(p).name < oldest_in_flight]
    rows = {path: pq.read_metadata(path).num_rows for path in eligible}
    for run in _runs(live, eligible, rows, small_rows, target_rows):
        written = _write_compacted(folder, run, files)
        report.written.append(written.name)
        report.merged += len(run)
        report.rows += sum(rows[p] for p in run)
    report.deleted = _delete_covered(folder, grace_seconds, time.time() if now is None else now)
    report.files_after = len(live_files(sorted(str(p) for p in folder.glob("part-*.parquet"))))
    report.seconds = time.perf_counter() - started
    return report


def _staged_name(path: Path) -> str:
    """The name a staged file (``.part-....parquet.tmp``) will be published under."""
    return path.name.removeprefix(".").removesuffix(".tmp")


def _runs(
    live: Sequence[str],
    eligible: Sequence[str],
    rows: dict[str, int],
    small_rows: int,
    target_rows: int,
) -> list[list[str]]:
    """Contiguous runs (in live order) of small eligible files, cut at ``target_rows``; only
    runs of two or more files are worth rewriting."""
    runs: list[list[str]] = []
    current: list[str] = []
    total = 0
    eligible_set = set(eligible)
    for path in live:
        if path not in eligible_set or rows[path] >= small_rows:
            runs.append(current)
            current, total = [], 0
            if path not in eligible_set:
                break  # every later file is newer than an in-flight push
            continue
        current.append(path)
        total += rows[path]
        if total >= target_rows:
            runs.append(current)
            current, total = [], 0
    runs.append(current)
    return [run for run in runs if len(run) >= 2]


def _write_compacted(folder: Path, run: Sequence[str], listed: Sequence[str]) -> Path:
    """Write ``run``'s rows, in order, as one file named after its last file; publish it."""
    schema = _merged_schema(run)
    covered = {Path(p).name for p in run}
    for path in run:  # what the run's compacted files covered, while those files remain
        covered.update(covers(path))
    listed_names = {Path(p).name for p in listed}
    covered &= listed_names
    # A stream consumer's positions survive the merge (the largest per consumer).
    positions = positions_in_files(run)
    schema = schema.with_metadata(
        {
            **(schema.metadata or {}),
            **positions_metadata(positions),
            COVERS_KEY: json.dumps(sorted(covered)).encode(),
        }
    )
    final = folder / _compacted_name(Path(run[-1]).name)
    staged = folder / f".{final.name}.tmp"
    try:
        with pq.ParquetWriter(staged, schema) as writer:
            buffered: list[pa.Table] = []
            count = 0
            for path in run:
                table = _conform(pq.read_table(path), schema, path)
                buffered.append(table)
                count += table.num_rows
                if count >= ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(buffered), row_group_size=count)
                    buffered, count = [], 0
            if buffered:
                writer.write_table(pa.concat_tables(buffered), row_group_size=max(count, 1))
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staged, final)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return final


def _compacted_name(last: str) -> str:
    """``part-T-R.parquet`` -> ``part-T-R~c0001.parquet``; a compacted file's next generation."""
    matched = _COMPACTED.match(last)
    if matched:
        return f"{matched['base']}~c{int(matched['generation']) + 1:04d}.parquet"
    return f"{last.removesuffix('.parquet')}~c0001.parquet"


def _merged_schema(run: Sequence[str]) -> pa.Schema:
    """One schema for the run's files (columns by name, types widened as a reader unifying them
    by name would), without the files' own metadata."""
    schemas = [pq.read_schema(path).remove_metadata() for path in run]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CompactionError(
            f"push folder {run[0].rsplit(os.sep, 2)[-2]!r}: the schemas of its files cannot be "
            f"merged ({exc}); nothing was compacted"
        ) from exc


def _conform(table: pa.Table, schema: pa.Schema, path: str) -> pa.Table:
    """``table`` with ``schema``'s columns in its order (missing ones null) and types."""
    columns = []
    for wanted in schema:
        if wanted.name in table.column_names:
            column = table.column(wanted.name)
            columns.append(column if column.type == wanted.type else column.cast(wanted.type))
        else:
            columns.append(pa.nulls(table.num_rows, wanted.type))
    try:
        return pa.Table.from_arrays(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # pragma: no cover - unify guards this
        raise CompactionError(f"{path}: cannot be merged: {exc}") from exc


def _delete_covered(folder: Path, grace_seconds: float, now: float) -> int:
    """Delete the files covered by a compacted file published ``grace_seconds`` ago or more."""
    deleted = 0
    for compacted in sorted(folder.glob("part-*~c*.parquet")):
        try:
            published = compacted.stat().st_mtime
            names = covers(compacted)
        except FileNotFoundError:
            continue
        if now - published < grace_seconds:
            continue
        for name in names:
            covered = folder / name
            if covered.exists():
                covered.unlink(missing_ok=True)
                deleted += 1
    return deleted
