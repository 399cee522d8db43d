"""Definitions rebuilt from the registry's stored rows (the SQL registry's reading half)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Row

from featurestore.definitions import Entity, FeatureService, FeatureView, Policy
from featurestore.definitions.base import Definition
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.registry.plan import StoredObject, label


def as_data(record: StoredObject) -> dict[str, Any]:
    """A stored object in the shape of ``Definition.to_dict()``."""
    return {"kind": record.kind, "name": record.name, "spec": record.spec, "meta": record.meta}


def live_objects(state: Sequence[StoredObject]) -> Mapping[tuple[str, str], Definition]:
    """The live (not deleted) stored objects, rebuilt, by ``(kind, name)``."""
    views = views_of(state)
    return {(s.kind, s.name): rebuild(as_data(s), views, s.version) for s in state if not s.deleted}


def views_of(state: Sequence[StoredObject]) -> dict[str, FeatureView | OnDemandFeatureView]:
    """Every view (feature views and on-demand views) at its current version, for resolving
    feature services.

    Deleted views come back at their last version, so that old service versions still load.
    """
    return {
        s.name: cast(FeatureView | OnDemandFeatureView, rebuild(as_data(s), {}, s.version))
        for s in state
        if s.kind in ("feature_view", "on_demand_feature_view")
    }


def rebuild(
    data: dict[str, Any],
    views: Mapping[str, FeatureView | OnDemandFeatureView],
    version: int,
) -> Definition:
    """A definition from its stored dictionaries."""
    try:
        if data["kind"] == "entity":
            return Entity.from_dict(data)
        if data["kind"] == "feature_view":
            return FeatureView.from_dict(data)
        if data["kind"] == "policy":
            return Policy.from_dict(data)
        if data["kind"] == "on_demand_feature_view":
            return OnDemandFeatureView.from_dict(data)
        return FeatureService.from_dict(data, views)
    except (FeatureStoreError, KeyError, TypeError, ValueError) as exc:
        raise RegistryError(
            f"the stored {label(data['kind'], data['name'])} v{version} cannot be rebuilt: {exc}"
        ) from exc


def rebuild_version(
    kind: str,
    name: str,
    row: Row[Any],
    stored: Row[Any, Any, Any],
    views: Mapping[str, FeatureView | OnDemandFeatureView],
) -> Definition:
    """The definition of one stored version (``stored``, a registry row of ``object_versions``)
    of the object whose ``objects`` row is ``row``."""
    # The current version carries the latest metadata; older ones keep what they had.
    meta = row.meta_json if stored.version == row.current_version else stored.meta_json
    data = {
        "kind": kind,
        "name": name,
        "spec": json.loads(stored.spec_json),
        "meta": json.loads(meta),
    }
    return rebuild(data, views, int(stored.version))
