"""Feature definitions: versioned Python objects applied to the registry."""

from featurestore.definitions.aggregation import Aggregation
from featurestore.definitions.base import Definition, canonical_json, content_hash
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature_service import FeatureService
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.definitions.field import Field
from featurestore.definitions.on_demand import (
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions.policy import Policy, Resource
from featurestore.definitions.sources import FileSource, PushSource, SparkSource
from featurestore.definitions.stream_source import StreamSource

__all__ = [
    "Aggregation",
    "Definition",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "Policy",
    "PushSource",
    "RequestSource",
    "Resource",
    "SparkSource",
    "StreamSource",
    "canonical_json",
    "content_hash",
    "on_demand_feature_view",
]
