"""Erasure (the right to be forgotten): remove one entity from everything the store owns, check
that nothing is left, and list the user-owned files that still hold it.

    request = ErasureRequest(holdings, {"driver_id": 1001})
    report = erase(request, online, offline, dry_run=False)
    report.verified      # True: no row of the entity is left anywhere the store owns

The request names *every* join key of one entity (``{"city": "Paris", "trip_no": 3}`` for a
two-key entity). Values are typed per the key's declared type; text is parsed the way the CLI
passes it (``"1001"`` for an Int64 key). The entity's rows are removed from (see
:mod:`featurestore.governance.holdings`):

* the online store: every stored version of every view keyed by the entity. When the view's
  key is exactly the entity's, the row is removed by key; when the view is keyed by more
  entities (driver and customer), its keys are scanned and every key holding the entity's
  values is removed;
* the Parquet files pushed to the push sources of those views, rewritten without its rows;
* saved datasets in the store's folder that have the entity's key columns, rewritten likewise;
* staged files (:mod:`featurestore.offline.store_data`): a push, dataset save or rewrite that
  was interrupted between staging and publishing leaves one behind. A stale one (untouched for
  ``STALE_STAGED_SECONDS``) is deleted whole; a younger one, maybe a write still under way, is
  rewritten without the entity's rows (and kept, so that write can still publish it);
* the quality history in the registry (validation samples, statistics, drift reports): the
  values of every feature of the views keyed by the entity are redacted, since an aggregate
  cannot be recomputed without one entity's rows (:mod:`featurestore.governance.quality_scrub`).

Then every place is searched again (online keys re-read, files and staged files re-scanned,
quality records re-read): what is found is the report's ``residue``, and the erasure is verified
only when there is none. A staged file that cannot be read (still being written) is residue
too: run the erasure again once it is published. Files the store does not own are never changed:
the views' source files and datasets saved elsewhere that hold the entity are listed in
``user_sources`` for their owners. Nothing else is removed.

The audit record names the entity and its key columns, and a SHA-256 fingerprint of the key
values instead of the values themselves, so the log keeps no copy of what was erased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from featurestore.definitions.base import canonical_json
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import WriteTimeStorage
from featurestore.definitions.stream_source import StreamSource
from featurestore.errors import (
    DefinitionError,
    EntityFrameError,
    ErasureError,
    RetrievalError,
    SourceSchemaError,
)
from featurestore.governance.dead_letters import erase_stream_dead_letters
from featurestore.governance.holdings import (
    Holdings,
    PushedData,
    Removal,
    StoredView,
    remove_stale,
    totals,
)
from featurestore.governance.parquet_rows import (
    RowFilter,
    RowFilterError,
    keys_equal,
    remove_rows,
)
from featurestore.governance.quality_scrub import QUALITY_PLACE, scrub_quality
from featurestore.offline.base import OfflineEngine, SupportsKeyCounts, missing_capability
from featurestore.offline.source_schema import source_arrow_types
from featurestore.online.base import OnlineStore, SupportsRowDeletion
from featurestore.online.codec import encode_keys, split_entity_key
from featurestore.online.entity_keys import key_array, typed_key_values
from featurestore.quality.history import QualityHistory
from featurestore.types import ValueType


@dataclass(frozen=True)
class UserSource:
    """A file the store does not own that still holds the entity: ``rows`` of it."""

    owner: str  # "feature view 'driver_stats' (source)" or "saved dataset 'train'"
    path: str
    rows: int


@dataclass
class ErasureReport:
    """What one erasure removed (``dry_run``: would remove), what the check found left
    (``residue``), and the user-owned files holding the entity."""

    #: The run's name in OpenLineage job names (``<project>.erase.<view>``).
    job: ClassVar[str] = "erase"

    project: str
    entity: str
    keys: list[str]
    fingerprint: str
    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    residue: list[Removal] = field(default_factory=list)
    user_sources: list[UserSource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """Removed and checked: no row of the entity is left anywhere the store owns."""
        return not self.dry_run and not self.residue

    @property
    def total(self) -> int:
        """Rows and keys removed in all (quality records are counted in their own lines)."""
        return sum(r.rows for r in self.removed if r.place != QUALITY_PLACE)

    @property
    def outcome(self) -> str:
        """The audit record's outcome: ``residue`` when the check still found the entity."""
        return "residue" if self.residue else "ok"

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        records = sum(r.rows for r in self.removed if r.place == QUALITY_PLACE)
        places = sum(r.place != QUALITY_PLACE for r in self.removed)
        scrubbed = f", and values from {records} quality record(s)" if records else ""
        lines = [
            f"erasure of entity {self.entity!r} ({', '.join(self.keys)}; fingerprint "
            f"{self.fingerprint[:16]}) in project {self.project!r}: {verb} {self.total} row(s) "
            f"and key(s) in {places} place(s){scrubbed}"
        ]
        lines.extend(f"  {verb} {removal.describe()}" for removal in self.removed)
        if self.dry_run:
            lines.append("  dry run: nothing was removed")
        elif self.residue:
            lines.append("  NOT VERIFIED: still found after removal:")
            lines.extend(f"    {removal.describe()}" for removal in self.residue)
        else:
            lines.append(
                "  verified: no trace left in the online store, pushed data, datasets, staged "
                "files or quality history"
            )
        if self.user_sources:
            lines.append("  user-owned files still holding it (for their owners to act on):")
            lines.extend(f"    {s.owner}: {s.path} ({s.rows} row(s))" for s in self.user_sources)
        else:
            lines.append("  no user-owned source file holds it")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def audit_detail(self) -> dict[str, Any]:
        """The audit record's detail: no key values, only their fingerprint."""
        return {
            "run": "erasure",
            "dry_run": self.dry_run,
            "entity": self.entity,
            "keys": self.keys,
            "fingerprint": self.fingerprint,
            "removed": totals(self.removed),
            "places": [r.describe() for r in self.removed],
            "verified": self.verified,
            "residue": [r.describe() for r in self.residue],
            "user_sources": [f"{s.owner}: {s.path} ({s.rows})" for s in self.user_sources],
        }


@dataclass(frozen=True)
class _ViewTarget:
    """The entity as one stored view version keys it: typed values and encoded key parts."""

    stored: StoredView
    values: dict[str, pa.Scalar]  # given key -> value in the view's key type
    parts: dict[int, bytes]  # position in the view's key -> encoded part
    full_key: bytes | None  # the whole encoded key, when the entity's keys are the view's


class ErasureRequest:
    """One entity to erase, resolved against every stored view version of a project.

    Raises :class:`ErasureError` when the keys are not the full key of one entity, or a value
    does not fit its key's type.
    """

    def __init__(
        self, holdings: Holdings, entity: Mapping[str, Any], entities: Sequence[Entity]
    ) -> None:
        if not isinstance(entity, Mapping) or not entity:
            raise ErasureError(
                "erase: name the entity by its join keys, e.g. entity={'driver_id': 1001}"
            )
        self.holdings = holdings
        self.given = dict(entity)
        stored = holdings.views()
        self.entity = _match_entity(self.given, [*entities, *_entities_of(stored)])
        self.keys = list(self.entity.join_keys)
        self.values = {
            key: _typed(self.given[key], self.entity.join_key_types[key], key, self.entity.label)
            for key in self.keys
        }
        self.targets = [self._target(s) for s in stored if set(self.keys) <= set(s.view.join_keys)]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the key values (typed per the entity): names the request in the audit
        log without keeping the values."""
        text = canonical_json({key: str(value.as_py()) for key, value in self.values.items()})
        return hashlib.sha256(f"{self.entity.name}:{text}".encode()).hexdigest()

    def _target(self, stored: StoredView) -> _ViewTarget:
        view = stored.view
        values: dict[str, pa.Scalar] = {}
        parts: dict[int, bytes] = {}
        for key in self.keys:
            array = self._view_typed(view, key)
            values[key] = array[0]
            parts[view.join_keys.index(key)] = encode_keys(pa.table({key: array}), [key])[0].as_py()
        full = None
        if len(parts) == len(view.join_keys):
            full = b"".join(parts[i] for i in range(len(parts)))
        return _ViewTarget(stored, values, parts, full)

    def _view_typed(self, view: FeatureView, key: str) -> pa.Array:
        """The given value of ``key`` as a one-element array of the view's key type."""
        value, declared = self.given[key], view.join_key_types[key]
        if declared is None and isinstance(value, str):
            return _from_source_type(value, key, view, self.holdings)
        parsed = value if declared is None else _parse_text(value, declared, key, view.label)
        try:
            return key_array([parsed], key, declared, view)
        except EntityFrameError as exc:
            raise ErasureError(f"erase: {exc}") from None


def _entities_of(stored: Sequence[StoredView]) -> list[Entity]:
    """The entities the stored view versions are keyed by (deleted ones included)."""
    return [entity for s in stored for entity in s.view.entities]


def _match_entity(given: Mapping[str, Any], entities: Sequence[Entity]) -> Entity:
    """The entity whose join keys are exactly the given ones."""
    keys = set(given)
    for entity in entities:
        if set(entity.join_keys) == keys:
            return entity
    known = {e.name: e.join_keys for e in entities}
    listed = ", ".join(f"{name} {keys_}" for name, keys_ in sorted(known.items())) or "none"
    partial = [e for e in entities if keys < set(e.join_keys)]
    if partial:
        entity = partial[0]
        raise ErasureError(
            f"erase: {entity.label} is identified by all of its join keys {entity.join_keys}; "
            f"pass every one of them (got {sorted(keys)})"
        )
    unknown = sorted(k for k in keys if not any(k in e.join_keys for e in entities))
    what = (
        f"{unknown} is not a join key of any entity"
        if unknown
        else f"{sorted(keys)} is not the key of one entity"
    )
    raise ErasureError(f"erase: {what}; the project's entities: {listed}")


def _parse_text(value: Any, declared: ValueType, key: str, where: str) -> Any:
    """Text for a non-String key, parsed as its type (how the CLI passes values); any other
    value is returned as it is, to be checked against the type."""
    if not isinstance(value, str) or declared.name == "String":
        return value
    text = value.strip()
    try:
        if declared.name in ("Int32", "Int64"):
            return int(text)
        if declared.name in ("Float32", "Float64"):
            return float(text)
        if declared.name == "Bool":
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        if declared.name == "Bytes":
            return value.encode("utf-8")
        if declared.name == "UnixTimestamp":
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, KeyError):
        raise ErasureError(
            f"erase: join key {key!r} of {where} is {declared.name}, but {value!r} is not one"
        ) from None
    raise ErasureError(f"erase: join key {key!r} of {where} is {declared.name}: not a key type")


def _from_source_type(text: str, key: str, view: FeatureView, holdings: Holdings) -> pa.Array:
    """Text for a key with no declared type, cast to its column's type in the view's source
    (what materialization stored)."""
    try:
        arrow_type = source_arrow_types(view, holdings.config.repo_path)[key]
        return pa.array([text]).cast(arrow_type)
    except (DefinitionError, KeyError, OSError, pa.ArrowException):
        raise ErasureError(
            f"erase: join key {key!r} of {view.label} declares no type and its source's column "
            f"type cannot be read, so the text {text!r} is ambiguous; declare the entity's "
            "value_type, or pass a typed value (store.erase(entity={...: 1001}))"
        ) from None


def _typed(value: Any, declared: ValueType | None, key: str, where: str) -> pa.Scalar:
    """The entity-level typed value (for saved datasets and the fingerprint); an untyped key's
    text stays text and is cast to each file's column type when compared."""
    if declared is None:
        return pa.scalar(value)
    typed = typed_key_values([_parse_text(value, declared, key, where)], declared)
    if typed is None:
        raise ErasureError(
            f"erase: join key {key!r} of {where} is {declared.name}, but got {value!r}"
        )
    return typed[0]


# -- the run ---------------------------------------------------------------------------------


def erase(
    request: ErasureRequest,
    online: OnlineStore,
    offline: OfflineEngine,
    *,
    dry_run: bool = False,
) -> ErasureReport:
    """Remove the entity (``dry_run``: count it), check that nothing is left, and list the
    user-owned files that hold it. Safe to re-run after a failure."""
    holdings = request.holdings
    report = ErasureReport(
        project=holdings.project,
        entity=request.entity.name,
        keys=request.keys,
        fingerprint=request.fingerprint,
        dry_run=dry_run,
    )
    if request.targets and not isinstance(online, SupportsRowDeletion):
        raise ErasureError(
            f"erase: the online store {online!r} cannot delete rows one by one; use the "
            "sqlite or redis online store"
        )
    # Asked before anything is removed, so an engine that cannot search sources erases nothing.
    if not isinstance(offline, SupportsKeyCounts):
        raise missing_capability(offline, SupportsKeyCounts, "count an entity's rows in sources")
    report.removed = _sweep(request, online, dry_run=dry_run)
    if not dry_run:
        report.residue = _sweep(request, online, dry_run=True)
    scrubbed = sorted({r.owner for r in report.removed if r.place == QUALITY_PLACE})
    if scrubbed:
        report.notes.append(
            f"quality history: the feature values of {', '.join(scrubbed)} were "
            f"{'to be ' if dry_run else ''}redacted in every record (samples, statistics, "
            "drift bins), since an aggregate cannot be scrubbed of one entity; counts and "
            "outcomes are kept"
        )
    _user_sources(request, offline, report)
    return report


def _sweep(request: ErasureRequest, online: OnlineStore, *, dry_run: bool) -> list[Removal]:
    """Remove (``dry_run``: find) the entity's rows in every place the store owns."""
    found: list[Removal] = []
    holdings = request.holdings
    if isinstance(online, SupportsRowDeletion):
        for target in request.targets:
            rows = _online_rows(online, target, dry_run=dry_run)
            if rows:
                stored = target.stored
                found.append(Removal("online", stored.label, rows, stored.view.name))
    staged_filters: dict[Path, tuple[str, RowFilter | None]] = {}
    for pushed in holdings.pushed():
        row_filter = _pushed_filter(request, pushed)
        staged_filters[holdings.data.push_folder(pushed.source)] = (pushed.source, row_filter)
        if row_filter is None:
            continue
        # Under the folder's lock, listed again: a compaction never copies rows erased here.
        with holdings.data.push_lock(pushed.source) as files:
            for path in files:
                rows = _remove(path, row_filter, dry_run=dry_run, keep_empty=False)
                if rows:
                    found.append(Removal("pushed", str(path), rows, pushed.source, str(path)))
    for path in holdings.data.staged_files():
        # Outside a push folder (a dataset being saved or rewritten): by the entity's keys.
        owner, row_filter = staged_filters.get(
            path.parent, (path.parent.name, keys_equal(request.values))
        )
        found.extend(_staged(path, owner, row_filter, dry_run=dry_run))
    for dataset in holdings.datasets():
        if not dataset.owned:
            continue
        rows = _remove(dataset.path, keys_equal(request.values), dry_run=dry_run, keep_empty=True)
        if rows:
            found.append(Removal("dataset", dataset.name, rows, dataset.name, str(dataset.path)))
            if not dry_run:
                holdings.recount_dataset(dataset)
    found.extend(erase_stream_dead_letters(_stream_sources(request), dry_run=dry_run))
    views = {target.stored.view.name for target in request.targets}
    history = QualityHistory(holdings.registry, holdings.project)
    found.extend(scrub_quality(history, views, dry_run=dry_run))
    return found


def _stream_sources(request: ErasureRequest) -> list[tuple[StreamSource, dict[str, Any]]]:
    """The stream sources of the views keyed by the entity, each with the entity's values by
    the source's column names."""
    return [
        (
            source,
            {source.source_column(k): v.as_py() for k, v in target.values.items()},
        )
        for target in request.targets
        if isinstance(source := target.stored.view.source, StreamSource)
    ]


def _staged(
    path: Path, owner: str, row_filter: RowFilter | None, *, dry_run: bool
) -> list[Removal]:
    """A staged file: deleted whole when stale, else rid of the entity's rows (``row_filter``;
    None: a push source no view keyed by the entity reads); one that cannot be read (a write
    under way) is reported when searching (``dry_run``), to fail the check."""
    stale = remove_stale(path, dry_run=dry_run)
    if stale is not None:
        return [stale]
    if row_filter is None:
        return []
    try:
        rows = remove_rows(path, row_filter, dry_run=dry_run, keep_empty=True)
    except RowFilterError:
        if not dry_run:
            return []
        return [Removal("staged", f"{path} (unreadable: a write under way?)", 0, owner, str(path))]
    return [Removal("staged", str(path), rows, owner, str(path))] if rows else []


def _online_rows(online: SupportsRowDeletion, target: _ViewTarget, *, dry_run: bool) -> int:
    namespace = target.stored.namespace
    if target.full_key is not None:
        return online.delete_entity_keys(namespace, [target.full_key], dry_run=dry_run)
    # Keyed by more than this entity: every stored key holding its values.
    matched = [
        key
        for batch in online.scan_entity_keys(namespace)
        for key in batch
        if _holds(key, target.parts)
    ]
    return online.delete_entity_keys(namespace, matched, dry_run=dry_run) if matched else 0


def _holds(key: bytes, parts: Mapping[int, bytes]) -> bool:
    split = split_entity_key(key)
    return all(
        position < len(split) and split[position] == part for position, part in parts.items()
    )


def _pushed_filter(request: ErasureRequest, pushed: PushedData) -> RowFilter | None:
    """Rows of the entity in a push source's files, by its source column names; None when no
    view keyed by the entity reads the source."""
    readers = {id(s) for s in pushed.readers}
    targets = [t for t in request.targets if id(t.stored) in readers]
    if not targets:
        return None
    # Every view reading a push source shares its definition, column names included.
    target = targets[-1]
    source = target.stored.view.source
    return keys_equal({source.source_column(k): v for k, v in target.values.items()})


def _remove(path: Path, row_filter: RowFilter, *, dry_run: bool, keep_empty: bool) -> int:
    try:
        return remove_rows(path, row_filter, dry_run=dry_run, keep_empty=keep_empty)
    except RowFilterError as exc:
        raise ErasureError(
            f"erase: cannot filter {exc}; what was removed before stays removed, run the "
            "erasure again once the file is readable"
        ) from exc


def _user_sources(
    request: ErasureRequest, offline: SupportsKeyCounts, report: ErasureReport
) -> None:
    """The views' own source files, and datasets saved outside the store, holding the entity."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for target in reversed(request.targets):  # newest versions first
        view = target.stored.view
        if isinstance(view, WriteTimeStorage):
            continue  # computed values: its "source" is a source view's, listed for that view
        columns = tuple(view.source.source_column(k) for k in request.keys)
        where = (view.source.resolve(request.holdings.config.repo_path), columns)
        if where in seen:
            continue
        seen.add(where)
        values = {k: v.as_py() for k, v in target.values.items()}
        try:
            counts = offline.count_entity_rows(view, values)
        except (DefinitionError, RetrievalError, SourceSchemaError) as exc:
            report.notes.append(f"could not search the source of {target.stored.label}: {exc}")
            continue
        owner = f"{view.label} (source)"
        report.user_sources.extend(UserSource(owner, path, rows) for path, rows in counts.items())
    for dataset in request.holdings.datasets():
        if dataset.owned:
            continue
        rows = _remove(dataset.path, keys_equal(request.values), dry_run=True, keep_empty=True)
        if rows:
            report.user_sources.append(
                UserSource(f"saved dataset {dataset.name!r}", str(dataset.path), rows)
            )
