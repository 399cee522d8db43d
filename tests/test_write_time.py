"""Write-time on-demand views: computed at materialization and push, stored, served as stored.

Seeded random data in two sources keyed by driver (nulls, zero trip counts, drivers only one
source knows, drivers none knows). After materialization and after pushes (newer and older than
what is stored, new drivers), for every driver: the brute-force oracle (the functions' semantics
in plain Python on each driver's latest raw rows) == the historical retrieval == the online
lookup (SDK) == REST, on SQLite and Redis; the stored values are really stored (the namespace
holds them). A pinned older version is computed with its own code; erasure removes the stored
values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from api_server import Server
from conftest import require_redis
from write_time_repo import (
    BASE,
    DRIVER_LIVE,
    DRIVERS,
    END,
    T0,
    TRIP_STATS,
    make_store,
    newest_event_us,
    oracle_inputs,
    write_data,
)

from featurestore import FeatureStore, FeatureView, Field, on_demand_feature_view
from featurestore.definitions.on_demand import OnDemandFeatureView, WriteTimeStorage
from featurestore.online.base import Namespace
from featurestore.types import Bool, Float64, String

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


@on_demand_feature_view(
    sources=[TRIP_STATS, DRIVER_LIVE],
    schema=[
        Field(name="km_per_trip", dtype=Float64),
        Field(name="label", dtype=String),
        Field(name="busy", dtype=Bool),
    ],
    write_to_online_store=True,
)
def driver_mix(inputs: pd.DataFrame) -> pd.DataFrame:
    trips = pd.Series(inputs["trips"].to_numpy(dtype="float64", na_value=float("nan")))
    out = pd.DataFrame(index=inputs.index)
    out["km_per_trip"] = inputs["avg_km"] / trips.where(trips != 0).set_axis(inputs.index)
    out["label"] = inputs["tier"].fillna("none") + "/" + inputs["status"].fillna("?")
    out["busy"] = (inputs["speed"] > 30).astype("boolean").mask(inputs["speed"].isna())
    return out


@on_demand_feature_view(
    sources=[TRIP_STATS[["avg_km"]], DRIVER_LIVE[["speed"]]],
    schema=[Field(name="eta_min", dtype=Float64)],
    mode="python",
    write_to_online_store=True,
)
def driver_eta(row: dict[str, Any]) -> dict[str, Any]:
    speed = row["speed"] or None
    km = row["avg_km"]
    return {"eta_min": None if speed is None or km is None else km / speed * 60}


def driver_eta_v2() -> OnDemandFeatureView:
    """``driver_eta`` with another body: version 2."""

    @on_demand_feature_view(
        sources=[TRIP_STATS[["avg_km"]], DRIVER_LIVE[["speed"]]],
        schema=[Field(name="eta_min", dtype=Float64)],
        mode="python",
        write_to_online_store=True,
    )
    def driver_eta(row: dict[str, Any]) -> dict[str, Any]:
        speed = row["speed"] or None
        km = row["avg_km"]
        return {"eta_min": None if speed is None or km is None else km / speed * 3600}

    return driver_eta


def oracle(inputs: dict[str, Any] | None, eta_factor: float = 60) -> dict[str, Any]:
    """The functions' semantics in plain Python (inputs None: the function on all nulls)."""
    row = inputs or dict.fromkeys(["avg_km", "trips", "tier", "speed", "status"])
    km, trips, speed = row["avg_km"], row["trips"], row["speed"]
    return {
        "km_per_trip": None if km is None or not trips else float(km / trips),
        "label": (row["tier"] if row["tier"] is not None else "none")
        + "/"
        + (row["status"] if row["status"] is not None else "?"),
        "busy": None if speed is None else bool(speed > 30),
        "eta_min": None if not speed or km is None else float(km / speed * eta_factor),
    }


FEATURES = {"km_per_trip": "driver_mix", "label": "driver_mix", "busy": "driver_mix"}
FEATURES["eta_min"] = "driver_eta"
REFS = [f"{view}:{feature}" for feature, view in FEATURES.items()]
ALL_DRIVERS = list(range(DRIVERS + 8))  # 30..32 are in no source


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[FeatureStore, pd.DataFrame, pd.DataFrame]]:
    online = None
    if request.param == "redis":
        require_redis(REDIS_URL)
        online = f"{{type: redis, url: '{REDIS_URL}'}}"
    root = tmp_path / "repo"
    trips, live = write_data(root, seed=41)
    store = make_store(root, online=online)
    store.apply([*BASE, driver_mix, driver_eta])
    store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
    try:
        yield store, trips, live
    finally:
        store.teardown()
        store.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b) and type(a) is type(b)


def check_agree(
    store: FeatureStore, url: str, trips: pd.DataFrame, live: pd.DataFrame, eta: float = 60
) -> None:
    """Oracle == offline == online (SDK) == REST for every driver; unknown drivers are
    NOT_FOUND online (nothing was ever written for them)."""
    instant = datetime.now(UTC)
    expected = oracle_inputs(trips, live, ALL_DRIVERS, instant)
    frame = pd.DataFrame(
        {"driver_id": ALL_DRIVERS, "event_timestamp": [instant] * len(ALL_DRIVERS)}
    )
    offline = store.get_historical_features(frame, REFS).to_arrow()
    online = store.get_online_features(REFS, entity_rows=[{"driver_id": d} for d in ALL_DRIVERS])
    body = httpx.post(
        f"{url}/get-online-features",
        json={"features": REFS, "entities": {"driver_id": ALL_DRIVERS}},
        timeout=30,
    )
    assert body.status_code == 200, body.text
    names = body.json()["metadata"]["feature_names"]
    values = online.to_dict()
    # Stored values carry the newest input's event time (computed ones would carry none).
    newest = newest_event_us(trips, live, ALL_DRIVERS, instant)
    present = 0
    for feature in FEATURES:
        rest = body.json()["results"][names.index(feature)]["values"]
        statuses = online.statuses[feature]
        offline_values = offline.column(feature).to_pylist()
        for i, inputs in enumerate(expected):
            want = oracle(inputs, eta)[feature]
            got = offline_values[i]
            assert _same(got, want) or (want is None and got is None), (feature, i, want, got)
            if inputs is None:  # no source row: nothing computed, nothing stored
                assert statuses[i] == "NOT_FOUND"
                assert values[feature][i] is None
                continue
            assert _same(values[feature][i], want) or values[feature][i] is want, (
                feature,
                i,
                want,
                values[feature][i],
            )
            assert rest[i] == want, (feature, i, want, rest[i])
            assert online.column(feature)[2][i] == newest[i], (feature, i)
            present += statuses[i] == "PRESENT"
    assert present > 40  # real values, not a page of nulls


def stored_rows(store: FeatureStore, view: OnDemandFeatureView, version: int) -> int:
    storage = WriteTimeStorage(view, [TRIP_STATS, DRIVER_LIVE])
    keys = pa.table({"driver_id": pa.array(ALL_DRIVERS, pa.int64())})
    read = store.online.read(Namespace(store.project, storage, version), keys, ["eta_min"])
    return sum(read.column("__fs_found").to_pylist())


def test_materialize_then_push_offline_equals_online(
    served: tuple[FeatureStore, pd.DataFrame, pd.DataFrame],
) -> None:
    store, trips, live = served
    # One stored row per driver that some source knows, none for the others.
    assert stored_rows(store, driver_eta, 1) == len(
        set(trips["driver_id"]) | set(live["driver_id"])
    )
    # The consistency check covers write-time views as it covers feature views.
    report = store.consistency_check(sample=100, seed=3)
    assert {"driver_mix", "driver_eta"} <= {f.view for f in report.features}
    assert report.ok, report.render()
    with Server(store) as server:
        check_agree(store, server.url, trips, live)
        # Pushes: newer rows, a row older than the stored one (never replaces it; the value
        # stays computed from the stored row), and drivers no source knew.
        old = next(int(d) for d in live["driver_id"] if d not in (0, 3, 7, 31))
        pushed = pd.DataFrame(
            {
                "driver_id": [0, 3, 7, 31, old],
                "event_timestamp": [
                    END + timedelta(seconds=5),
                    END + timedelta(seconds=6),
                    END + timedelta(seconds=7),
                    END + timedelta(seconds=8),
                    T0 - timedelta(hours=1),
                ],
                "speed": [55.5, None, 0.0, 12.25, 99.0],
                "status": ["busy", "idle", None, "", "old"],
            }
        )
        report = store.push("live_push", pushed, to="online_and_offline")
        assert report.online[0].result.skipped_older == 1
        live = pd.concat([live, pushed], ignore_index=True)
        check_agree(store, server.url, trips, live)
        # REST /push (Feast's body) takes the same path.
        at = END + timedelta(seconds=10)
        rest_rows = pd.DataFrame(
            {
                "driver_id": [5, 32],
                "event_timestamp": [at, at],
                "speed": [41.0, 7.5],
                "status": ["rest", None],
            }
        )
        body = {
            "push_source_name": "live_push",
            "to": "online_and_offline",
            "df": {
                "driver_id": [5, 32],
                "event_timestamp": [at.isoformat()] * 2,
                "speed": [41.0, 7.5],
                "status": ["rest", None],
            },
        }
        answer = httpx.post(f"{server.url}/push", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        check_agree(store, server.url, trips, pd.concat([live, rest_rows], ignore_index=True))
        # Only one input written (Feast's write_to_online_store, online only): the other
        # input's stored values are used; the oracle sees what the online store holds.
        direct = pd.DataFrame(
            {"driver_id": [1], "event_timestamp": [END + timedelta(seconds=20)], "speed": [33.0]}
        )
        direct["status"] = ["direct"]
        store.write_to_online_store("driver_live", direct)
        online = store.get_online_features(REFS, entity_rows=[{"driver_id": 1}]).to_dict()
        [trip] = [r for r in oracle_inputs(trips, live, [1], datetime.now(UTC)) if r]
        want = oracle({**trip, "speed": 33.0, "status": "direct"})
        assert {f: online[f][0] for f in FEATURES} == want


def test_pinned_version_runs_its_code_and_the_new_one_is_stored(
    served: tuple[FeatureStore, pd.DataFrame, pd.DataFrame],
) -> None:
    store, trips, live = served
    store.apply([*BASE, driver_mix, driver_eta_v2()])
    assert stored_rows(store, driver_eta, 2) == 0  # nothing written since version 2
    # Materializing it (its source views, not incrementally) computes version 2 for every key.
    window = (T0 - timedelta(days=1), END + timedelta(seconds=1))
    report = store.materialize(*window, feature_views=["driver_eta"], progress=False)
    assert sorted(v.view for v in report.views) == ["driver_live", "trip_stats"]
    assert stored_rows(store, driver_eta, 2) > 20
    with Server(store) as server:
        check_agree(store, server.url, trips, live, eta=3600)
    instant = datetime.now(UTC)
    drivers = list(range(DRIVERS))
    frame = pd.DataFrame({"driver_id": drivers, "event_timestamp": [instant] * len(drivers)})
    refs = ["driver_eta@1:eta_min", "driver_eta:eta_min"]
    offline = store.get_historical_features(frame, refs, full_feature_names=True).to_arrow()
    online = store.get_online_features(
        refs, entity_rows=[{"driver_id": d} for d in drivers], full_feature_names=True
    ).to_dict()
    expected = oracle_inputs(trips, live, drivers, instant)
    v1 = [oracle(e, 60)["eta_min"] for e in expected]
    v2 = [oracle(e, 3600)["eta_min"] for e in expected]
    assert offline.column("driver_eta_v1__eta_min").to_pylist() == v1
    assert online["driver_eta_v1__eta_min"] == v1
    assert offline.column("driver_eta__eta_min").to_pylist() == v2
    assert online["driver_eta__eta_min"] == v2
    assert sum(v is not None for v in v1) > 5
    # Pinning the current version names the column as offline does (computed, same values).
    both = ["driver_eta@1:eta_min", "driver_eta@2:eta_min"]
    pinned = store.get_online_features(
        both, entity_rows=[{"driver_id": d} for d in drivers], full_feature_names=True
    ).to_dict()
    columns = store.get_historical_features(frame, both, full_feature_names=True).to_arrow()
    assert (
        pinned["driver_eta_v1__eta_min"]
        == v1
        == columns.column("driver_eta_v1__eta_min").to_pylist()
    )
    assert (
        pinned["driver_eta_v2__eta_min"]
        == v2
        == columns.column("driver_eta_v2__eta_min").to_pylist()
    )


def test_erasure_removes_the_stored_values(
    served: tuple[FeatureStore, pd.DataFrame, pd.DataFrame],
) -> None:
    store, _, live = served
    driver = int(live["driver_id"].iloc[0])
    before = store.get_online_features(REFS, entity_rows=[{"driver_id": driver}])
    assert before.statuses["label"] == ["PRESENT"]
    dry = store.erase({"driver_id": driver}, dry_run=True)
    places = {r.name for r in dry.removed if r.place == "online"}
    assert {"driver_mix v1", "driver_eta v1"} <= places
    report = store.erase({"driver_id": driver})
    assert report.verified
    after = store.get_online_features(REFS, entity_rows=[{"driver_id": driver}])
    assert all(after.statuses[f] == ["NOT_FOUND"] for f in FEATURES)
    others = store.get_online_features(REFS, entity_rows=[{"driver_id": 0}])
    assert others.statuses["label"] == ["PRESENT"]


# -- TTL: the point-in-time join at the newest input's instant --------------------------------

TRIPS_3H = FeatureView(
    name="trip_stats",
    entities=[TRIP_STATS.entities[0]],
    ttl=timedelta(hours=3),
    schema=TRIP_STATS.schema,
    source=TRIP_STATS.source,
)


@on_demand_feature_view(
    sources=[TRIPS_3H[["avg_km", "tier"]], DRIVER_LIVE[["status"]]],
    schema=[Field(name="km", dtype=Float64), Field(name="tier_status", dtype=String)],
    mode="python",
    write_to_online_store=True,
)
def trip_ttl(row: dict[str, Any]) -> dict[str, Any]:
    return {"km": row["avg_km"], "tier_status": f"{row['tier']}/{row['status']}"}


def test_an_input_past_its_ttl_is_null_and_a_stale_value_is_outside_max_age(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    trips, live = write_data(root, seed=17)
    drivers = list(range(DRIVERS + 5))
    with make_store(root) as store:
        store.apply([TRIP_STATS.entities[0], TRIPS_3H, DRIVER_LIVE, trip_ttl])
        store.materialize(T0 - timedelta(days=1), END + timedelta(seconds=1), progress=False)
        now = datetime.now(UTC)
        newest = newest_event_us(trips, live, drivers, now)
        known = [(d, t) for d, t in zip(drivers, newest, strict=True) if t is not None]
        instants = [datetime.fromtimestamp(t / 1e6, UTC) for _, t in known]
        frame = pd.DataFrame({"driver_id": [d for d, _ in known], "event_timestamp": instants})
        offline = store.get_historical_features(frame, ["trip_ttl:km", "trip_ttl:tier_status"])
        offline_rows = offline.to_arrow().to_pylist()
        nulled = 0
        for (driver, stamp), at, row in zip(known, instants, offline_rows, strict=True):
            [inputs] = oracle_inputs(trips, live, [driver], at)
            assert inputs is not None
            trip_at = newest_event_us(trips, live.iloc[0:0], [driver], at)[0]
            if trip_at is not None and trip_at < stamp - 3 * 3600 * 1_000_000:
                inputs = {**inputs, "avg_km": None, "tier": None}  # past its TTL at `at`
                nulled += 1
            want = {"km": inputs["avg_km"], "tier_status": f"{inputs['tier']}/{inputs['status']}"}
            assert {"km": row["km"], "tier_status": row["tier_status"]} == want
            online = store.get_online_features(
                ["trip_ttl:km", "trip_ttl:tier_status"],
                entity_rows=[{"driver_id": driver}],
                as_of=at,
            )
            assert {f: v[0] for f, v in online.to_dict().items() if f != "driver_id"} == want
            # Now, the value is stale once the newest input is older than the smallest TTL.
            later = store.get_online_features(
                ["trip_ttl:tier_status"], entity_rows=[{"driver_id": driver}]
            )
            stale = stamp < (now - timedelta(hours=3)).timestamp() * 1e6
            assert later.statuses["tier_status"] == ["OUTSIDE_MAX_AGE" if stale else "PRESENT"]
        assert nulled > 2  # the TTL rule was exercised


def test_racing_writers_of_two_inputs_leave_the_value_of_both(
    served: tuple[FeatureStore, pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of different inputs race for one key: A writes driver_live and reads the
    inputs; B then writes trip_stats, reads and stores; A stores last. B read after both writes,
    so B's result must stay, although A's write comes later. The interleaving is forced by
    running B inside A's read (a race that cannot be timed for real)."""
    from featurestore.transform import write_time

    store, _trips, _live = served
    driver = 3
    live_at, trip_at = END + timedelta(seconds=30), END + timedelta(seconds=20)
    original = write_time._stored_inputs
    raced: list[bool] = []

    def read_then_let_b_write(*args: Any, **kwargs: Any) -> Any:
        stale = original(*args, **kwargs)
        if not raced:
            raced.append(True)
            row = {"driver_id": [driver], "event_timestamp": [trip_at], "avg_km": [42.0]}
            store.write_to_online_store(
                "trip_stats", pd.DataFrame({**row, "trips": [7], "tier": ["gold"]})
            )
        return stale

    monkeypatch.setattr(write_time, "_stored_inputs", read_then_let_b_write)
    pushed = {"driver_id": [driver], "event_timestamp": [live_at], "speed": [20.0]}
    store.write_to_online_store("driver_live", pd.DataFrame({**pushed, "status": ["race"]}))
    assert raced
    online = store.get_online_features(REFS, entity_rows=[{"driver_id": driver}]).to_dict()
    want = oracle({"avg_km": 42.0, "trips": 7, "tier": "gold", "speed": 20.0, "status": "race"})
    assert {f: online[f][0] for f in FEATURES} == want
