"""On-demand features in online lookups: the same function on looked-up values and request data.

:class:`OnDemandLookup` sits in front of :class:`~featurestore.online.lookup.OnlineLookup`. A
request without on-demand features goes straight through (one cached dictionary lookup more).
Otherwise the inner lookup reads the plain features and every input feature in one go (so the
access check covers the inputs: a feature the caller may not read cannot be read through an
on-demand view), request values come from the entity rows (``{"driver_id": 1,
"distance_km": 3.2}``) or the ``entities`` columns, and each view's function runs on them:
``mode="python"`` row by row on plain values, ``mode="pandas"`` once on a frame of all rows.
On-demand values have status ``PRESENT`` (``NULL_VALUE`` when null) and no event time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import EntityFrameError
from featurestore.online.entity_keys import EntityRowsInput
from featurestore.online.lookup import OnlineLookup
from featurestore.online.response import FieldStatus, OnlineResponse
from featurestore.references import parse_reference
from featurestore.registry import Registry
from featurestore.registry.freshness import FreshnessGate
from featurestore.transform.execute import Transform
from featurestore.transform.offline import OnDemandLookup as FindOnDemand
from featurestore.transform.offline import OnDemandPart, on_demand_groups, split_references

PRESENT, NULL_VALUE = FieldStatus.PRESENT, FieldStatus.NULL_VALUE
#: ``authorize(views, principal, service)``: AccessDeniedError unless the principal may read
#: them (and the feature service the request names, when it names one).
AuthorizeViews = Callable[[Sequence[OnDemandFeatureView], Any, str | None], None]


@dataclass(frozen=True)
class OnlinePlan:
    """A request shape with on-demand features, resolved."""

    inner_references: tuple[str, ...]  # what the inner lookup reads (full feature names)
    plain: tuple[tuple[str, str], ...]  # (inner column, output name) of requested plain features
    parts: tuple[OnDemandPart, ...]  # inputs name inner columns or request fields
    request_fields: tuple[str, ...]
    order: tuple[str, ...]  # output feature columns, in request order
    service: str | None = None  # the feature service asked through, if any

    @property
    def views(self) -> list[OnDemandFeatureView]:
        return [p.view for p in self.parts]


class OnDemandLookup:
    """``lookup`` / ``lookup_async`` as :class:`OnlineLookup` has them, on-demand views included."""

    def __init__(
        self,
        inner: OnlineLookup,
        registry: Registry,
        project: str,
        find: FindOnDemand,
        authorize: AuthorizeViews,
        *,
        freshness_interval: float = 1.0,
    ) -> None:
        self.inner = inner
        self.registry = registry
        self.project = project
        self.find = find
        self.authorize = authorize
        self._plans: dict[Any, OnlinePlan | None] = {}
        self._gate = FreshnessGate(registry, project, interval=freshness_interval)
        self._lock = threading.Lock()

    # -- plans ---------------------------------------------------------------------------------

    def plan(self, references: Sequence[str] | str, full_feature_names: bool) -> OnlinePlan | None:
        """The on-demand plan of a request shape; None when it has no on-demand feature."""
        if self._gate.changed():
            with self._lock:
                self._plans.clear()
        try:
            key = (
                references if isinstance(references, str) else tuple(references),
                full_feature_names,
            )
            hash(key)
        except TypeError:
            return None  # the inner lookup reports the malformed request
        if key in self._plans:
            return self._plans[key]
        plan = self._resolve(references, full_feature_names)
        with self._lock:
            self._plans[key] = plan
        return plan

    def cached(self, references: Sequence[str] | str, full_feature_names: bool) -> bool:
        """Whether :meth:`plan` answers without asking the registry."""
        if self._gate.due():
            return False
        try:
            key = (
                references if isinstance(references, str) else tuple(references),
                full_feature_names,
            )
            return key in self._plans
        except TypeError:
            return True

    def _resolve(
        self, references: Sequence[str] | str, full_feature_names: bool
    ) -> OnlinePlan | None:
        service_name = None
        if isinstance(references, str):
            if ":" in references:
                return None
            service = self.registry.get(self.project, "feature_service", references)
            assert isinstance(service, FeatureService)
            service_name, references = references, service.feature_refs()
        if not isinstance(references, Sequence) or not all(isinstance(r, str) for r in references):
            return None
        plain, found = split_references(references, self.find)
        if not found:
            return None
        plain_outputs = (
            self.inner.plan(plain, full_feature_names=full_feature_names).feature_names
            if plain
            else ()
        )
        outputs = {str(parse_reference(r)): o for r, o in zip(plain, plain_outputs, strict=True)}
        inner = list(plain)
        positions = {str(parse_reference(r)): i for i, r in enumerate(plain)}
        parts: list[tuple[OnDemandPart, list[tuple[str, int | str]]]] = []
        request_fields: dict[str, None] = {}
        taken = dict.fromkeys(plain_outputs, "a requested feature view")
        for (name, pin), view, version, features, names in on_demand_groups(
            found, full_feature_names, taken, references
        ):
            pinned = "" if pin is None else f"@{pin}"
            outputs.update({f"{name}{pinned}:{f}": o for f, o in zip(features, names, strict=True)})
            inputs: list[tuple[str, int | str]] = []
            for reference in view.input_references():
                if reference not in positions:
                    positions[reference] = len(inner)
                    inner.append(reference)
                inputs.append((parse_reference(reference).feature, positions[reference]))
            for item in view.request_fields:
                inputs.append((item.name, item.name))
                request_fields[item.name] = None
            part = OnDemandPart(Transform(view, version), features, names, ())
            parts.append((part, inputs))
        # The inner lookup names every column in full; inputs name those columns.
        inner_names = self.inner.plan(inner, full_feature_names=True).feature_names if inner else []
        resolved = [
            replace(
                part,
                inputs=tuple((n, inner_names[c] if isinstance(c, int) else c) for n, c in inputs),
            )
            for part, inputs in parts
        ]
        return OnlinePlan(
            tuple(inner),
            tuple(zip(inner_names[: len(plain)], plain_outputs, strict=True)),
            tuple(resolved),
            tuple(request_fields),
            tuple(outputs[str(parse_reference(r))] for r in references),
            service_name,
        )

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
        plan = self.plan(references, full_feature_names)
        if plan is None:
            return self.inner.lookup(
                references,
                entity_rows=entity_rows,
                entities=entities,
                full_feature_names=full_feature_names,
                as_of=as_of,
                principal=principal,
            )
        self.authorize(plan.views, principal, plan.service)
        request = _request_values(plan, entity_rows, entities)
        response = self.inner.lookup(
            list(plan.inner_references),
            entity_rows=entity_rows,
            entities=entities,
            full_feature_names=True,
            as_of=as_of,
            principal=principal,
        )
        return _finish(plan, response, request)

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
        if self.cached(references, full_feature_names):
            plan = self.plan(references, full_feature_names)
        else:
            plan = await asyncio.to_thread(self.plan, references, full_feature_names)
        if plan is None:
            return await self.inner.lookup_async(
                references,
                entity_rows=entity_rows,
                entities=entities,
                full_feature_names=full_feature_names,
                as_of=as_of,
                principal=principal,
            )
        self.authorize(plan.views, principal, plan.service)
        request = _request_values(plan, entity_rows, entities)
        response = await self.inner.lookup_async(
            list(plan.inner_references),
            entity_rows=entity_rows,
            entities=entities,
            full_feature_names=True,
            as_of=as_of,
            principal=principal,
        )
        return _finish(plan, response, request)


def _request_values(
    plan: OnlinePlan,
    entity_rows: EntityRowsInput | None,
    entities: Mapping[str, Sequence[Any]] | None,
) -> dict[str, list[Any]]:
    """The request fields' values, one per entity row; EntityFrameError naming a missing one."""
    values: dict[str, list[Any]] = {}
    for name in plan.request_fields:
        needs = [p.transform.label for p in plan.parts if name in dict(p.inputs)]
        if entities is not None:
            if not isinstance(entities, Mapping) or name not in entities:
                raise EntityFrameError(_missing(name, needs))
            values[name] = list(entities[name])
        elif entity_rows is not None and not isinstance(entity_rows, Mapping | str | bytes):
            try:
                values[name] = [row[name] for row in entity_rows]
            except (KeyError, TypeError):
                raise EntityFrameError(_missing(name, needs)) from None
    return values


def _missing(name: str, needs: list[str]) -> str:
    return (
        f"the request lacks request value {name!r}, which {' and '.join(needs)} needs: pass it "
        f'in every entity row ({{"{name}": ...}}) or, over REST, under "entities" or '
        '"request_context"'
    )


def _finish(
    plan: OnlinePlan, response: OnlineResponse, request: Mapping[str, list[Any]]
) -> OnlineResponse:
    rows = len(response) if plan.inner_references else len(next(iter(request.values()), []))
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[FieldStatus]] = {}
    stamps: dict[str, list[int | None]] = {}
    types = dict(response.types)
    for column, output in plan.plain:
        values[output], statuses[output], stamps[output] = response.column(column)
        types[output] = response.types[column]
    no_time: list[int | None] = [None] * rows
    for part in plan.parts:
        columns = {
            name: request[column] if column in request else response.column(column)[0]
            for name, column in part.inputs
        }
        results = dict(
            zip(part.transform.outputs, part.transform.run_columns(columns, rows), strict=True)
        )
        output_types = dict(zip(part.transform.outputs, part.transform.output_types, strict=True))
        for feature, output in zip(part.features, part.outputs, strict=True):
            column_values = results[feature]
            values[output] = column_values
            statuses[output] = [PRESENT if v is not None else NULL_VALUE for v in column_values]
            stamps[output] = no_time
            types[output] = output_types[feature].to_arrow()
    keys = dict(response.key_columns)
    versions = response.view_versions + [(p.view.name, p.transform.version) for p in plan.parts]
    return OnlineResponse(
        join_keys=keys,
        values={name: values[name] for name in plan.order},
        statuses={name: statuses[name] for name in plan.order},
        event_timestamps_us={name: stamps[name] for name in plan.order},
        types=types,
        view_versions=versions,
    )
