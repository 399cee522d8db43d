"""Online lookups: the latest value per entity and feature, with its event time and a status.

For every requested view one ``read`` goes to the online store (one round trip), against the
namespace of the view's current registry version, or of the pinned version for ``view@N:f``.
Each value then gets a status:

* ``PRESENT`` - a row is stored, it is valid at ``as_of`` and the value is not null;
* ``NULL_VALUE`` - a valid row is stored but this feature is null in it;
* ``OUTSIDE_MAX_AGE`` - the row's event time is strictly older than ``as_of - ttl`` (the bound is
  inclusive, as in the point-in-time join); its event time is still reported;
* ``NOT_FOUND`` - no row, a null join key, or a row whose event time is *after* ``as_of``: a
  lookup at a past instant must not see values from its future (the historical retrieval would not
  either), so such a row counts as not there yet. A row older than the view's retention window
  (counted back from now, not from ``as_of``) is not found either: retention has removed it, or
  will at its next run.

Any status but ``PRESENT`` comes with a null value. A global view (no entities) answers every
entity row with its one stored row. Resolved references are cached per request
shape; the registry's cheap ``state_token`` is checked at most once per ``freshness_interval``
and a change drops the cache, so an apply is served within that interval::

    lookup = OnlineLookup("demo", registry, online)
    response = lookup.lookup(["driver_stats:conv_rate"], entity_rows=[{"driver_id": 1}])
    response.to_dict()   # {"driver_id": [1], "conv_rate": [0.5]}
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa

from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import FeatureReferenceError, ObjectNotFoundError
from featurestore.online.aggregation_lookup import AggregatedRead
from featurestore.online.base import Namespace, OnlineStore
from featurestore.online.codec import RowCodec, encode_keys
from featurestore.online.entity_keys import EntityRowsInput, entity_columns, key_array
from featurestore.online.response import FieldStatus, OnlineResponse
from featurestore.online.small import SMALL_LOOKUP, ScalarRowDecoder, key_encoder
from featurestore.online.statuses import row_statuses, small_statuses
from featurestore.references import parse_reference, resolve_requests
from featurestore.registry import Registry
from featurestore.registry.freshness import FreshnessGate
from featurestore.types import ValueType

__all__ = ["EntityRowsInput", "FieldStatus", "LookupPlan", "OnlineLookup", "OnlineResponse"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_OLDEST = -(2**63)  # below every event time: no bound
_MICROSECOND = timedelta(microseconds=1)
PRESENT, NOT_FOUND = FieldStatus.PRESENT, FieldStatus.NOT_FOUND
NULL_VALUE, OUTSIDE_MAX_AGE = FieldStatus.NULL_VALUE, FieldStatus.OUTSIDE_MAX_AGE


@dataclass(frozen=True)
class ViewRead:
    """One online read of a lookup: which namespace, keys and features, under which names.

    ``encode_key`` and ``decoder`` serve small lookups without Arrow (see
    :mod:`featurestore.online.small`); None when this read needs the vectorized path.
    ``retention_us`` is the view's retention window (None: rows never age out).
    ``governing`` is the view's current registration when a pinned older version is read:
    its metadata, not the old version's, decides who may read it.
    """

    namespace: Namespace
    join_keys: tuple[str, ...]
    key_types: tuple[ValueType | None, ...]
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    ttl_us: int | None
    encode_key: Callable[[Sequence[Any]], bytes] | None = None
    decoder: ScalarRowDecoder | None = None
    retention_us: int | None = None
    governing: FeatureView | None = None
    aggregated: AggregatedRead | None = None  # an aggregated view's read (evaluated windows)

    def kept_from(self, now_us: int) -> int:
        """The oldest event time still kept at ``now_us``: older rows are gone (retention)."""
        return _OLDEST if self.retention_us is None else now_us - self.retention_us

    @property
    def small(self) -> bool:
        return self.encode_key is not None and (
            self.decoder is not None or self.aggregated is not None
        )


@dataclass(frozen=True)
class LookupPlan:
    """A resolved request shape: the reads to do and the output columns, in request order."""

    reads: tuple[ViewRead, ...]
    join_keys: tuple[str, ...]
    feature_names: tuple[str, ...]
    types: Mapping[str, pa.DataType]

    @property
    def view_versions(self) -> list[tuple[str, int]]:
        """``(view, version)`` of every read, in request order."""
        return [(read.namespace.view.name, read.namespace.version) for read in self.reads]


class OnlineLookup:
    """Answers online lookups for one project from a registry and an online store.

    ``freshness_interval`` (seconds) bounds how long a registry change can go unnoticed; the
    registry is asked for its state token at most that often, never per call. ``retention``
    gives a view's effective retention window (asked once per plan, not per lookup).
    """

    def __init__(
        self,
        project: str,
        registry: Registry,
        online: OnlineStore,
        *,
        freshness_interval: float = 1.0,
        authorize: Callable[[LookupPlan, Sequence[str] | str, Any], None] | None = None,
        retention: Callable[[FeatureView], timedelta | None] | None = None,
        stored: Callable[[str, int | None], tuple[FeatureView, int] | None] | None = None,
    ) -> None:
        self.project = project
        #: ``(name, pin) -> (view, version)`` for names served from a namespace that is no
        #: registered feature view (a write-time on-demand view's stored values); None: not one.
        self.stored = stored
        self.authorize = authorize
        self.retention = retention
        self.registry = registry
        self.online = online
        self.freshness_interval = freshness_interval
        # Keyed by (references, whether it is a service name, full_feature_names).
        self._plans: dict[tuple[tuple[str, ...], bool, bool], LookupPlan] = {}
        self._gate = FreshnessGate(registry, project, interval=freshness_interval)
        self._lock = threading.Lock()

    # -- plans ---------------------------------------------------------------------------------

    def plan(
        self, references: Sequence[str] | str, *, full_feature_names: bool = False
    ) -> LookupPlan:
        """The resolved plan for ``references`` (or a feature service's name), from the cache
        when the registry is unchanged."""
        if self._gate.changed():
            with self._lock:
                self._plans.clear()
        key = _plan_key(references, full_feature_names)
        cached = None if key is None else self._plans.get(key)
        if cached is not None:
            return cached
        with self._lock:
            plan = self._resolve(references, full_feature_names)
            if key is not None:
                self._plans[key] = plan
        return plan

    def cached_plan(
        self, references: Sequence[str] | str, *, full_feature_names: bool = False
    ) -> LookupPlan | None:
        """The plan, only when it is cached and the registry need not be asked (so an event
        loop can take it without blocking); None otherwise."""
        if self._gate.due():
            return None
        key = _plan_key(references, full_feature_names)
        return None if key is None else self._plans.get(key)

    def _resolve(self, references: Sequence[str] | str, full_feature_names: bool) -> LookupPlan:
        if isinstance(references, str):
            references = self._service_references(references)
        versions: dict[tuple[str, int | None], int] = {}
        governing: dict[str, FeatureView] = {}

        def view_at(name: str, pin: int | None) -> FeatureView:
            found = None if self.stored is None else self.stored(name, pin)
            if found is not None:
                versions[(name, pin)] = found[1]
                return found[0]
            try:
                version = (
                    pin
                    if pin is not None
                    else self.registry.current_version(self.project, "feature_view", name)
                )
                view = self.registry.get(self.project, "feature_view", name, version)
            except ObjectNotFoundError as exc:
                raise FeatureReferenceError.from_not_found(exc) from None
            assert isinstance(view, FeatureView)
            if not view.online:
                raise FeatureReferenceError(
                    f"{view.label} is not served online (online=False); use "
                    "get_historical_features, or set online=True and materialize it"
                )
            versions[(name, pin)] = version
            if pin is not None and name not in governing:
                current = self.registry.latest(self.project, "feature_view", name)
                assert isinstance(current, FeatureView)
                governing[name] = current
            return view

        requests = resolve_requests(references, view_at, full_feature_names=full_feature_names)
        parsed = [parse_reference(r) for r in references]
        groups = list(dict.fromkeys((ref.view, ref.version) for ref in parsed))
        by_group = dict(zip(groups, requests, strict=True))
        reads: list[ViewRead] = []
        join_keys: dict[str, None] = {}
        types: dict[str, pa.DataType] = {}
        for group, request in by_group.items():
            view = request.view
            join_keys.update(dict.fromkeys(view.join_keys))
            for key, declared in view.join_key_types.items():
                if declared is not None:
                    types.setdefault(key, declared.to_arrow())
            for feature, output in zip(request.features, request.output_names, strict=True):
                types[output] = view.feature(feature).dtype.to_arrow()
            reads.append(
                ViewRead(
                    namespace=Namespace(self.project, view, versions[group]),
                    join_keys=tuple(view.join_keys),
                    key_types=tuple(view.join_key_types.values()),
                    features=request.features,
                    outputs=request.output_names,
                    ttl_us=None if view.ttl is None else _micros(view.ttl.total_seconds()),
                    encode_key=key_encoder(list(view.join_key_types.values())),
                    decoder=None if view.is_aggregated else _scalar_decoder(view, request.features),
                    retention_us=self._retention_us(view),
                    governing=governing.get(view.name) if group[1] is not None else None,
                    aggregated=AggregatedRead.of(view, request.features)
                    if view.is_aggregated
                    else None,
                )
            )
        outputs = [
            request.output_names[request.features.index(ref.feature)]
            for ref in parsed
            for request in (by_group[(ref.view, ref.version)],)
        ]
        return LookupPlan(tuple(reads), tuple(join_keys), tuple(outputs), types)

    def _retention_us(self, view: FeatureView) -> int | None:
        window = None if self.retention is None else self.retention(view)
        return None if window is None else window // _MICROSECOND

    def _service_references(self, name: str) -> list[str]:
        if ":" in name:
            raise FeatureReferenceError(
                f"features={name!r}: pass a list of references, e.g. [{name!r}]"
            )
        # An unknown service stays an ObjectNotFoundError, as get_historical_features reports it.
        service = self.registry.get(self.project, "feature_service", name)
        assert isinstance(service, FeatureService)
        return service.feature_refs()

    # -- lookups -------------------------------------------------------------------------------

    def lookup(
        self,
        references: Sequence[str] | str,
        *,
        entity_rows: EntityRowsInput | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: Any = None,
    ) -> OnlineResponse:
        """Look ``references`` up for the given entities, evaluated at ``as_of`` (default: now).

        ``references`` is a list of ``"view:feature"`` / ``"view@N:feature"`` references or the
        name of a registered feature service (resolved once per registry state, like the rest).

        Pass exactly one of ``entity_rows=[{"driver_id": 1}, ...]`` and
        ``entities={"driver_id": [1, ...]}``. Every row needs every join key of every requested
        view; values are checked against the declared key types.
        """
        plan = self.plan(references, full_feature_names=full_feature_names)
        if self.authorize is not None:
            self.authorize(plan, references, principal)
        request = self._request(plan, entity_rows, entities, as_of)
        if request.encoded is not None:
            return _small_response(request, self.online.read_packed(request.packed_reads()))
        return self._lookup_vectorized(request)

    async def lookup_async(
        self,
        references: Sequence[str] | str,
        *,
        entity_rows: EntityRowsInput | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        full_feature_names: bool = False,
        as_of: datetime | None = None,
        principal: Any = None,
    ) -> OnlineResponse:
        """:meth:`lookup` for an event loop: small lookups await the store's async read (one
        round trip, the loop stays free); registry reads and large lookups run in a thread."""
        plan = self.cached_plan(references, full_feature_names=full_feature_names)
        if plan is None:
            plan = await asyncio.to_thread(
                self.plan, references, full_feature_names=full_feature_names
            )
        if self.authorize is not None:
            self.authorize(plan, references, principal)
        request = self._request(plan, entity_rows, entities, as_of)
        if request.encoded is not None:
            stored = await self.online.read_packed_async(request.packed_reads())
            return _small_response(request, stored)
        return await asyncio.to_thread(self._lookup_vectorized, request)

    def _request(
        self,
        plan: LookupPlan,
        entity_rows: EntityRowsInput | None,
        entities: Mapping[str, Sequence[Any]] | None,
        as_of: datetime | None,
    ) -> _Request:
        columns, rows = entity_columns(
            [read.namespace.view for read in plan.reads], entity_rows, entities
        )
        now_us = time.time_ns() // 1000
        as_of_us = now_us if as_of is None else _datetime_micros(as_of)
        encoded = (
            _encode_small(plan, columns, rows)
            if rows <= SMALL_LOOKUP and all(read.small for read in plan.reads)
            else None
        )
        return _Request(plan, columns, rows, as_of_us, encoded, now_us)

    def _lookup_vectorized(self, request: _Request) -> OnlineResponse:
        plan, columns, rows = request.plan, request.columns, request.rows
        arrays: dict[tuple[str, str], pa.Array] = {}
        keys_out: dict[str, list[Any]] = {}
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[FieldStatus]] = {}
        stamps: dict[str, list[int | None]] = {}
        for read in plan.reads:
            key_arrays = []
            for key, declared in zip(read.join_keys, read.key_types, strict=True):
                cache_key = (key, "" if declared is None else declared.name)
                array = arrays.get(cache_key)
                if array is None:
                    array = key_array(columns[key], key, declared, read.namespace.view)
                    arrays[cache_key] = array
                    # Echo plain Python values (numpy scalars in, ints out).
                    keys_out.setdefault(key, array.to_pylist())
                key_arrays.append(array)
            # A null key never matches (the stores never store or find one), as offline.
            keys = _keys_table(read.join_keys, key_arrays, rows)
            kept_from = read.kept_from(request.now_us)
            if read.aggregated is not None:
                encoded = encode_keys(keys, read.join_keys).to_pylist()
                [stored] = self.online.read_packed(
                    [(read.namespace, [k for k in encoded if k is not None])]
                )
                found = iter(stored)
                packed = [None if k is None else next(found) for k in encoded]
                read.aggregated.answer(
                    read.outputs, packed, request.as_of_us, kept_from, values, statuses, stamps
                )
                continue
            result = self.online.read(read.namespace, keys, read.features)
            row_statuses(read, result, request.as_of_us, kept_from, values, statuses, stamps)
        return OnlineResponse(
            join_keys={k: keys_out[k] for k in plan.join_keys},
            values={name: values[name] for name in plan.feature_names},
            statuses={name: statuses[name] for name in plan.feature_names},
            event_timestamps_us={name: stamps[name] for name in plan.feature_names},
            types=plan.types,
            view_versions=plan.view_versions,
        )


@dataclass(frozen=True)
class _Request:
    """One lookup's plan and entities; ``encoded`` holds the small path's encoded keys per
    read (None: the vectorized path answers); ``now_us`` is when it was asked (retention
    counts back from it)."""

    plan: LookupPlan
    columns: Mapping[str, list[Any]]
    rows: int
    as_of_us: int
    encoded: list[list[bytes | None]] | None
    now_us: int

    def packed_reads(self) -> list[tuple[Namespace, list[bytes]]]:
        assert self.encoded is not None
        return [
            (read.namespace, [k for k in encoded if k is not None])
            for read, encoded in zip(self.plan.reads, self.encoded, strict=True)
        ]


def _plan_key(
    references: Sequence[str] | str, full_feature_names: bool
) -> tuple[tuple[str, ...], bool, bool] | None:
    """The plan cache's key; None for unhashable junk (resolution then reports it)."""
    try:
        shape = (references,) if isinstance(references, str) else tuple(references)
        key = (shape, isinstance(references, str), bool(full_feature_names))
        hash(key)
    except TypeError:
        return None
    return key


def _encode_small(
    plan: LookupPlan, columns: Mapping[str, list[Any]], rows: int
) -> list[list[bytes | None]] | None:
    """Scalar-encoded keys per read (None for a null key, which never matches); None when a
    key value does not fit its type, so the vectorized path can report the error in full."""
    encoded_per_read: list[list[bytes | None]] = []
    for read in plan.reads:
        assert read.encode_key is not None
        encoded: list[bytes | None] = []
        for i in range(rows):
            key_values = [columns[key][i] for key in read.join_keys]
            if None in key_values:
                encoded.append(None)
                continue
            try:
                encoded.append(read.encode_key(key_values))
            except (TypeError, ValueError, OverflowError):
                return None
        encoded_per_read.append(encoded)
    return encoded_per_read


def _small_response(request: _Request, stored_per_read: list[list[bytes | None]]) -> OnlineResponse:
    """Decode the small path's packed rows (one list per read) into the response."""
    plan = request.plan
    assert request.encoded is not None
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[FieldStatus]] = {}
    stamps: dict[str, list[int | None]] = {}
    for read, encoded, stored in zip(plan.reads, request.encoded, stored_per_read, strict=True):
        found = iter(stored)
        packed = [None if key is None else next(found) for key in encoded]
        kept_from = read.kept_from(request.now_us)
        if read.aggregated is not None:
            read.aggregated.answer(
                read.outputs, packed, request.as_of_us, kept_from, values, statuses, stamps
            )
            continue
        small_statuses(read, packed, request.as_of_us, kept_from, values, statuses, stamps)
    join_keys = {key: [_plain(v) for v in request.columns[key]] for key in plan.join_keys}
    return OnlineResponse(
        join_keys=join_keys,
        values={name: values[name] for name in plan.feature_names},
        statuses={name: statuses[name] for name in plan.feature_names},
        event_timestamps_us={name: stamps[name] for name in plan.feature_names},
        types=plan.types,
        view_versions=plan.view_versions,
    )


def _scalar_decoder(view: FeatureView, features: Sequence[str]) -> ScalarRowDecoder | None:
    try:
        return ScalarRowDecoder(RowCodec(view.features), features)
    except ValueError:  # array features: vectorized path only
        return None


def _plain(value: Any) -> Any:
    """numpy integers echo as Python ints, as the vectorized path's ``to_pylist`` gives."""
    if value is None or type(value) in (int, str, bytes, bool, float):
        return value
    index = getattr(value, "__index__", None)
    return index() if index is not None else value


def _keys_table(names: Sequence[str], arrays: list[pa.Array], rows: int) -> pa.Table:
    if not names:  # a global view: one (empty) key per entity row
        return pa.table({"__fs_rows": pa.nulls(rows)}).select([])
    return pa.Table.from_arrays(arrays, names=list(names))


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _datetime_micros(moment: datetime) -> int:
    """Epoch microseconds of ``moment``; naive datetimes are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
