"""Feature services: a named set of features that one model consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from featurestore.definitions.base import Definition, check_name
from featurestore.definitions.feature_view import FeatureView, FeatureViewProjection
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import DefinitionError

#: What a service lists: views (feature views and on-demand views) or projections of them.
ServiceItem = FeatureView | OnDemandFeatureView | FeatureViewProjection


class FeatureService(Definition):
    """The features a model needs, from whole views or projections::

        FeatureService(name="driver_model", features=[driver_stats, customer[["age"]], trip_fit])

    A whole view follows the view: features added to it later are served too. On-demand views
    (request-time and write-time) are listed whole; their request values come with the entity
    rows (online) or the entity frame (offline), as for references to them.
    """

    kind: ClassVar[str] = "feature_service"

    def __init__(
        self,
        *,
        name: str,
        features: Sequence[ServiceItem],
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("feature service", name)
        self._init_metadata(description, tags, owner)
        projections: list[FeatureViewProjection] = []
        for item in features:
            if isinstance(item, FeatureView | OnDemandFeatureView):
                projections.append(FeatureViewProjection(item, None))
            elif isinstance(item, FeatureViewProjection):
                projections.append(item)
            else:
                raise DefinitionError(
                    f"feature service {name!r}: features must be feature views, on-demand "
                    f"views or projections (view[['f1']]), got {item!r}"
                )
        if not projections:
            raise DefinitionError(f"feature service {name!r}: lists no feature")
        views = [p.view.name for p in projections]
        if len(set(views)) != len(views):
            raise DefinitionError(f"feature service {name!r}: lists a view twice ({views})")
        self.projections = projections

    def spec(self) -> dict[str, Any]:
        return {"projections": [p.spec() for p in self.projections]}

    @property
    def view_names(self) -> list[str]:
        return [p.view.name for p in self.projections]

    def feature_refs(self) -> list[str]:
        """``view:feature`` references, resolved against the views the service was built from."""
        return [f"{p.view.name}:{f}" for p in self.projections for f in p.feature_names]

    def projection_specs(self) -> list[dict[str, Any]]:
        return [p.spec() for p in self.projections]

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], views: Mapping[str, FeatureView | OnDemandFeatureView]
    ) -> FeatureService:
        """Rebuild a service from :meth:`to_dict` output; ``views`` resolves view names
        (feature views and on-demand views)."""
        meta = data.get("meta", {})
        items: list[ServiceItem] = []
        for proj in data["spec"]["projections"]:
            view = views.get(proj["view"])
            if view is None:
                raise DefinitionError(
                    f"feature service {data['name']!r} uses feature view {proj['view']!r}, "
                    "which is not registered"
                )
            items.append(
                view if proj["features"] is None else FeatureViewProjection(view, proj["features"])
            )
        return cls(
            name=data["name"],
            features=items,
            description=meta.get("description", ""),
            tags=meta.get("tags"),
            owner=meta.get("owner", ""),
        )
