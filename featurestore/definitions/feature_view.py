"""Feature views: a set of features read from one source, keyed by entities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from featurestore.definitions.aggregation import Aggregation
from featurestore.definitions.base import Definition, check_name
from featurestore.definitions.entity import Entity
from featurestore.definitions.field import Field
from featurestore.definitions.sources import DataSource, FileSource, PushSource, source_from_dicts
from featurestore.errors import DefinitionError, did_you_mean
from featurestore.quality.validation import Validation
from featurestore.types import ValueType, from_name

if TYPE_CHECKING:  # a service's projection may be of an on-demand view, which imports this
    from featurestore.definitions.on_demand import OnDemandFeatureView


class FeatureView(Definition):
    """Features of one or more entities, read from a source, with an optional TTL.

    ``ttl`` bounds how old a value may be at retrieval time (``None`` or zero: no bound). A view
    with no entities is *global*: every entity row gets its latest value. Schema fields named like
    a join key declare that key's type and are not features.

    ``retention`` (a positive timedelta, or ``None`` for the project default) is how long the
    store keeps and serves the view's rows: rows whose event time is older than ``now -
    retention`` are never served, and ``featurestore retention enforce`` deletes them from the
    data the store owns. It is a governance setting, kept in :meth:`meta`: changing it applies
    to every version at once and makes no new version.

    ``validation`` (a :class:`~featurestore.quality.validation.Validation`) sets how the view's
    rows are checked at materialization and push: an optional Great Expectations suite over its
    features and a ``strict`` or ``warn`` mode. It is governance metadata too, kept in
    :meth:`meta` like ``retention``. So is ``freshness``, an objective for how old the view's
    newest online value may get (``featurestore status`` and ``/health`` report a breach)::

        FeatureView(name="driver_stats", entities=[driver], ttl=timedelta(hours=2),
                    schema=[Field(name="conv_rate", dtype=Float32)],
                    source=FileSource(path="data/driver_stats.parquet"),
                    validation=Validation("expectations/driver_stats.json", mode="strict"))

    With ``aggregations`` the view is *aggregated*: its source holds one row per event, its
    ``schema`` declares the source columns it aggregates (:attr:`columns`), and its features are
    the aggregations, each evaluated over a sliding window ending at the entity row's instant
    (see :class:`~featurestore.Aggregation`). ``event_id`` names a column that identifies an
    event: rows sharing a key and an event id count once (the first copy to arrive: least created
    time, then file or push order), so a replayed push does not double-count::

        FeatureView(name="driver_trip_stats", entities=[driver], source=trips,
                    schema=[Field(name="fare", dtype=Float64), Field(name="trip_id", dtype=Int64)],
                    aggregations=[Aggregation(column="fare", function="sum",
                                              window=timedelta(hours=1))],
                    event_id="trip_id")
    """

    kind: ClassVar[str] = "feature_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource,
        schema: Sequence[Field],
        entities: Sequence[Entity] = (),
        ttl: timedelta | None = None,
        online: bool = True,
        retention: timedelta | None = None,
        validation: Validation | None = None,
        freshness: timedelta | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
        aggregations: Sequence[Aggregation] | None = None,
        event_id: str | None = None,
    ) -> None:
        self.name = check_name("feature view", name)
        label = f"feature view {name!r}"
        if not isinstance(source, FileSource | PushSource):
            raise DefinitionError(
                f"{label}: source must be a FileSource or a PushSource, got {type(source).__name__}"
            )
        self.source = source
        self.entities = self._check_entities(label, entities)
        self.ttl = self._check_ttl(label, ttl)
        self.online = bool(online)
        self.retention = self._check_retention(label, retention)
        if freshness is not None and (
            not isinstance(freshness, timedelta) or freshness <= timedelta(0)
        ):
            raise DefinitionError(
                f"{label}: freshness must be a positive datetime.timedelta or None, "
                f"got {freshness!r}"
            )
        self.freshness = freshness
        self._init_metadata(description, tags, owner)
        self.schema = list(schema)
        self.columns, self.join_key_types = self._split_schema(label)
        self.aggregations = self._check_aggregations(label, aggregations)
        self.event_id = self._check_event_id(label, event_id)
        if self.aggregations and self.ttl is not None:
            raise DefinitionError(
                f"{label}: an aggregated view takes no ttl (each aggregation's window bounds "
                "the events it reads); remove ttl"
            )
        self.features = self._aggregated_features(label) if self.aggregations else self.columns
        # What the definition declares: the spec (and so the content hash) is made of these.
        self.declared_key_types: dict[str, ValueType | None] = dict(self.join_key_types)
        self.inferred_key_types: dict[str, ValueType] = {}
        if validation is not None and not isinstance(validation, Validation):
            raise DefinitionError(
                f"{label}: validation must be a Validation or None, got {type(validation).__name__}"
            )
        if validation is not None:
            validation.check_columns(label, self.feature_names)
        self.validation = validation

    @staticmethod
    def _check_entities(label: str, entities: Sequence[Entity]) -> list[Entity]:
        checked = list(entities)
        for entity in checked:
            if not isinstance(entity, Entity):
                raise DefinitionError(f"{label}: entities must be Entity objects, got {entity!r}")
        names = [e.name for e in checked]
        if len(set(names)) != len(names):
            raise DefinitionError(f"{label}: entity listed twice in {names}")
        keys = [k for e in checked for k in e.join_keys]
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"{label}: entities {names} share a join key name ({keys})")
        return checked

    @staticmethod
    def _check_ttl(label: str, ttl: timedelta | None) -> timedelta | None:
        if ttl is None:
            return None
        if not isinstance(ttl, timedelta):
            raise DefinitionError(f"{label}: ttl must be a datetime.timedelta or None, got {ttl!r}")
        if ttl < timedelta(0):
            raise DefinitionError(f"{label}: ttl must not be negative, got {ttl}")
        return ttl if ttl > timedelta(0) else None

    @staticmethod
    def _check_retention(label: str, retention: timedelta | None) -> timedelta | None:
        if retention is None:
            return None
        if not isinstance(retention, timedelta) or retention <= timedelta(0):
            raise DefinitionError(
                f"{label}: retention must be a positive datetime.timedelta or None (the project "
                f"default), got {retention!r}"
            )
        return retention

    def _check_aggregations(
        self, label: str, aggregations: Sequence[Aggregation] | None
    ) -> list[Aggregation]:
        checked = list(aggregations or [])
        for agg in checked:
            if not isinstance(agg, Aggregation):
                raise DefinitionError(
                    f"{label}: aggregations must be Aggregation objects, got {agg!r}"
                )
        names = [agg.name for agg in checked]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DefinitionError(
                f"{label}: aggregation name {twice[0]!r} is used twice; give one of them "
                "another name=..."
            )
        return checked

    def _check_event_id(self, label: str, event_id: str | None) -> str | None:
        if event_id is None:
            return None
        if not self.aggregations:
            raise DefinitionError(
                f"{label}: event_id is for aggregated views (it deduplicates events); this view "
                "has no aggregations"
            )
        if event_id not in {c.name for c in self.columns}:
            raise DefinitionError(
                f"{label}: event_id {event_id!r} is not a column of the schema "
                f"({[c.name for c in self.columns]}); declare it with a Field"
            )
        return event_id

    def _aggregated_features(self, label: str) -> list[Field]:
        columns = {c.name: c for c in self.columns}
        features = []
        for agg in self.aggregations:
            if agg.column not in columns:
                raise DefinitionError(
                    f"{label}, aggregation {agg.name!r}: column {agg.column!r} is not in the "
                    f"schema ({list(columns)}){did_you_mean(agg.column, columns)}; declare it "
                    "with a Field"
                )
            dtype = agg.check_column_type(label, columns[agg.column].dtype)
            features.append(Field(name=agg.name, dtype=dtype))
        used = {agg.column for agg in self.aggregations} | {self.event_id}
        plain = [name for name in columns if name not in used]
        if plain:
            raise DefinitionError(
                f"{label}: a view is either plain or aggregated, and this one mixes both: "
                f"{plain} would be plain features beside its aggregations; aggregate them, "
                "or serve them from a separate plain view"
            )
        return features

    def _split_schema(self, label: str) -> tuple[list[Field], dict[str, ValueType | None]]:
        key_types: dict[str, ValueType | None] = {}
        for entity in self.entities:
            key_types.update(entity.join_key_types)
        features: list[Field] = []
        seen: set[str] = set()
        for item in self.schema:
            if not isinstance(item, Field):
                raise DefinitionError(
                    f"{label}: schema entries must be Field objects, got {item!r}"
                )
            if item.name in seen:
                raise DefinitionError(f"{label}: field {item.name!r} appears twice in the schema")
            seen.add(item.name)
            reserved = {self.source.timestamp_field, self.source.created_timestamp_column}
            if item.name in reserved:
                raise DefinitionError(
                    f"{label}: field {item.name!r} is the source's timestamp column, not a feature"
                )
            if item.name in key_types:
                declared = key_types[item.name]
                if declared is not None and declared != item.dtype:
                    raise DefinitionError(
                        f"{label}: join key {item.name!r} is {declared.name} in its entity "
                        f"but {item.dtype.name} in the schema"
                    )
                key_types[item.name] = item.dtype
            else:
                features.append(item)
        if not features:
            raise DefinitionError(f"{label}: the schema declares no feature")
        return features, key_types

    def record_inferred_key_types(self, types: Mapping[str, ValueType]) -> None:
        """Type undeclared join keys with the types inferred from the source (at apply).

        ``join_key_types`` then holds them as if declared, so lookups encode keys without
        inspecting each request; they live in :meth:`meta`, so a repository that declares no
        key type keeps its content hash and version.
        """
        for key, dtype in types.items():
            if self.declared_key_types.get(key, dtype) is not None:
                raise DefinitionError(
                    f"{self.label}: cannot infer a type for {key!r}, which is not an "
                    f"undeclared join key (join keys: {self.declared_key_types})"
                )
        self.inferred_key_types = dict(types)
        self.join_key_types = {
            key: declared if declared is not None else self.inferred_key_types.get(key)
            for key, declared in self.declared_key_types.items()
        }

    @property
    def join_keys(self) -> list[str]:
        """Join keys of all entities, in declaration order."""
        return list(self.join_key_types)

    @property
    def is_aggregated(self) -> bool:
        """Whether the view's features are windowed aggregations of its source's events."""
        return bool(self.aggregations)

    @property
    def aggregation_of(self) -> dict[str, Aggregation]:
        """The view's aggregations by feature name (empty for a plain view)."""
        return {agg.name: agg for agg in self.aggregations}

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Field:
        """The feature called ``name``, or a :class:`FeatureReferenceError`-style DefinitionError."""
        for f in self.features:
            if f.name == name:
                return f
        raise DefinitionError(
            f"{self.label} has no feature {name!r}; it has {self.feature_names}"
            f"{did_you_mean(name, self.feature_names)}"
        )

    def column(self, name: str) -> Field:
        """The declared source column ``name`` (an aggregated view's input; a plain view's
        columns are its features)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise DefinitionError(
            f"{self.label} declares no column {name!r}; it has {[c.name for c in self.columns]}"
        )

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        """A projection of some features, for a FeatureService: ``view[["f1", "f2"]]``."""
        if isinstance(features, str):
            features = [features]
        for name in features:
            self.feature(name)
        return FeatureViewProjection(self, list(features))

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "entities": [{"name": e.name, **e.spec()} for e in self.entities],
            "join_keys": [
                {"name": k, "dtype": None if t is None else t.name}
                for k, t in self.declared_key_types.items()
            ],
            "features": [f.spec() for f in self.features],
            "source": self.source.spec(),
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
        }
        # Only for aggregated views, so plain views keep their content hash.
        if self.aggregations:
            spec["columns"] = [c.spec() for c in self.columns]
            spec["aggregations"] = [agg.spec() for agg in self.aggregations]
            spec["event_id"] = self.event_id
        return spec

    def meta(self) -> dict[str, Any]:
        meta = {
            **super().meta(),
            "online": self.online,
            "source": self.source.meta(),
            "fields": {f.name: f.meta() for f in self.schema},
        }
        # Only when set, so views registered before retention existed keep their meta hash.
        if self.retention is not None:
            meta["retention_seconds"] = self.retention.total_seconds()
        if self.validation is not None:
            meta["validation"] = self.validation.to_dict()
        if self.freshness is not None:
            meta["freshness_seconds"] = self.freshness.total_seconds()
        if self.inferred_key_types:
            meta["inferred_key_types"] = {k: t.name for k, t in self.inferred_key_types.items()}
        return meta

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureView:
        """Rebuild a view from :meth:`to_dict` output."""
        spec, meta = data["spec"], data.get("meta", {})
        entities = [
            Entity.from_dict({"name": e["name"], "spec": {"join_keys": e["join_keys"]}})
            for e in spec["entities"]
        ]
        field_meta = meta.get("fields", {})
        key_fields = [
            Field.from_dicts(k, field_meta.get(k["name"]))
            for k in spec["join_keys"]
            if k["dtype"] is not None and k["name"] in field_meta
        ]
        ttl = spec.get("ttl_seconds")
        columns = spec["columns"] if "aggregations" in spec else spec["features"]
        retention = meta.get("retention_seconds")
        validation = meta.get("validation")
        freshness = meta.get("freshness_seconds")
        view = cls(
            name=data["name"],
            entities=entities,
            schema=key_fields + [Field.from_dicts(f, field_meta.get(f["name"])) for f in columns],
            source=source_from_dicts(spec["source"], meta.get("source")),
            ttl=None if ttl is None else timedelta(seconds=ttl),
            online=meta.get("online", True),
            retention=None if retention is None else timedelta(seconds=retention),
            validation=None if validation is None else Validation.from_dict(validation),
            freshness=None if freshness is None else timedelta(seconds=freshness),
            description=meta.get("description", ""),
            tags=meta.get("tags"),
            owner=meta.get("owner", ""),
            aggregations=[Aggregation.from_spec(a) for a in spec.get("aggregations", [])],
            event_id=spec.get("event_id"),
        )
        inferred = meta.get("inferred_key_types")
        if inferred:  # absent in rows applied before key types were inferred
            view.record_inferred_key_types({k: from_name(t) for k, t in inferred.items()})
        return view


class FeatureViewProjection:
    """Some features of one view, as used by a :class:`FeatureService`."""

    def __init__(
        self, view: FeatureView | OnDemandFeatureView, features: list[str] | None = None
    ) -> None:
        self.view = view
        self.features = features

    @property
    def feature_names(self) -> list[str]:
        return list(self.features) if self.features is not None else self.view.feature_names

    def spec(self) -> dict[str, Any]:
        return {"view": self.view.name, "features": self.features}

    def __repr__(self) -> str:
        return f"{self.view.name}[{self.feature_names}]"
