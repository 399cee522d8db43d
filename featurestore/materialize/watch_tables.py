"""Watching a table source (:class:`~featurestore.definitions.SparkSource`) for new versions.

A table has no files of its own in the view's definition: the offline engine tells where its
data lives (:class:`~featurestore.offline.base.SupportsSourceLocations`), and the watcher watches
those folders with the same inotify watcher as file sources. A new version of the table (an
INSERT, an overwrite, a MERGE) always writes files there; which of them make a new version
visible depends on the table's format:

- Delta (a ``_delta_log`` folder): a commit file ``_delta_log/<version>.json``; data files alone
  are not committed yet, so they trigger nothing.
- Iceberg (``metadata/*.metadata.json``): a new ``*.metadata.json``; data files likewise.
- Any other (Parquet, ORC... as Spark or Hive write them): a new data file, i.e. any file whose
  path below the location has no part starting with ``.`` or ``_``; Spark stages a write under
  ``_temporary``, ``.spark-staging-*`` or ``.hive-staging*`` and adds ``_SUCCESS`` and
  ``.crc`` files, none of which are data.

The watcher never imports the engine's library (e.g. pyspark): it only asks the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import SparkSource
from featurestore.errors import DefinitionError
from featurestore.offline.base import OfflineEngine, SupportsSourceLocations, missing_capability

_DELTA_COMMIT = re.compile(r"\d+\.json")
#: A URI's scheme (``s3://``, ``hdfs:``, ``viewfs:``...): not a folder inotify can watch.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def table_folders(view: FeatureView, engine: OfflineEngine) -> tuple[Path, ...]:
    """The local folders holding ``view``'s table, as ``engine`` reports them (created when
    missing, so a first write is seen); an error naming the view for an engine that cannot
    tell or a location that is not a local folder."""
    source = view.source
    assert isinstance(source, SparkSource)
    if not isinstance(engine, SupportsSourceLocations):
        raise missing_capability(
            engine, SupportsSourceLocations, f"tell where {view.label}'s table lives (--watch)"
        )
    folders = []
    for location in engine.source_locations(view):
        if _SCHEME.match(location) or not Path(location).is_absolute():
            raise DefinitionError(
                f"cannot watch {view.label}: its table {source.table!r} lives at {location}, "
                "which is not a local folder; --watch needs the table on a local or mounted "
                "file system (inotify), so run plain materialize-incremental on a schedule instead"
            )
        folder = Path(location)
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder.resolve())
    return tuple(folders)


def new_versions(paths: Iterable[Path], location: Path) -> list[Path]:
    """Those of the files added or changed at ``paths`` that make a new version of the table
    at ``location`` visible (see the module's docstring); the table's format is looked at once."""
    if (location / "_delta_log").is_dir():
        return [p for p in paths if _parts(p, location)[:1] == ("_delta_log",) and _delta(p)]
    if _is_iceberg(location):
        return [p for p in paths if _parts(p, location)[:1] == ("metadata",) and _iceberg(p)]
    return [p for p in paths if _is_data(_parts(p, location))]


def _parts(path: Path, location: Path) -> tuple[str, ...]:
    """``path``'s parts below ``location`` (none when it is not below it)."""
    return path.relative_to(location).parts if path.is_relative_to(location) else ()


def _delta(path: Path) -> bool:
    return path.parent.name == "_delta_log" and bool(_DELTA_COMMIT.fullmatch(path.name))


def _iceberg(path: Path) -> bool:
    return path.parent.name == "metadata" and path.name.endswith(".metadata.json")


def _is_data(parts: tuple[str, ...]) -> bool:
    return bool(parts) and not any(part.startswith((".", "_")) for part in parts)


def _is_iceberg(location: Path) -> bool:
    metadata = location / "metadata"
    return metadata.is_dir() and next(metadata.glob("*.metadata.json"), None) is not None
