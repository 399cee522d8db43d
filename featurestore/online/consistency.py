"""The consistency proof: online lookups and a historical retrieval at one instant must agree.

For each online view (write-time on-demand views included: their stored values against the
function run on the point-in-time-joined inputs), up to ``sample`` entity keys are drawn (deterministically for a given
``seed``) from the keys present in the view's source. They are looked up online at ``as_of`` and
retrieved with a point-in-time join for entity rows at ``as_of``; every feature value is compared:

* a **match**: both null, or both non-null and equal as stored (Float32 against Float32; NaN
  equals NaN);
* a **mismatch**: both non-null and different;
* an **online-only null**: null online (not found, too old, null) but a value offline;
* an **offline-only null**: a value online but null offline.

After ``materialize(start, end)`` a check at ``as_of=end`` must report no mismatch and no
one-sided null (the design's consistency contract)::

    report = check_consistency(store, sample=1000, as_of=end, seed=7)
    print(report.render())
    assert report.ok
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featurestore.aggregations import APPROX_COUNT_DISTINCT_RELATIVE_ERROR
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import FeatureReferenceError, ObjectNotFoundError
from featurestore.online.lookup import LookupPlan, OnlineLookup

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

__all__ = ["ConsistencyReport", "FeatureConsistency", "check_consistency"]

#: An online lookup's access check: ``(plan, references, principal)``, raising when refused.
Authorize = Callable[[LookupPlan, Sequence[str] | str, Any], None]

#: How many differing keys each feature keeps as examples for the report.
MAX_EXAMPLES = 3


@dataclass
class FeatureConsistency:
    """Counts for one feature of one view over the sampled keys."""

    view: str
    feature: str
    keys: int = 0
    matches: int = 0
    both_null: int = 0
    mismatches: int = 0
    online_only_nulls: int = 0
    offline_only_nulls: int = 0
    #: Up to :data:`MAX_EXAMPLES` ``(key, online value, offline value)`` where they differ.
    examples: list[tuple[dict[str, Any], Any, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.online_only_nulls or self.offline_only_nulls)


@dataclass
class ConsistencyReport:
    """The outcome of :func:`check_consistency`, per feature."""

    as_of: datetime
    sample: int
    seed: int
    features: list[FeatureConsistency] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False on any mismatch or one-sided null."""
        return all(f.ok for f in self.features)

    @property
    def mismatches(self) -> int:
        return sum(f.mismatches for f in self.features)

    @property
    def one_sided_nulls(self) -> int:
        return sum(f.online_only_nulls + f.offline_only_nulls for f in self.features)

    def summary(self) -> str:
        """One line: the verdict and the totals."""
        views = len({f.view for f in self.features})
        verdict = "consistent" if self.ok else "INCONSISTENT"
        return (
            f"{verdict}: {len(self.features)} features of {views} views at "
            f"{self.as_of.isoformat()} (seed {self.seed}); {self.mismatches} mismatches, "
            f"{self.one_sided_nulls} one-sided nulls"
        )

    def render(self) -> str:
        """A per-feature table, then examples of differing keys, then the summary line."""
        header = (
            "view",
            "feature",
            "keys",
            "matches",
            "both null",
            "mismatches",
            "online-only nulls",
            "offline-only nulls",
        )
        rows = [
            (
                f.view,
                f.feature,
                str(f.keys),
                str(f.matches),
                str(f.both_null),
                str(f.mismatches),
                str(f.online_only_nulls),
                str(f.offline_only_nulls),
            )
            for f in self.features
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header]]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        for f in self.features:
            for key, online, offline in f.examples:
                lines.append(f"  {f.view}:{f.feature} {key}: online={online!r} offline={offline!r}")
        lines.append(self.summary())
        return "\n".join(lines)


def check_consistency(
    store: FeatureStore,
    *,
    feature_views: Sequence[str] | None = None,
    sample: int = 1000,
    as_of: datetime | None = None,
    seed: int | None = None,
    authorize: Authorize | None = None,
) -> ConsistencyReport:
    """Compare online lookups with a historical retrieval at ``as_of`` (default: now).

    ``authorize`` is the online lookups' access check (the facade passes its own): the report
    shows values, so every feature compared must be readable online, as a lookup of it would
    need, and offline (the retrieval goes through the facade)."""
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    moment = datetime.now(timezone.utc) if as_of is None else _utc(as_of)
    chosen_seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    report = ConsistencyReport(as_of=moment, sample=sample, seed=chosen_seed)
    # A lookup of its own: the check must not share (or warm) the facade's plan cache.
    lookup = OnlineLookup(
        store.project,
        store.registry,
        store.online,
        freshness_interval=0.0,
        authorize=authorize,
        retention=store.retention.of,
        stored=store.write_time.stored,
    )
    for view in _views(store, feature_views):
        keys = _sample_keys(store, view, sample, chosen_seed)
        report.features += _compare_view(store, lookup, view, keys, moment)
    return report


def _views(store: FeatureStore, names: Sequence[str] | None) -> list[FeatureView]:
    written: dict[str, FeatureView] = {n: v.storage for n, v in store.write_time.views().items()}
    if names is None:
        return [v for v in store.list_feature_views() if v.online] + list(written.values())
    views = []
    for name in names:
        if name in written:
            views.append(written[name])
            continue
        try:
            views.append(store.get_feature_view(name))
        except ObjectNotFoundError as exc:
            raise FeatureReferenceError.from_not_found(exc) from None
    offline_only = [v.name for v in views if not v.online]
    if offline_only:
        raise FeatureReferenceError(
            f"feature views {offline_only} are not served online (online=False): nothing to check"
        )
    return views


def _sample_keys(store: FeatureStore, view: FeatureView, sample: int, seed: int) -> pa.Table:
    """Up to ``sample`` distinct non-null keys of the view's source, chosen by a seeded hash."""
    return store.offline.sample_entity_keys(view, sample, seed)


def _compare_view(
    store: FeatureStore,
    lookup: OnlineLookup,
    view: FeatureView,
    keys: pa.Table,
    as_of: datetime,
) -> list[FeatureConsistency]:
    references = [f"{view.name}:{f}" for f in view.feature_names]
    results = [FeatureConsistency(view.name, f) for f in view.feature_names]
    if keys.num_rows == 0:
        return results
    key_columns = {k: keys.column(k).to_pylist() for k in view.join_keys}
    if view.join_keys:
        online = lookup.lookup(references, entities=key_columns, as_of=as_of).to_arrow()
    else:
        online = lookup.lookup(references, entity_rows=[{}], as_of=as_of).to_arrow()
    stamps = pa.array([as_of] * keys.num_rows, pa.timestamp("us", tz="UTC"))
    entity_df = pa.table({**{k: keys.column(k) for k in view.join_keys}, "event_timestamp": stamps})
    offline = store.get_historical_features(entity_df, references).to_arrow()
    for result in results:
        dtype = view.feature(result.feature).dtype.to_arrow()
        tolerance = _tolerance(view, result.feature)
        online_values = online.column(result.feature).cast(dtype).to_pylist()
        offline_values = offline.column(result.feature).cast(dtype).to_pylist()
        for row, (a, b) in enumerate(zip(online_values, offline_values, strict=True)):
            result.keys += 1
            if a is None and b is None:
                result.matches += 1
                result.both_null += 1
                continue
            if a is not None and b is not None and _same(a, b, tolerance):
                result.matches += 1
                continue
            if a is None:
                result.online_only_nulls += 1
            elif b is None:
                result.offline_only_nulls += 1
            else:
                result.mismatches += 1
            if len(result.examples) < MAX_EXAMPLES:
                key = {k: key_columns[k][row] for k in view.join_keys}
                result.examples.append((key, a, b))
    return results


def _tolerance(view: FeatureView, feature: str) -> float:
    """How far apart (relative) two numbers of ``feature`` may be and still match: 0 for stored
    values; an aggregation is computed on each side, floating sums in another order (1e-9), an
    ``approx_count_distinct`` within its documented bound."""
    aggregation = view.aggregation_of.get(feature)
    if aggregation is None:
        return 0.0
    if aggregation.function == "approx_count_distinct":
        return APPROX_COUNT_DISTINCT_RELATIVE_ERROR
    return 1e-9


def _same(a: Any, b: Any, tolerance: float = 0.0) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if tolerance and isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    return bool(a == b)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
