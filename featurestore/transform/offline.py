"""On-demand features in historical retrievals: computed after the point-in-time join.

:func:`plan_retrieval` splits a retrieval's references into the plain features the engine joins
and the on-demand ones. Every input feature of an on-demand view is joined too: under the column
of a plain reference that already asks for it, else under a hidden column that the result leaves
out. :class:`OnDemandRetrievalJob` then streams the joined frame in bounded batches (100k rows by
default), runs each view's function on each batch (inputs from the joined columns and the entity
frame's request columns) and keeps only the requested columns, so a 1M-row frame is never held
twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import EntityFrameError, FeatureReferenceError, did_you_mean
from featurestore.offline.base import FeatureRequest, RetrievalJob
from featurestore.references import FeatureRef, parse_reference, resolve_requests
from featurestore.transform.execute import Transform

#: Rows per batch the functions see offline.
BATCH_ROWS = 100_000
_HIDDEN = "__fs_on_demand__"

#: ``(name, version or None) -> (view, its version)``; None when ``name`` is no on-demand view.
OnDemandLookup = Callable[[str, int | None], tuple[OnDemandFeatureView, int] | None]
ViewLookup = Callable[[str, int | None], FeatureView]

_NULLABLE: dict[pa.DataType, Any] = {
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


@dataclass(frozen=True)
class OnDemandPart:
    """One on-demand view (at one version) in a retrieval or a lookup."""

    transform: Transform
    features: tuple[str, ...]  # the requested features, in request order
    outputs: tuple[str, ...]  # their output column names
    inputs: tuple[tuple[str, str], ...]  # (input name, column or lookup output holding it)

    @property
    def view(self) -> OnDemandFeatureView:
        return self.transform.view


@dataclass(frozen=True)
class RetrievalPlan:
    """The engine's requests plus the on-demand parts computed from their result."""

    requests: list[FeatureRequest]
    parts: list[OnDemandPart]
    hidden: tuple[str, ...]

    def visible(self, requests: Sequence[FeatureRequest]) -> list[FeatureRequest]:
        """``requests`` without the hidden input columns (what the result holds)."""
        kept = []
        for request in requests:
            pairs = [
                (f, o)
                for f, o in zip(request.features, request.output_names, strict=True)
                if o not in self.hidden
            ]
            if pairs:
                features, outputs = zip(*pairs, strict=True)
                kept.append(replace(request, features=features, output_names=outputs))
        return kept

    def wrap(self, job: RetrievalJob) -> RetrievalJob:
        if not self.parts:
            return job
        plain = tuple(o for r in self.requests for o in r.output_names if o not in self.hidden)
        return OnDemandRetrievalJob(job, self.parts, self.hidden, plain)


def split_references(
    references: Sequence[str], on_demand: OnDemandLookup
) -> tuple[list[str], list[tuple[FeatureRef, OnDemandFeatureView, int]]]:
    """Plain references, and the on-demand ones with their view and version."""
    plain: list[str] = []
    found: list[tuple[FeatureRef, OnDemandFeatureView, int]] = []
    known: dict[tuple[str, int | None], tuple[OnDemandFeatureView, int] | None] = {}
    for text in references:
        ref = parse_reference(text)
        key = (ref.view, ref.version)
        if key not in known:
            known[key] = on_demand(ref.view, ref.version)
        hit = known[key]
        if hit is None:
            plain.append(text)
        else:
            found.append((ref, *hit))
    return plain, found


def plan_retrieval(
    references: Sequence[str],
    views: ViewLookup,
    on_demand: OnDemandLookup,
    *,
    full_feature_names: bool,
) -> RetrievalPlan:
    """The requests for ``references``, with every on-demand view's inputs joined as well."""
    if isinstance(references, str):
        references = [references]  # resolve_requests reports it
    plain, found = split_references(references, on_demand)
    if not found:
        return RetrievalPlan(
            resolve_requests(references, views, full_feature_names=full_feature_names), [], ()
        )
    requests = (
        resolve_requests(plain, views, full_feature_names=full_feature_names) if plain else []
    )
    taken = {o: str(r.view.name) for r in requests for o in r.output_names}
    hidden: list[str] = []
    # Where each input feature (at its view's current version) is joined: view -> feature -> column.
    joined: dict[str, dict[str, str]] = {}
    for request in requests:
        current = views(request.view.name, None)
        if request.view.content_hash == current.content_hash:
            joined.setdefault(request.view.name, {}).update(
                zip(request.features, request.output_names, strict=True)
            )
    parts: list[OnDemandPart] = []
    for _, view, version, features, outputs in on_demand_groups(found, full_feature_names, taken):
        inputs: list[tuple[str, str]] = []
        for source, fields in view.view_sources.items():
            columns = joined.setdefault(source, {})
            for item in fields:
                if item.name not in columns:
                    columns[item.name] = f"{_HIDDEN}{source}__{item.name}"
                    hidden.append(columns[item.name])
                    requests = _add_feature(requests, views(source, None), item.name, columns)
                inputs.append((item.name, columns[item.name]))
        inputs += [(f.name, f.name) for f in view.request_fields]
        parts.append(OnDemandPart(Transform(view, version), features, outputs, tuple(inputs)))
    return RetrievalPlan(requests, parts, tuple(hidden))


def _add_feature(
    requests: list[FeatureRequest], view: FeatureView, feature: str, columns: dict[str, str]
) -> list[FeatureRequest]:
    view.feature(feature)  # a clear error if the view lost it since the on-demand view was applied
    for index, request in enumerate(requests):
        if request.view.name == view.name and request.view.content_hash == view.content_hash:
            requests[index] = replace(
                request,
                features=(*request.features, feature),
                output_names=(*request.output_names, columns[feature]),
            )
            return requests
    return [*requests, FeatureRequest(view, (feature,), (columns[feature],))]


def on_demand_groups(
    found: list[tuple[FeatureRef, OnDemandFeatureView, int]],
    full_feature_names: bool,
    taken: dict[str, str],
    asked: Sequence[str] = (),
) -> Iterator[
    tuple[tuple[str, int | None], OnDemandFeatureView, int, tuple[str, ...], tuple[str, ...]]
]:
    """Per on-demand view and pin: ``((name, pin), view, version, features, outputs)``, the
    output names decided as for feature views (clashes with ``taken`` rejected). ``asked``: all
    the request's references, when some of a view's are served otherwise (a write-time view's
    current version is read as stored): a pinned version is ``view_vN`` when the view is asked
    at another version anywhere in the request."""
    groups: dict[tuple[str, int | None], tuple[OnDemandFeatureView, int, list[str]]] = {}
    for ref, view, version in found:
        if ref.feature not in view.feature_names:
            raise FeatureReferenceError(
                f"{view.label} has no feature {ref.feature!r}; it has {view.feature_names}"
                f"{did_you_mean(ref.feature, view.feature_names)}",
                missing="feature",
            )
        group = groups.setdefault((ref.view, ref.version), (view, version, []))
        if ref.feature in group[2]:
            raise FeatureReferenceError(f"feature reference {ref} is requested twice")
        group[2].append(ref.feature)
    versions_per_view: dict[str, int] = {}
    pins = {(r.view, r.version) for r in map(parse_reference, asked)} | set(groups)
    for name, _ in pins:
        versions_per_view[name] = versions_per_view.get(name, 0) + 1
    for (name, pin), (view, version, features) in groups.items():
        prefix = f"{name}_v{pin}" if pin is not None and versions_per_view[name] > 1 else name
        outputs = tuple(f"{prefix}__{f}" if full_feature_names else f for f in features)
        for output in outputs:
            if output in taken:
                raise FeatureReferenceError(
                    f"features of {taken[output]!r} and {view.label} would both be returned as "
                    f"column {output!r}"
                    + ("" if full_feature_names else "; pass full_feature_names=True")
                )
            taken[output] = view.name
        yield (name, pin), view, version, tuple(features), outputs


class OnDemandRetrievalJob(RetrievalJob):
    """A retrieval job whose on-demand columns are computed batch by batch (module doc)."""

    def __init__(
        self,
        inner: RetrievalJob,
        parts: Sequence[OnDemandPart],
        hidden: Sequence[str],
        plain_features: Sequence[str],
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.inner = inner
        self.parts = list(parts)
        self.hidden = set(hidden)
        self.feature_columns = [*plain_features, *(o for p in self.parts for o in p.outputs)]
        self.batch_rows = batch_rows

    def _batches(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        reader = self.inner.to_batches(self.batch_rows)
        schema = self._output_schema(reader.schema)
        return schema, (self._apply(batch, schema) for batch in reader)

    def _output_schema(self, joined: pa.Schema) -> pa.Schema:
        for part in self.parts:
            for name, dtype in part.view.inputs.items():
                column = dict(part.inputs)[name]
                if joined.get_field_index(column) < 0:
                    raise EntityFrameError(
                        f"the entity frame lacks request column {column!r} ({dtype.name}), which "
                        f"{part.transform.label} needs; it has {[n for n in joined.names if n not in self.hidden]}"
                    )
        fields = [f for f in joined if f.name not in self.hidden]
        for part in self.parts:
            types = dict(zip(part.transform.outputs, part.transform.output_types, strict=True))
            fields += [
                pa.field(o, types[f].to_arrow())
                for f, o in zip(part.features, part.outputs, strict=True)
            ]
        return pa.schema(fields)

    def _apply(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        columns = {n: batch.column(i) for i, n in enumerate(batch.schema.names)}
        for part in self.parts:
            transform = part.transform
            arrays = []
            for name, column in part.inputs:
                dtype = transform.inputs[name].to_arrow()
                try:
                    arrays.append(columns[column].cast(dtype))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise EntityFrameError(
                        f"entity frame column {column!r} ({columns[column].type}) cannot be read "
                        f"as {transform.inputs[name].name}, which {transform.label} needs: {exc}"
                    ) from None
            table = pa.Table.from_arrays(arrays, schema=transform.input_types)
            results = dict(zip(transform.outputs, transform.run_table(table), strict=True))
            for feature, output in zip(part.features, part.outputs, strict=True):
                columns[output] = results[feature]
        return pa.RecordBatch.from_arrays([columns[n] for n in schema.names], schema=schema)

    def to_batches(self, rows: int) -> pa.RecordBatchReader:
        self.batch_rows = rows
        schema, batches = self._batches()
        return pa.RecordBatchReader.from_batches(schema, batches)

    def to_arrow(self) -> pa.Table:
        schema, batches = self._batches()
        return pa.Table.from_batches(list(batches), schema=schema)

    def to_pandas(self) -> pd.DataFrame:
        table = self.to_arrow()
        frame: pd.DataFrame = table.to_pandas()
        for name in self.feature_columns:
            arrow_type = table.schema.field(name).type
            nullable = _NULLABLE.get(arrow_type)
            if nullable is not None:
                frame[name] = table.column(name).to_pandas(types_mapper={arrow_type: nullable}.get)
        return frame

    def to_polars(self) -> pl.DataFrame:
        return pl.DataFrame(self.to_arrow())

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        schema, batches = self._batches()
        with pq.ParquetWriter(os.fspath(path), schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
