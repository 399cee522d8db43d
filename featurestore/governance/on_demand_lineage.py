"""Lineage of on-demand feature views: each input view version feeds the on-demand version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.governance.lineage import LineageEdge, LineageNode


def on_demand_edges(view: Any, version: int, view_versions: Mapping[str, int]) -> list[LineageEdge]:
    """``feature_view:src@N -> on_demand_feature_view:name@M`` (relation ``feeds``) for the
    current version of every source view, with the features read; request sources become
    ``request_source`` nodes."""
    assert isinstance(view, OnDemandFeatureView)
    node = LineageNode("on_demand_feature_view", view.name, version)
    edges = [
        LineageEdge(
            LineageNode("feature_view", name, view_versions[name]),
            node,
            "feeds",
            detail={"features": [f.name for f in fields]},
        )
        for name, fields in view.view_sources.items()
        if name in view_versions
    ]
    edges += [
        LineageEdge(
            LineageNode("request_source", r.name),
            node,
            "feeds",
            detail={"fields": [f.name for f in r.schema]},
        )
        for r in view.request_sources
    ]
    return edges
