"""On-demand view definitions: code in the content hash, versions, plan diffs, stored code."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_server import Server
from on_demand_repo import (
    BASE,
    DRIVER_STATS,
    END,
    RIDE,
    T0,
    entity_frame,
    make_store,
    same_minute_now,
)

from featurestore import (
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import DefinitionError
from featurestore.types import Float64, String

MINUTES = 60


@on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=[Field(name="eta", dtype=Float64)])
def eta_view(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["eta"] = inputs["distance_km"] / inputs["avg_speed"] * MINUTES
    return out


@on_demand_feature_view(
    sources=[DRIVER_STATS, RIDE], schema=[Field(name="eta", dtype=Float64)], description="new"
)
def eta_view_reformatted(inputs: pd.DataFrame) -> pd.DataFrame:
    """A docstring and comments are not code."""
    out = pd.DataFrame()  # a comment
    out["eta"] = inputs["distance_km"] / inputs["avg_speed"] * MINUTES
    return out


def version_two() -> OnDemandFeatureView:
    """The same view with a different body (defined here, so that it is another function)."""

    @on_demand_feature_view(sources=[DRIVER_STATS, RIDE], schema=[Field(name="eta", dtype=Float64)])
    def eta_view(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame()
        out["eta"] = inputs["distance_km"] / inputs["avg_speed"] * 120
        return out

    return eta_view


def helper(x: float) -> float:
    return x * 2


def test_whitespace_comments_docstring_and_metadata_keep_the_hash() -> None:
    renamed = OnDemandFeatureView.from_dict({**eta_view_reformatted.to_dict(), "name": "eta_view"})
    # The function name is part of the code: compare the code of the two spellings.
    assert eta_view.spec()["code"]["source"] == eta_view.code.source
    assert eta_view_reformatted.code.source == eta_view.code.source.replace(
        "def eta_view(", "def eta_view_reformatted("
    )
    assert renamed.meta() != eta_view.meta()
    assert version_two().content_hash != eta_view.content_hash


def test_constants_and_modules_are_stored_helpers_are_refused() -> None:
    code = eta_view.spec()["code"]
    assert code["imports"] == [{"name": "pd", "module": "pandas"}]
    assert code["constants"] == {"MINUTES": 60}

    def uses_helper(row: dict) -> dict:
        return {"x": helper(row["distance_km"])}

    with pytest.raises(DefinitionError, match=r"uses the global 'helper' \(function\)"):
        on_demand_feature_view(sources=[RIDE], schema=[Field(name="x", dtype=Float64)])(uses_helper)

    def uses_sqrt(row: dict) -> dict:
        return {"x": math.sqrt(row["distance_km"])}

    view = on_demand_feature_view(
        sources=[RIDE], schema=[Field(name="x", dtype=Float64)], mode="python"
    )(uses_sqrt)
    assert view.spec()["code"]["imports"] == [{"name": "math", "module": "math"}]
    assert OnDemandFeatureView.from_dict(view.to_dict()).function()({"distance_km": 9.0}) == {
        "x": 3.0
    }


def identity(row: dict) -> dict:
    return row


def test_bad_definitions_name_the_view() -> None:
    schema = [Field(name="x", dtype=Float64)]
    with pytest.raises(
        DefinitionError, match=r"on-demand feature view 'identity': mode must be one of"
    ):
        on_demand_feature_view(sources=[RIDE], schema=schema, mode="sql")(identity)
    with pytest.raises(DefinitionError, match="cannot be a source"):
        on_demand_feature_view(sources=[eta_view], schema=schema)(identity)
    other = RequestSource(name="r2", schema=[Field(name="label", dtype=String)])
    with pytest.raises(DefinitionError, match="input 'label' comes from both"):
        on_demand_feature_view(sources=[RIDE, other], schema=schema)(identity)
    with pytest.raises(DefinitionError, match="uses variables of an enclosing function"):
        on_demand_feature_view(sources=[RIDE], schema=schema)(closure())


def closure() -> Callable[[dict], dict]:
    factor = 3.0

    def scaled(row: dict) -> dict:
        return {"x": row["distance_km"] * factor}

    return scaled


def test_versions_plan_diff_history_and_pinned_code(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    try:
        store.apply([*BASE, eta_view])
        assert (
            store.registry.current_version(store.project, "on_demand_feature_view", "eta_view") == 1
        )
        same = store.apply([*BASE, OnDemandFeatureView.from_dict(eta_view.to_dict())])
        assert [c.change for c in same.changes if c.name == "eta_view"] == ["unchanged"]
        plan = store.plan([*BASE, version_two()])
        [change] = [c for c in plan.changes if c.name == "eta_view"]
        assert (change.change, change.old_version, change.new_version) == ("changed", 1, 2)
        rendered = plan.render()
        assert "On-demand feature views" in rendered
        assert "-    out['eta'] = inputs['distance_km'] / inputs['avg_speed'] * MINUTES" in rendered
        assert "+    out['eta'] = inputs['distance_km'] / inputs['avg_speed'] * 120" in rendered
        store.apply([*BASE, version_two()])
        history = store.registry.history(store.project, "eta_view", "on_demand_feature_view")
        assert [h.version for h in history] == [1, 2]
    finally:
        store.close()
    # A fresh store (no repository code loaded) runs each version's own stored code.
    reopened = FeatureStore(repo_path=tmp_path)
    try:
        frame = pd.DataFrame({"distance_km": [3.0], "avg_speed": [60.0]})
        for version, expected in ((1, 3.0), (2, 6.0)):
            view = reopened.registry.get(
                reopened.project, "on_demand_feature_view", "eta_view", version
            )
            assert isinstance(view, OnDemandFeatureView)
            assert view.function()(frame)["eta"].tolist() == [expected]
    finally:
        reopened.close()


def test_apply_rejects_missing_and_self_dependencies(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    try:
        with pytest.raises(
            DefinitionError, match="uses feature view 'driver_stats', which is neither"
        ):
            store.apply([eta_view])
        same_name = FeatureView(
            name="eta_view",
            schema=[Field(name="avg_speed", dtype=Float64)],
            source=FileSource(path="data/drivers.parquet"),
        )
        with pytest.raises(DefinitionError, match="has the name of a feature view"):
            store.apply([*BASE, same_name, eta_view])
        with pytest.raises(DefinitionError, match="depends on itself"):
            OnDemandFeatureView.from_dict(
                {
                    **eta_view.to_dict(),
                    "name": "driver_stats",
                }
            )
        # Nothing was written by the failed applies.
        assert store.registry.list(store.project, "on_demand_feature_view") == []
    finally:
        store.close()


def test_version_one_still_answers_pinned_lookups_and_retrievals(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    try:
        store.apply([*BASE, eta_view])
        store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
        store.apply([*BASE, version_two()])
        instant = same_minute_now()
        frame = entity_frame(5, 25, at=instant)
        refs = ["eta_view@1:eta", "eta_view:eta", "driver_stats:avg_speed"]
        table = store.get_historical_features(frame, refs, full_feature_names=True).to_arrow()
        v1, v2 = table.column("eta_view_v1__eta").to_pylist(), table.column("eta_view__eta")
        speed = table.column("driver_stats__avg_speed").to_pylist()
        distance = frame["distance_km"].tolist()
        for old, new, s, d in zip(v1, v2.to_pylist(), speed, distance, strict=True):
            if s is None or s == 0 or d is None or math.isnan(d):
                continue
            assert old == pytest.approx(d / s * 60)
            assert new == pytest.approx(d / s * 120)
        assert sum(v is not None and math.isfinite(v) for v in v1) > 3
        rows = [
            {"driver_id": d, "distance_km": None if math.isnan(k) else k, "label": "x"}
            for d, k in zip(frame["driver_id"], distance, strict=True)
        ]
        online = store.get_online_features(
            refs, entity_rows=rows, full_feature_names=True, as_of=instant
        ).to_dict()
        assert online["eta_view_v1__eta"] == v1
        assert online["eta_view__eta"] == v2.to_pylist()
        with Server(store) as server:
            body = httpx.post(
                f"{server.url}/get-online-features",
                json={
                    "features": ["eta_view@1:eta"],
                    "entities": {"driver_id": [r["driver_id"] for r in rows]},
                    "request_context": {
                        "distance_km": [r["distance_km"] for r in rows],
                        "label": ["x"] * len(rows),
                    },
                },
                timeout=30,
            )
        assert body.status_code == 200, body.text
        rest = [v if v is None else float(v) for v in body.json()["results"][-1]["values"]]
        assert rest == [None if v is not None and math.isinf(v) else v for v in v1]
    finally:
        store.close()
