"""Erasure: ``store.erase`` / ``featurestore erase`` removes one entity from everything the store
owns (every online namespace keyed by it, pushed Parquet files, saved datasets), verifies that no
trace is left, lists the user-owned files still holding it, and removes nothing else.

End-to-end on the SQLite and Redis online stores with Parquet offline data (``governance_repo``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from governance_repo import (
    BACKENDS,
    DRIVER,
    NOW,
    ago,
    all_definitions,
    driver_stats,
    make_store,
    online_snapshot,
    parquet_rows,
    push_rows,
    run_cli,
    source_digests,
    store_files,
)
from openlineage_spec import validate_event

from featurestore import FeatureStore, Policy
from featurestore.errors import AccessDeniedError, ErasureError
from featurestore.governance.access import Principal
from featurestore.governance.openlineage_client import PRODUCER
from featurestore.online.codec import encode_keys, split_entity_key


def populate(store: FeatureStore) -> None:
    """Every place the store owns holds driver 1001 next to other drivers: two versions of
    driver_stats online, the push view online and offline, the driver+customer view, and a
    saved dataset."""
    store.apply(all_definitions())
    store.materialize(ago(100), NOW)
    push_rows(store, [(1001, ago(2), 30), (7, ago(2), 40)], to="online_and_offline")
    push_rows(store, [(1001, ago(1), 31)], to="offline")  # a file holding only 1001
    push_rows(store, [(8, ago(1), 50)], to="offline")  # a file without 1001
    entity_df = pd.DataFrame(
        {"driver_id": [1001, 7, 1001, 8], "event_timestamp": [NOW, NOW, ago(3), NOW]}
    )
    features = ["driver_stats:rate", "driver_push:trips"]
    store.get_historical_features(entity_df, features).save_dataset("train")
    store.apply([DRIVER, driver_stats(ttl=365 * timedelta(days=1))])  # driver_stats v2
    store.materialize(ago(100), NOW, ["driver_stats"])


def part(key: str, value: Any) -> bytes:
    encoded: bytes = encode_keys(pa.table({key: [value]}), [key])[0].as_py()
    return encoded


def holds_driver(entity_key: bytes, namespace: str, driver_id: int) -> bool:
    """Whether an online key of ``namespace`` belongs to the driver (first join key)."""
    if namespace.startswith("trip_stats"):
        return False
    return split_entity_key(entity_key)[0] == part("driver_id", driver_id)


def without_driver(
    online: dict[str, dict[bytes, bytes]], driver_id: int
) -> dict[str, dict[bytes, bytes]]:
    return {
        ns: {k: v for k, v in rows.items() if not holds_driver(k, ns, driver_id)}
        for ns, rows in online.items()
    }


def rows_without(files: dict[str, list[dict[str, Any]]], driver_id: int) -> dict[str, list[Any]]:
    return {
        path: [r for r in rows if r.get("driver_id") != driver_id] for path, rows in files.items()
    }


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    fs = make_store(tmp_path, str(request.param))
    try:
        populate(fs)
        yield fs
    finally:
        fs.teardown()
        fs.close()


def test_erase_leaves_no_trace_and_removes_nothing_else(store: FeatureStore) -> None:
    online_before, files_before = online_snapshot(store), store_files(store)
    sources = source_digests(store.repo_path)
    assert sum(holds_driver(k, ns, 1001) for ns, r in online_before.items() for k in r) == 5
    report = store.erase(entity={"driver_id": 1001})
    assert report.verified
    assert report.residue == []
    removed = {(r.place, r.name): r.rows for r in report.removed}
    assert removed == {
        ("online", "driver_push v1"): 1,
        ("online", "driver_stats v1"): 1,
        ("online", "driver_stats v2"): 1,
        ("online", "pair_stats v1"): 2,  # (1001, 'a') and (1001, 'b')
        **{
            ("pushed", p): 1
            for p, rows in files_before.items()
            if "/push/" in p and 1001 in [r["driver_id"] for r in rows]
        },
        ("dataset", "train"): 2,
        # The dataset's statistics (its drift reference) profiled 1001's values too.
        ("quality", "statistics of dataset train"): 1,
    }
    # No trace of 1001 online or in any file the store owns ...
    online_after, files_after = online_snapshot(store), store_files(store)
    assert not any(holds_driver(k, ns, 1001) for ns, rows in online_after.items() for k in rows)
    assert all(r.get("driver_id") != 1001 for rows in files_after.values() for r in rows)
    # ... and everything else exactly as it was: other keys, their values, other rows in order.
    assert online_after == without_driver(online_before, 1001)
    assert files_after == {p: r for p, r in rows_without(files_before, 1001).items() if r}
    assert len(files_after) == len(files_before) - 1  # the file holding only 1001 is gone
    assert store.get_saved_dataset("train").rows == 2
    assert [
        r["driver_id"] for r in parquet_rows(Path(store.get_saved_dataset("train").location))
    ] == [7, 8]
    # The user's own files are untouched and listed for their owners.
    assert source_digests(store.repo_path) == sources
    held = {(Path(s.path).name, s.rows) for s in report.user_sources}
    assert held == {("driver_stats.parquet", 2), ("driver_push.parquet", 1), ("pair.parquet", 2)}
    assert "verified: no trace left" in report.summary()
    # Lookups agree, for the erased driver and the others.
    response = store.get_online_features(
        ["driver_stats:rate", "driver_push:trips"],
        entity_rows=[{"driver_id": 1001}, {"driver_id": 7}],
    ).to_dict()
    assert response["rate"] == [None, 1.0]
    assert response["trips"] == [None, 40]
    # Erasing again finds nothing of the store's own, and still lists the user's files.
    again = store.erase(entity={"driver_id": 1001})
    assert again.removed == []
    assert again.verified
    assert len(again.user_sources) == 3


def test_dry_run_removes_nothing_and_counts_what_a_run_removes(store: FeatureStore) -> None:
    online_before, files_before = online_snapshot(store), store_files(store)
    dry = store.erase(entity={"driver_id": 1001}, dry_run=True)
    assert dry.dry_run
    assert not dry.verified
    assert dry.total == 9
    assert "dry run: nothing was removed" in dry.summary()
    assert online_snapshot(store) == online_before
    assert store_files(store) == files_before
    real = store.erase(entity={"driver_id": 1001})
    assert [(r.place, r.name, r.rows) for r in dry.removed] == [
        (r.place, r.name, r.rows) for r in real.removed
    ]


def test_a_multi_key_entity_needs_all_its_keys(store: FeatureStore) -> None:
    online_before, files_before = online_snapshot(store), store_files(store)
    with pytest.raises(
        ErasureError,
        match=r"entity 'trip' is identified by all of its join keys \['city', 'trip_no'\]",
    ):
        store.erase(entity={"city": "Paris"})
    report = store.erase(entity={"city": "Paris", "trip_no": "3"})  # text, as the CLI passes it
    assert report.verified
    assert [(r.place, r.name, r.rows) for r in report.removed] == [("online", "trip_stats v1", 1)]
    after = online_snapshot(store)
    gone = part("city", "Paris") + part("trip_no", 3)
    assert after["trip_stats v1"] == {
        k: v for k, v in online_before["trip_stats v1"].items() if k != gone
    }
    assert {ns: rows for ns, rows in after.items() if ns != "trip_stats v1"} == {
        ns: rows for ns, rows in online_before.items() if ns != "trip_stats v1"
    }
    assert store_files(store) == files_before
    assert [(Path(s.path).name, s.rows) for s in report.user_sources] == [("trips.parquet", 1)]


def test_a_key_of_a_view_keyed_by_two_entities_is_found_by_either(store: FeatureStore) -> None:
    report = store.erase(entity={"customer_id": "a"})
    assert report.verified
    assert [(r.place, r.name, r.rows) for r in report.removed] == [("online", "pair_stats v1", 2)]
    values = store.get_online_features(
        ["pair_stats:spend"],
        entity_rows=[
            {"driver_id": d, "customer_id": c} for d, c in [(1001, "a"), (1001, "b"), (7, "a")]
        ],
    ).to_dict()["spend"]
    assert values == [None, 2.0, None]


def test_values_are_typed_per_the_declared_key_type(store: FeatureStore) -> None:
    as_text = store.erase(entity={"driver_id": "1001"}, dry_run=True)
    as_int = store.erase(entity={"driver_id": 1001}, dry_run=True)
    assert as_text.removed == as_int.removed
    assert as_text.fingerprint == as_int.fingerprint
    cases = [
        (
            {"driver_id": "abc"},
            r"join key 'driver_id' of entity 'driver' is Int64, but 'abc' is not one",
        ),
        ({"driver_id": 10.5}, r"join key 'driver_id' of entity 'driver' is Int64, but got 10.5"),
        ({"driver_id": True}, r"join key 'driver_id' of entity 'driver' is Int64, but got True"),
        ({"customer_id": 5}, r"join key 'customer_id' of entity 'customer' is String, but got 5"),
        (
            {"rider_id": 1},
            r"\['rider_id'\] is not a join key of any entity; the project's entities: customer \['customer_id'\], driver \['driver_id'\], trip \['city', 'trip_no'\]",
        ),
        ({}, r"name the entity by its join keys"),
        ({"driver_id": 1, "customer_id": "a"}, r"is not the key of one entity"),
    ]
    for entity, message in cases:
        with pytest.raises(ErasureError, match=message):
            store.erase(entity=entity)


def test_the_audit_record_keeps_a_fingerprint_not_the_key(store: FeatureStore) -> None:
    report = store.erase(entity={"driver_id": 1001})
    [record] = [r for r in store.audit_log() if r.detail.get("run") == "erasure"]
    assert (record.action, record.resource, record.outcome) == ("delete", "entity:driver", "ok")
    assert record.detail["fingerprint"] == report.fingerprint
    assert record.detail["verified"] is True
    assert record.detail["removed"] == {"online": 5, "pushed": 2, "dataset": 2, "quality": 1}
    assert "1001" not in json.dumps(record.detail)


def test_residue_found_by_the_check_is_reported_and_audited(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that is still there after removal (here: a store whose deletes do nothing) makes
    the erasure unverified."""
    online = store.online
    real_delete = online.delete_entity_keys  # type: ignore[attr-defined]

    def deletes_nothing(namespace: Any, keys: Any, *, dry_run: bool = False) -> int:
        count: int = real_delete(namespace, keys, dry_run=True)
        return count

    monkeypatch.setattr(online, "delete_entity_keys", deletes_nothing)
    report = store.erase(entity={"driver_id": 1001})
    assert not report.verified
    assert {r.name for r in report.residue} == {
        "driver_push v1",
        "driver_stats v1",
        "driver_stats v2",
        "pair_stats v1",
    }
    assert "NOT VERIFIED" in report.summary()
    [record] = [r for r in store.audit_log() if r.detail.get("run") == "erasure"]
    assert record.outcome == "residue"


def test_runs_that_change_data_are_reported_to_openlineage(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    fs = make_store(
        tmp_path,
        "sqlite",
        extra_yaml=f"lineage: {{openlineage: {{transport: file, path: {events}}}}}\n",
    )
    with fs:
        populate(fs)
        # Record the passing push validations held in memory now (an erasure would first).
        fs.validation_history()
        events.unlink()  # only what the erasure sends
        fs.erase(entity={"driver_id": 1001}, dry_run=True)
        assert not events.exists()
        fs.erase(entity={"driver_id": 1001})
        sent = [json.loads(line) for line in events.read_text().splitlines()]
    jobs = {e["job"]["name"] for e in sent}
    project = fs.project
    assert jobs == {
        f"{project}.erase.driver_stats",
        f"{project}.erase.driver_push",
        f"{project}.erase.pair_stats",
        f"{project}.erase.push_source.driver_push",
        f"{project}.erase.saved_dataset.train",
    }
    assert sorted(e["eventType"] for e in sent) == ["COMPLETE"] * 5 + ["START"] * 5
    for event in sent:
        validate_event(event, PRODUCER)
    for event in [e for e in sent if e["job"]["name"].endswith(".driver_stats")]:
        # Both versions' rows are one dataset: the view's online rows.
        assert [(o["namespace"], o["name"]) for o in event["outputs"]] == [
            (f"featurestore://{project}", "online_store.driver_stats")
        ]
        assert event["job"]["facets"]["jobType"]["jobType"] == "ERASE"


def test_erasure_and_retention_need_delete_on_the_project(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite")
    admins = Policy(name="admins", roles=["admin"], actions=["admin"])
    readers = Policy(name="readers", roles=["analyst"], actions=["describe", "read_online"])
    with fs:
        populate(fs)
        fs.apply([*all_definitions(), admins, readers])
        online_before = online_snapshot(fs)
    analyst = Principal("bob", frozenset({"analyst"}))
    with FeatureStore(tmp_path, principal=analyst) as bob:
        with pytest.raises(AccessDeniedError):
            bob.erase(entity={"driver_id": 1001})
        with pytest.raises(AccessDeniedError):
            bob.enforce_retention(dry_run=True)
    admin = Principal("alice", frozenset({"admin"}))
    with FeatureStore(tmp_path, principal=admin) as alice:
        assert online_snapshot(alice) == online_before
        assert alice.erase(entity={"driver_id": 1001}).verified
        denied = [r for r in alice.audit_log() if r.outcome == "denied"]
        assert [(r.principal, r.action) for r in denied] == [("bob", "delete")] * 2


# -- the command line -------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_erase(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite")
    with fs:
        populate(fs)
        online_before, files_before = online_snapshot(fs), store_files(fs)
    dry = run_cli(tmp_path, "erase", "--entity", "driver_id=1001", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 9 row(s) and key(s) in 7 place(s)" in dry.stdout
    assert "dry run: nothing was removed" in dry.stdout
    with FeatureStore(tmp_path) as fs:
        assert online_snapshot(fs) == online_before
        assert store_files(fs) == files_before
    done = run_cli(tmp_path, "erase", "--entity", "driver_id=1001")
    assert done.returncode == 0, done.stderr
    assert "verified: no trace left" in done.stdout
    assert "driver_stats.parquet (2 row(s))" in done.stdout
    two_keys = run_cli(tmp_path, "erase", "--entity", "city=Lyon", "--entity", "trip_no=3")
    assert two_keys.returncode == 0, two_keys.stderr
    assert "removed online trip_stats v1: 1 key(s)" in two_keys.stdout
    with FeatureStore(tmp_path) as fs:
        assert online_snapshot(fs) == without_driver(
            {
                **online_before,
                "trip_stats v1": {
                    k: v
                    for k, v in online_before["trip_stats v1"].items()
                    if k != part("city", "Lyon") + part("trip_no", 3)
                },
            },
            1001,
        )
    bad_type = run_cli(tmp_path, "erase", "--entity", "driver_id=abc")
    assert bad_type.returncode == 1
    assert "Error: erase: join key 'driver_id'" in bad_type.stderr
    bad_form = run_cli(tmp_path, "erase", "--entity", "driver_id")
    assert bad_form.returncode == 2
    assert "'driver_id' is not KEY=VALUE" in bad_form.stderr
    missing = run_cli(tmp_path, "erase")
    assert missing.returncode == 2
    assert "Missing option '--entity'" in missing.stderr
