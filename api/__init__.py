"""The REST service of featurestore (FastAPI): Feast-compatible online lookups, registry
browsing under ``/v1``, ``/health`` and ``/metrics``.

    from api import create_app
    app = create_app(FeatureStore(repo_path="repo"))
"""

from api.app import create_app
from api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
