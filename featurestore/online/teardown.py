"""The facade's teardown: a project's online data removed, with what recorded how full it was.

:class:`~featurestore.FeatureStore` mixes this class in (see :mod:`featurestore.facade_base`).
"""

from __future__ import annotations

from featurestore.facade_base import FacadeBase
from featurestore.governance.access import project_target
from featurestore.online.freshness import forget_freshness


class TeardownOperations(FacadeBase):
    """Removing the project from the online store."""

    def teardown(self) -> int:
        """Remove the project's online data, its watermarks (so the next incremental run fills
        the store again) and its recorded freshness; returns how many keys were removed. Needs
        ``delete`` on the project."""
        who = self.principal
        self.guard.require(who, "delete", [project_target(self.project)])
        removed = self.online.delete_project(self.project)
        self.registry.delete_watermarks(self.project, online_store=self.online.identity)
        forget_freshness(self.registry, self.project, self.online.identity)
        self.guard.record(who, "delete", f"project:{self.project}", "ok", {"online_keys": removed})
        return removed
