"""The service's routers: online lookups, push, Feast's other write and materialize paths,
registry browsing, lineage, quality (drift and validation history), health and metrics."""

from api.routes.feast import router as feast_router
from api.routes.health import router as health_router
from api.routes.lineage import router as lineage_router
from api.routes.online import router as online_router
from api.routes.push import router as push_router
from api.routes.quality import router as quality_router
from api.routes.registry import router as registry_router

__all__ = [
    "feast_router",
    "health_router",
    "lineage_router",
    "online_router",
    "push_router",
    "quality_router",
    "registry_router",
]
