"""The registry: every version of every definition, on SQLite or PostgreSQL.

from featurestore.registry import open_registry
registry = open_registry("sqlite:////srv/repo/data/registry.db")
plan = registry.plan("demo", [driver, driver_stats], delete_missing=True)
print(plan.render())
registry.apply("demo", [driver, driver_stats], delete_missing=True)
"""

from featurestore.registry.base import HistoryEntry, Registry
from featurestore.registry.plan import ObjectChange, Plan
from featurestore.registry.sql import open_registry

__all__ = ["HistoryEntry", "ObjectChange", "Plan", "Registry", "open_registry"]
