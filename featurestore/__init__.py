"""featurestore: define features once, train point-in-time correct, serve online, govern it all.

from featurestore import FeatureStore, Entity, FeatureView, Field, FileSource, FeatureService
from featurestore.types import Float32, Int64
"""

from featurestore.config import RepoConfig, load_config
from featurestore.definitions import (
    Aggregation,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    OnDemandFeatureView,
    Policy,
    PushSource,
    RequestSource,
    Resource,
    SparkSource,
    StreamSource,
    on_demand_feature_view,
)
from featurestore.errors import FeatureStoreError
from featurestore.offline.base import RetrievalJob, SavedDataset
from featurestore.push import PushMode
from featurestore.quality import DriftThresholds, Validation
from featurestore.registry import Plan
from featurestore.store import FeatureStore

__version__ = "0.1.0"

__all__ = [
    "Aggregation",
    "DriftThresholds",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "Plan",
    "Policy",
    "PushMode",
    "PushSource",
    "RepoConfig",
    "RequestSource",
    "Resource",
    "RetrievalJob",
    "SavedDataset",
    "SparkSource",
    "StreamSource",
    "Validation",
    "__version__",
    "load_config",
    "on_demand_feature_view",
]
