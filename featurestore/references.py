"""Feature references: ``"view:feature"`` and version-pinned ``"view@2:feature"``.

Parsing is pure; :func:`resolve_requests` turns references into the per-view requests the offline
engine joins, deciding output column names and rejecting clashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import FeatureReferenceError, did_you_mean
from featurestore.offline.base import FeatureRequest

_REF = re.compile(
    r"^(?P<view>[A-Za-z_][A-Za-z0-9_\-]*)(?:@(?P<version>[0-9]+))?:(?P<feature>[A-Za-z_][A-Za-z0-9_\-]*)$"
)

#: Looks up a view definition by name and optional pinned version.
ViewLookup = Callable[[str, int | None], FeatureView]


@dataclass(frozen=True)
class FeatureRef:
    """A parsed reference: view name, optional pinned version, feature name."""

    view: str
    version: int | None
    feature: str

    def __str__(self) -> str:
        pin = "" if self.version is None else f"@{self.version}"
        return f"{self.view}{pin}:{self.feature}"


def parse_reference(text: str) -> FeatureRef:
    """Parse ``"view:feature"`` or ``"view@N:feature"``."""
    if not isinstance(text, str):
        raise FeatureReferenceError(
            f"feature reference {text!r} must be a string like 'view:feature'"
        )
    match = _REF.match(text.strip())
    if match is None:
        raise FeatureReferenceError(
            f"feature reference {text!r} is malformed: use 'view:feature' or 'view@VERSION:feature'"
        )
    version = match.group("version")
    if version is not None and int(version) < 1:
        raise FeatureReferenceError(f"feature reference {text!r}: versions start at 1")
    return FeatureRef(
        match.group("view"), None if version is None else int(version), match.group("feature")
    )


def resolve_requests(
    references: Sequence[str], lookup: ViewLookup, *, full_feature_names: bool
) -> list[FeatureRequest]:
    """Group references by view (and version), check features exist, and name the output columns.

    Output names are the feature names, or ``view__feature`` with ``full_feature_names`` (and
    ``view_vN__feature`` for a pinned version when the same view is asked at another); two
    references that would produce the same column are an error that names both.
    """
    if isinstance(references, str):
        raise FeatureReferenceError(
            "features must be a list of references, e.g. ['driver_stats:conv_rate']"
        )
    if not references:
        raise FeatureReferenceError(
            "no features requested: pass at least one 'view:feature' reference"
        )
    grouped: dict[tuple[str, int | None], list[str]] = {}
    for ref in map(parse_reference, references):
        features = grouped.setdefault((ref.view, ref.version), [])
        if ref.feature in features:
            raise FeatureReferenceError(f"feature reference {ref} is requested twice")
        features.append(ref.feature)

    versions_per_view: dict[str, int] = {}
    for view_name, _ in grouped:
        versions_per_view[view_name] = versions_per_view.get(view_name, 0) + 1
    owners: dict[str, str] = {}
    requests: list[FeatureRequest] = []
    for (view_name, version), features in grouped.items():
        view = lookup(view_name, version)
        for name in features:
            if name not in view.feature_names:
                raise FeatureReferenceError(
                    f"feature view {view_name!r} has no feature {name!r}; it has "
                    f"{view.feature_names}{did_you_mean(name, view.feature_names)}",
                    missing="feature",
                )
        # One view asked at two versions needs the version in the column name to stay apart.
        prefix = view_name
        if version is not None and versions_per_view[view_name] > 1:
            prefix = f"{view_name}_v{version}"
        outputs = [f"{prefix}__{f}" if full_feature_names else f for f in features]
        for feature, output in zip(features, outputs, strict=True):
            pin = "" if version is None else f"@{version}"
            here = f"{view_name}{pin}:{feature}"
            if output in owners:
                hint = (
                    ""
                    if full_feature_names
                    else "; pass full_feature_names=True to get 'view__feature' columns "
                    "('view_vN__feature' for a pinned version asked next to another)"
                )
                raise FeatureReferenceError(
                    f"features {owners[output]} and {here} would both be returned as column "
                    f"{output!r}{hint}"
                )
            owners[output] = here
        requests.append(FeatureRequest(view, tuple(features), tuple(outputs)))
    return requests
