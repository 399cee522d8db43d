"""On-demand feature views: features computed by a function, the same code offline and online.

::

    ride = RequestSource(name="ride", schema=[Field(name="distance_km", dtype=Float64)])

    @on_demand_feature_view(sources=[driver_stats, ride],
                            schema=[Field(name="pickup_eta_min", dtype=Float64)])
    def ride_features(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame()
        out["pickup_eta_min"] = inputs["distance_km"] / inputs["avg_speed"] * 60
        return out

The function sees one column per input: every feature of each source view (or the features of a
projection, ``view[["a", "b"]]``) under its feature name, and every field of each request source.
``mode="pandas"`` (default) gets a DataFrame and returns one with exactly the schema's columns
and as many rows; ``mode="python"`` gets one row as a dict and returns a dict (the fast path for
single-row online lookups). The function's normalized code (see :mod:`featurestore.transform.code`),
its inputs and its schema make the content hash: changing the code makes a new version, and the
registry keeps every version's code, so ``ride_features@1:pickup_eta_min`` runs version 1's code.
Source views are read at their current version.

With ``write_to_online_store=True`` (Feast's name) the view is computed at *write* time: when
rows of a source view are materialized or pushed, the function runs on them (and on the stored
values of the other source views for the same keys) and its outputs are stored online under the
view's own name and version, as :class:`WriteTimeStorage` describes. Such a view reads only
feature views, all keyed by the same join keys, none of them aggregated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from featurestore.definitions.base import Definition, check_name
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.definitions.field import Field
from featurestore.errors import DefinitionError, did_you_mean
from featurestore.transform.code import FunctionCode, capture
from featurestore.types import ValueType

Mode = Literal["pandas", "python"]
_MODES = ("pandas", "python")


class RequestSource:
    """Values that exist only at request time (online: in the entity rows; offline: columns of
    the entity frame), e.g. ``RequestSource(name="ride", schema=[Field(name="distance_km",
    dtype=Float64)])``."""

    def __init__(self, *, name: str, schema: Sequence[Field], description: str = "") -> None:
        self.name = check_name("request source", name)
        fields = list(schema)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise DefinitionError(
                f"request source {name!r}: schema must be a non-empty list of Field objects"
            )
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise DefinitionError(f"request source {name!r}: a field appears twice in {names}")
        self.schema = fields
        self.description = description

    def spec(self) -> dict[str, Any]:
        return {"request": self.name, "fields": [f.spec() for f in self.schema]}

    def __repr__(self) -> str:
        return f"RequestSource(name={self.name!r}, fields={[f.name for f in self.schema]})"


class OnDemandFeatureView(Definition):
    """Features computed from other views' features and request values; see the module doc.

    Built by :func:`on_demand_feature_view`, or from the registry's stored code
    (:meth:`from_dict`).
    """

    kind: ClassVar[str] = "on_demand_feature_view"

    def __init__(
        self,
        *,
        name: str,
        sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
        schema: Sequence[Field],
        code: FunctionCode,
        mode: str = "pandas",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
        view_inputs: Mapping[str, Sequence[Field]] | None = None,
        write_to_online_store: bool = False,
    ) -> None:
        self.name = check_name("on-demand feature view", name)
        label = self.label
        self._init_metadata(description, tags, owner)
        if mode not in _MODES:
            raise DefinitionError(f"{label}: mode must be one of {list(_MODES)}, got {mode!r}")
        self.mode: Mode = mode  # type: ignore[assignment]
        self.code = code
        if not isinstance(write_to_online_store, bool):
            raise DefinitionError(
                f"{label}: write_to_online_store must be True or False, "
                f"got {write_to_online_store!r}"
            )
        self.write_to_online_store = write_to_online_store
        # Source views by name with the features read from each; request sources by name.
        self.view_sources: dict[str, list[Field]] = {}
        self.request_sources: list[RequestSource] = []
        for source in sources:
            if isinstance(source, OnDemandFeatureView) or (
                isinstance(source, FeatureViewProjection)
                and isinstance(source.view, OnDemandFeatureView)
            ):
                named = source.name if isinstance(source, OnDemandFeatureView) else source.view.name
                raise DefinitionError(
                    f"{label}: on-demand view {named!r} cannot be a source; list the "
                    "feature views it reads instead"
                )
            if isinstance(source, FeatureView):
                source = FeatureViewProjection(source, None)
            if isinstance(source, FeatureViewProjection):
                if write_to_online_store and isinstance(source.view, FeatureView):
                    _check_write_time_source(label, source.view, _source_views(sources)[0])
                if source.view.name in self.view_sources:
                    raise DefinitionError(f"{label}: lists view {source.view.name!r} twice")
                fields = [source.view.feature(f) for f in source.feature_names]
                self.view_sources[source.view.name] = fields
            elif isinstance(source, RequestSource):
                self.request_sources.append(source)
            else:
                raise DefinitionError(
                    f"{label}: sources must be feature views, projections or RequestSource "
                    f"objects, got {source!r}"
                )
        for view_name, declared in (view_inputs or {}).items():
            self.view_sources[view_name] = list(declared)
        if not self.view_sources and not self.request_sources:
            raise DefinitionError(f"{label}: lists no source")
        if write_to_online_store and self.request_sources:
            raise DefinitionError(
                f"{label}: write_to_online_store=True computes the features when source rows "
                f"are written, but request source {self.request_sources[0].name!r} has values "
                "only at lookup time; drop the request source or compute at request time "
                "(write_to_online_store=False)"
            )
        if self.name in self.view_sources:
            raise DefinitionError(f"{label} depends on itself (a source has its name)")
        self.inputs = self._check_inputs(label)
        self.schema: list[Field] = list(schema)
        if not self.schema or not all(isinstance(f, Field) for f in self.schema):
            raise DefinitionError(f"{label}: schema must be a non-empty list of Field objects")
        names = [f.name for f in self.schema]
        if len(set(names)) != len(names):
            raise DefinitionError(f"{label}: a field appears twice in the schema {names}")
        self._function: Callable[..., Any] | None = None

    def _check_inputs(self, label: str) -> dict[str, ValueType]:
        inputs: dict[str, ValueType] = {}
        owners: dict[str, str] = {}
        named = [(v, f) for v, fields in self.view_sources.items() for f in fields]
        named += [(r.name, f) for r in self.request_sources for f in r.schema]
        for owner, item in named:
            if item.name in inputs:
                raise DefinitionError(
                    f"{label}: input {item.name!r} comes from both {owners[item.name]!r} and "
                    f"{owner!r}; project one of them away (view[['...']])"
                )
            inputs[item.name] = item.dtype
            owners[item.name] = owner
        return inputs

    @property
    def label(self) -> str:
        return f"on-demand feature view {self.name!r}"

    # -- what the view reads and serves --------------------------------------------------------

    @property
    def features(self) -> list[Field]:
        return list(self.schema)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.schema]

    def feature(self, name: str) -> Field:
        for item in self.schema:
            if item.name == name:
                return item
        raise DefinitionError(
            f"{self.label} has no feature {name!r}; it has {self.feature_names}"
            f"{did_you_mean(name, self.feature_names)}"
        )

    @property
    def request_fields(self) -> list[Field]:
        """The request-time inputs, from every request source."""
        return [f for r in self.request_sources for f in r.schema]

    def input_references(self) -> list[str]:
        """``view:feature`` for every view feature the function reads."""
        return [f"{v}:{f.name}" for v, fields in self.view_sources.items() for f in fields]

    def function(self) -> Callable[..., Any]:
        """The function, loaded from the stored code (once per object)."""
        if self._function is None:
            self._function = self.code.load(self.label)
        return self._function

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        raise DefinitionError(f"{self.label}: projections of on-demand views are not supported")

    # -- serialization -------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        # The flag is part of the content hash, but only when set, so request-time views keep
        # the hash (and version) they had before write-time views existed.
        written = {"write_to_online_store": True} if self.write_to_online_store else {}
        return {
            **written,
            "mode": self.mode,
            "sources": [
                {"view": v, "features": [f.spec() for f in fields]}
                for v, fields in self.view_sources.items()
            ]
            + [r.spec() for r in self.request_sources],
            "features": [f.spec() for f in self.schema],
            "code": self.code.spec(),
        }

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "fields": {f.name: f.meta() for f in self.schema}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OnDemandFeatureView:
        """Rebuild from :meth:`to_dict` output; the function comes from the stored code."""
        spec, meta = data["spec"], data.get("meta", {})
        field_meta = meta.get("fields", {})
        views: dict[str, list[Field]] = {}
        requests: list[RequestSource] = []
        for source in spec["sources"]:
            if "view" in source:
                views[source["view"]] = [Field.from_dicts(f, None) for f in source["features"]]
            else:
                fields = [Field.from_dicts(f, None) for f in source["fields"]]
                requests.append(RequestSource(name=source["request"], schema=fields))
        return cls(
            name=data["name"],
            sources=requests,
            view_inputs=views,
            schema=[Field.from_dicts(f, field_meta.get(f["name"])) for f in spec["features"]],
            code=FunctionCode.from_spec(spec["code"]),
            mode=spec["mode"],
            write_to_online_store=spec.get("write_to_online_store", False),
            description=meta.get("description", ""),
            tags=meta.get("tags"),
            owner=meta.get("owner", ""),
        )


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
    schema: Sequence[Field],
    mode: str = "pandas",
    description: str = "",
    tags: Mapping[str, str] | None = None,
    owner: str = "",
    write_to_online_store: bool = False,
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Decorator making an :class:`OnDemandFeatureView` named after the function::

    @on_demand_feature_view(sources=[driver_stats, ride], mode="python",
                            schema=[Field(name="eta_min", dtype=Float64)])
    def ride_features(row: dict) -> dict:
        return {"eta_min": row["distance_km"] / row["avg_speed"] * 60}

    ``write_to_online_store=True`` computes and stores the features when source rows are
    written (materialization, push) instead of at lookup; see the module doc.
    """

    def wrap(function: Callable[..., Any]) -> OnDemandFeatureView:
        name = getattr(function, "__name__", "?")
        code = capture(function, f"on-demand feature view {name!r}")
        view = OnDemandFeatureView(
            name=name,
            sources=sources,
            schema=schema,
            code=code,
            mode=mode,
            description=description,
            tags=tags,
            owner=owner,
            write_to_online_store=write_to_online_store,
        )
        return view

    return wrap


def _source_views(
    sources: Sequence[FeatureView | FeatureViewProjection | RequestSource],
) -> list[FeatureView]:
    views = []
    for source in sources:
        view = source.view if isinstance(source, FeatureViewProjection) else source
        if isinstance(view, FeatureView):
            views.append(view)
    return views


def _check_write_time_source(label: str, view: FeatureView, first: FeatureView) -> None:
    """A write-time view's source views share their join keys (one stored row per key) and
    are plain (an aggregation's value depends on the lookup instant, not on a write)."""
    if view.is_aggregated:
        raise DefinitionError(
            f"{label}: write_to_online_store=True cannot read aggregated {view.label}: its "
            "values change with the lookup instant, not only when rows are written"
        )
    if not view.online:
        raise DefinitionError(
            f"{label}: write_to_online_store=True reads its inputs from the online store, but "
            f"{view.label} is not served online (online=False)"
        )
    if view.join_keys != first.join_keys:
        raise DefinitionError(
            f"{label}: write_to_online_store=True needs source views keyed alike (one stored "
            f"row per key), but {first.label} has join keys {first.join_keys} and "
            f"{view.label} {view.join_keys}"
        )


class WriteTimeStorage(FeatureView):
    """Where a write-time on-demand view's values live online: a feature view named after it
    (kind ``on_demand_feature_view``, so access policies and audit records name the on-demand
    view), keyed and sourced like its first source view, with the view's schema as features.

    Its TTL is the smallest TTL of the source views and its retention the shortest retention
    among them (None: the project default), so a derived value is never kept or served longer
    than the data it comes from. ``inputs`` are the source views (current versions) and the
    features read from each: reading the stored values needs the right to read those too.
    """

    kind: ClassVar[str] = "on_demand_feature_view"

    def __init__(self, view: OnDemandFeatureView, sources: Sequence[FeatureView]) -> None:
        first = sources[0]
        keys = [Field(name=k, dtype=t) for k, t in first.join_key_types.items() if t is not None]
        ttls = [s.ttl for s in sources if s.ttl is not None]
        kept = [s.retention for s in sources if s.retention is not None]
        super().__init__(
            name=view.name,
            source=first.source,
            schema=keys + list(view.schema),
            entities=first.entities,
            ttl=min(ttls, default=None),
            retention=min(kept, default=None),
            description=view.description,
            tags=view.tags,
            owner=view.owner,
        )
        self.on_demand = view
        by_name = {s.name: s for s in sources}
        self.inputs = [(by_name[n], [f.name for f in fs]) for n, fs in view.view_sources.items()]
