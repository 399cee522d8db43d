"""Write-time views' definitions and access, and on-demand views in feature services.

* a write-time view rejects a request source and sources keyed differently, naming the view;
  the flag is part of the content hash (turning it on makes a new version, the plan says so);
* a principal who may not read an input cannot read the stored write-time feature either
  (SDK, REST, offline, and through a feature service);
* a function that raises at write time stops the push with an error naming the view, and
  nothing goes offline;
* a feature service listing a request-time and a write-time view answers
  ``get_historical_features(features=service)``, ``get_online_features`` (object and name), REST
  and the CLI with the same values; the registry keeps it and lineage links the views to it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from access_repo import COMMAND, DRIVER_STATS, NOW, ROOT, as_, make_repo
from api_server import Server
from write_time_repo import (
    BASE,
    DRIVER_LIVE,
    END,
    T0,
    TRIP_STATS,
    make_store,
    oracle_inputs,
    write_data,
)

from featurestore import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.errors import AccessDeniedError, DefinitionError, TransformationError
from featurestore.types import Float64, Int64, String

RIDE = RequestSource(name="ride", schema=[Field(name="distance_km", dtype=Float64)])


@on_demand_feature_view(
    sources=[TRIP_STATS[["avg_km", "tier"]], DRIVER_LIVE[["status"]]],
    schema=[Field(name="tier_status", dtype=String), Field(name="km2", dtype=Float64)],
    write_to_online_store=True,
)
def tier_status(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=inputs.index)
    out["tier_status"] = inputs["tier"].fillna("-") + ":" + inputs["status"].fillna("-")
    out["km2"] = inputs["avg_km"] * 2
    return out


@on_demand_feature_view(
    sources=[TRIP_STATS[["trips"]], RIDE],
    schema=[Field(name="trips_per_km", dtype=Float64)],
    mode="python",
)
def trip_density(row: dict[str, Any]) -> dict[str, Any]:
    km, trips = row["distance_km"], row["trips"]
    return {"trips_per_km": None if not km or trips is None else trips / km}


@on_demand_feature_view(
    sources=[DRIVER_STATS[["ssn", "trips"]]],
    schema=[Field(name="ssn_trips", dtype=String)],
    mode="python",
    write_to_online_store=True,
)
def ssn_trips(row: dict[str, Any]) -> dict[str, Any]:
    return {"ssn_trips": f"{row['ssn']}-{row['trips']}"}


MODEL = FeatureService(
    name="driver_model", features=[TRIP_STATS[["avg_km"]], tier_status, trip_density]
)


# -- definitions -----------------------------------------------------------------------------


def request_time_tier() -> Any:
    """``tier_status``'s code without the flag (another object of the same name)."""

    @on_demand_feature_view(
        sources=[TRIP_STATS[["avg_km", "tier"]], DRIVER_LIVE[["status"]]],
        schema=[Field(name="tier_status", dtype=String), Field(name="km2", dtype=Float64)],
    )
    def tier_status(inputs: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=inputs.index)
        out["tier_status"] = inputs["tier"].fillna("-") + ":" + inputs["status"].fillna("-")
        out["km2"] = inputs["avg_km"] * 2
        return out

    return tier_status


def test_definition_errors_name_the_view() -> None:
    with pytest.raises(DefinitionError, match=r"'with_request'.*request source 'ride'"):

        @on_demand_feature_view(
            sources=[TRIP_STATS, RIDE],
            schema=[Field(name="x", dtype=Float64)],
            write_to_online_store=True,
        )
        def with_request(row: dict[str, Any]) -> dict[str, Any]:
            return {"x": 1.0}

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=Int64)
    customers = FeatureView(
        name="customers",
        entities=[customer],
        schema=[Field(name="age", dtype=Int64)],
        source=FileSource(path="data/customers.parquet"),
    )
    with pytest.raises(DefinitionError, match=r"'two_keys'.*keyed alike.*customer_id"):

        @on_demand_feature_view(
            sources=[TRIP_STATS, customers],
            schema=[Field(name="x", dtype=Float64)],
            write_to_online_store=True,
        )
        def two_keys(row: dict[str, Any]) -> dict[str, Any]:
            return {"x": 1.0}


def test_the_flag_is_part_of_the_content_hash(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_data(root, seed=3)
    with make_store(root) as store:
        store.apply([*BASE, request_time_tier()])
        assert request_time_tier().content_hash != tier_status.content_hash
        plan = store.apply([*BASE, tier_status])
        [change] = [c for c in plan.changes if c.name == "tier_status"]
        assert (change.change, change.new_version) == ("changed", 2)
        assert any("write_to_online_store: False -> True" in d for d in change.details)
        again = store.registry.get(store.project, "on_demand_feature_view", "tier_status")
        assert isinstance(again, OnDemandFeatureView)
        assert again.write_to_online_store
        assert again.content_hash == tier_status.content_hash


# -- access ----------------------------------------------------------------------------------


def test_a_denied_input_denies_the_stored_feature(tmp_path: Path) -> None:
    root, tokens = make_repo(tmp_path)
    ssn_service = FeatureService(name="ssn_service", features=[ssn_trips])
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply([ssn_trips, ssn_service])
        # Materializing the input view again computes and stores the write-time feature.
        admin.materialize(NOW - timedelta(days=1), NOW, progress=False)
        stored = admin.get_online_features(["ssn_trips:ssn_trips"], entity_rows=[{"driver_id": 1}])
        assert stored.to_dict()["ssn_trips"] == ["123-10"]
        admin.push(
            "driver_push",
            pd.DataFrame(
                {
                    "driver_id": [2],
                    "event_timestamp": [NOW],
                    "conv_rate": [0.1],
                    "ssn": ["999"],
                    "trips": [3],
                }
            ),
        )
        pushed = admin.get_online_features(["ssn_trips:ssn_trips"], entity_rows=[{"driver_id": 2}])
        assert pushed.to_dict()["ssn_trips"] == ["999-3"]
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
    with as_(root, tokens["analyst"]) as bob:
        with pytest.raises(AccessDeniedError, match="ssn"):
            bob.get_online_features(["ssn_trips:ssn_trips"], entity_rows=[{"driver_id": 1}])
        with pytest.raises(AccessDeniedError, match="ssn"):
            bob.get_online_features("ssn_service", entity_rows=[{"driver_id": 1}])
        with pytest.raises(AccessDeniedError, match="ssn"):
            bob.get_historical_features(frame, ["ssn_trips:ssn_trips"])
        # The same principal still reads what it may.
        assert bob.get_online_features(
            ["driver_stats:trips"], entity_rows=[{"driver_id": 1}]
        ).to_dict()["trips"] == [10]
    with FeatureStore(root, principal=ROOT) as store, Server(store) as server:
        denied = httpx.post(
            f"{server.url}/get-online-features",
            headers={"Authorization": f"Bearer {tokens['analyst']}"},
            json={"features": ["ssn_trips:ssn_trips"], "entities": {"driver_id": [1]}},
            timeout=30,
        )
        assert denied.status_code == 403, denied.text
        assert "ssn" in denied.json()["error"]["message"]
        allowed = httpx.post(
            f"{server.url}/get-online-features",
            headers={"Authorization": f"Bearer {tokens['admin']}"},
            json={"features": ["ssn_trips:ssn_trips"], "entities": {"driver_id": [1]}},
            timeout=30,
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["results"][-1]["values"] == ["123-10"]


# -- feature services ------------------------------------------------------------------------


def test_a_service_with_on_demand_views(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    trips, live = write_data(root, seed=5)
    drivers = list(range(0, 27))
    distances = [None if d % 7 == 0 else round(0.5 + d * 1.3, 2) for d in drivers]
    with make_store(root) as store:
        store.apply([*BASE, tier_status, trip_density, MODEL])
        store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
        instant = datetime.now(UTC)
        frame = pd.DataFrame(
            {
                "driver_id": drivers,
                "event_timestamp": [instant] * len(drivers),
                "distance_km": distances,
            }
        )
        by_object = store.get_historical_features(frame, MODEL).to_arrow()
        by_name = store.get_historical_features(frame, "driver_model").to_arrow()
        features = ["avg_km", "tier_status", "km2", "trips_per_km"]
        assert by_object.column_names == ["driver_id", "event_timestamp", "distance_km", *features]
        assert by_object.equals(by_name)
        rows = [{"driver_id": d, "distance_km": k} for d, k in zip(drivers, distances, strict=True)]
        online = store.get_online_features(MODEL, entity_rows=rows).to_dict()
        named = store.get_online_features("driver_model", entity_rows=rows).to_dict()
        assert online == named
        # Drivers 25 and 26 may be in no source: the stored feature is then NOT_FOUND online.
        known = set(trips["driver_id"]) | set(live["driver_id"])
        for feature in features:
            offline_values = by_object.column(feature).to_pylist()
            for i, driver in enumerate(drivers):
                if feature in ("tier_status", "km2") and driver not in known:
                    assert online[feature][i] is None
                    continue
                assert online[feature][i] == offline_values[i], (feature, driver)
        assert sum(v is not None for v in by_object.column("trips_per_km").to_pylist()) > 10
        with Server(store) as server:
            body = httpx.post(
                f"{server.url}/get-online-features",
                json={
                    "feature_service": "driver_model",
                    "entities": {"driver_id": drivers},
                    "request_context": {"distance_km": distances},
                },
                timeout=30,
            )
        assert body.status_code == 200, body.text
        names = body.json()["metadata"]["feature_names"]
        for feature in features:
            assert body.json()["results"][names.index(feature)]["values"] == online[feature]
        cli = subprocess.run(
            [
                COMMAND,
                "--repo",
                str(root),
                "get-online-features",
                "--feature-service",
                "driver_model",
                "--entity",
                "driver_id=3",
                "--request",
                "distance_km=2.5",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        result = json.loads(cli.stdout)
        cli_names = result["metadata"]["feature_names"]
        single = store.get_online_features(
            MODEL, entity_rows=[{"driver_id": 3, "distance_km": 2.5}]
        ).to_dict()
        for feature in features:
            assert result["results"][cli_names.index(feature)]["values"] == single[feature]
        # The registry keeps the service; lineage links both on-demand views to it.
        assert store.get_feature_service("driver_model").feature_refs() == MODEL.feature_refs()
        upstream = {n.id for n in store.trace_lineage("driver_model", "upstream").nodes}
        assert {
            "on_demand_feature_view:tier_status@1",
            "on_demand_feature_view:trip_density@1",
        } <= upstream
        unchanged = store.plan([*BASE, tier_status, trip_density, MODEL])
        assert {c.change for c in unchanged.changes} == {"unchanged"}


# -- a function that fails at write time ------------------------------------------------------


@on_demand_feature_view(
    sources=[TRIP_STATS[["tier"]], DRIVER_LIVE[["status"]]],
    schema=[Field(name="shout", dtype=String)],
    mode="python",
    write_to_online_store=True,
)
def shout(row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] == "boom":
        raise ValueError("cannot shout boom")
    return {"shout": None if row["status"] is None else row["status"].upper()}


def test_a_failing_function_stops_the_push_and_names_the_view(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    trips, live = write_data(root, seed=9)
    with make_store(root) as store:
        store.apply([*BASE, shout])
        at = END + timedelta(seconds=30)
        good = pd.DataFrame({"driver_id": [2], "event_timestamp": [at], "speed": [1.0]})
        good["status"] = ["fine"]
        store.push("live_push", good, to="online_and_offline")
        assert store.get_online_features(["shout:shout"], entity_rows=[{"driver_id": 2}]).to_dict()[
            "shout"
        ] == ["FINE"]
        bad = good.assign(driver_id=[4], status=["boom"])
        with pytest.raises(TransformationError, match=r"'shout' v1.*cannot shout boom"):
            store.push("live_push", bad, to="online_and_offline")
        # Nothing went offline (the staged file was dropped): the retrieval sees the batch
        # file's rows only. Online, the source row written before the failure stays (pushing
        # again is safe) and nothing was computed for the key.
        now = datetime.now(UTC)
        frame = pd.DataFrame({"driver_id": [4], "event_timestamp": [now]})
        offline = store.get_historical_features(frame, ["driver_live:status"]).to_arrow()
        [inputs] = oracle_inputs(trips, live, [4], now)
        assert offline.column("status").to_pylist() == [
            None if inputs is None else inputs["status"]
        ]
        rows = [{"driver_id": 4}]
        assert store.get_online_features(["driver_live:status"], entity_rows=rows).to_dict()[
            "status"
        ] == ["boom"]
        online = store.get_online_features(["shout:shout"], entity_rows=rows)
        assert online.statuses["shout"] == ["NOT_FOUND"]
