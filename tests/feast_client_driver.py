"""Feast's own client against our server; run by test_feast_client.py with the Python of a Feast
virtualenv (``.venv-feast``), never imported by the test suite itself.

    python tests/feast_client_driver.py '{"url": ..., "work": ..., "tokens": {...}, ...}'

It builds a Feast repository mirroring the test's (same entities, views, push source and
feature service, plus ``ghost_stats``, which our server does not have), with
``online_store: {type: remote, path: <url>}`` and a bearer token sent as Feast's
``kubernetes`` auth ``user_token``. Then it drives Feast's ``FeatureStore``: lookups,
materialize, materialize_incremental, push, write_to_online_store, and one error of each kind,
checking Feast's exception types. Every check appends its name to the JSON printed last, so the
test sees that none was skipped. Any failure raises (exit status 1, traceback on stderr).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    ValueType,
)
from feast.errors import (
    FeastError,
    FeastObjectNotFoundException,
    FeastPermissionError,
    FeatureServiceNotFoundException,
    FeatureViewNotFoundException,
)
from feast.types import Float32, Int64, String

CHECKS: list[str] = []


def check(name: str, condition: bool, detail: Any = "") -> None:
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    CHECKS.append(name)


def raises(name: str, expected: type[BaseException], call: Any, *words: str) -> None:
    """``call()`` must raise exactly ``expected`` (not a subclass, not RuntimeError) with
    ``words`` in its message."""
    try:
        call()
    except Exception as exc:  # the type is the point of the check
        check(name, type(exc) is expected, f"raised {type(exc).__name__}: {exc}")
        for word in words:
            check(f"{name}: says {word!r}", word in str(exc), str(exc))
        return
    raise AssertionError(f"{name}: nothing raised, expected {expected.__name__}")


def definitions(data: Path) -> list[Any]:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    batch = FileSource(
        name="driver_stats_file",
        path=str(data / "driver_stats.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    driver_stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(hours=2),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="conv_rate", dtype=Float32),
            Field(name="acc_rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
        ],
        source=PushSource(name="driver_stats_push", batch_source=batch),
    )
    customer_profile = FeatureView(
        name="customer_profile",
        entities=[customer],
        ttl=timedelta(0),
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="age", dtype=Int64),
            Field(name="tier", dtype=String),
        ],
        source=FileSource(
            name="customers_file",
            path=str(data / "customers.parquet"),
            timestamp_field="event_timestamp",
        ),
    )
    # Feast knows this view, our server does not: its writes reach the server and fail there.
    ghost = FeatureView(
        name="ghost_stats",
        entities=[driver],
        ttl=timedelta(hours=2),
        schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32)],
        source=batch,
    )
    ranking = FeatureService(
        name="ranking",
        features=[driver_stats[["conv_rate", "trips"]], customer_profile[["tier"]]],
    )
    return [driver, customer, driver_stats, customer_profile, ghost, ranking]


def open_store(work: Path, url: str, token: str | None) -> FeatureStore:
    """A Feast repository (one per token: Feast reads auth from feature_store.yaml) sharing
    one registry file."""
    repo = work / f"feast_repo_{token or 'anonymous'}"
    repo.mkdir(parents=True, exist_ok=True)
    config = {
        "project": "fsclient",
        "registry": str(work / "feast_registry.db"),
        "provider": "local",
        "online_store": {"type": "remote", "path": url},
        "entity_key_serialization_version": 3,
        "auth": {"type": "kubernetes", "user_token": token} if token else {"type": "no_auth"},
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
    return FeatureStore(repo_path=str(repo))


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    return bool(a == b)


def same(got: dict[str, list[Any]], expected: dict[str, list[Any]]) -> bool:
    return got.keys() == expected.keys() and all(
        len(got[k]) == len(expected[k]) and all(map(close, got[k], expected[k])) for k in got
    )


def main() -> None:
    args = json.loads(sys.argv[1])
    url, work, data = args["url"], Path(args["work"]), Path(args["data"])
    now = datetime.fromisoformat(args["now"])
    tokens: dict[str, str] = args["tokens"]
    # Feast logs what our server answered to a materialization: keep it to check the runs.
    answers: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: answers.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("feast.feature_store").addHandler(handler)
    logging.getLogger("feast.feature_store").setLevel(logging.INFO)

    admin = open_store(work, url, tokens["admin"])
    admin.apply(definitions(data))
    refs = ["driver_stats:conv_rate", "driver_stats:trips", "customer_profile:tier"]
    rows = [{"driver_id": 1, "customer_id": 7}, {"driver_id": 2, "customer_id": 8}]

    def lookup(store: FeatureStore = admin, features: Any = refs, **kw: Any) -> dict[str, Any]:
        return dict(store.get_online_features(features=features, entity_rows=rows, **kw).to_dict())

    # -- materialize, then materialize_incremental (the test emptied the online store) -------
    empty = lookup()
    check("lookup before materialize: nothing online", empty["conv_rate"] == [None, None], empty)
    admin.materialize(now - timedelta(days=1), now, feature_views=["driver_stats"])
    after = lookup()
    check("materialize: driver_stats served", close(after["conv_rate"][0], 0.5), after)
    check("materialize: customer_profile not yet", after["tier"] == [None, None], after)
    check("materialize: our report logged", any("'written': 4" in a for a in answers), answers)
    admin.materialize_incremental(now)
    check("materialize_incremental: customers served", lookup()["tier"] == ["gold", "silver"])

    # -- lookups: values as our SDK gives them, a feature service, version metadata ----------
    got = lookup()
    check("get_online_features equals our SDK", same(got, args["expected"]), (got, args))
    service = admin.get_feature_service("ranking")
    by_service = lookup(features=service)
    check("feature service lookup", by_service["trips"] == [10, 20], by_service)
    response = admin.get_online_features(
        features=refs, entity_rows=rows, include_feature_view_version_metadata=True
    )
    versions = [(m.name, m.version) for m in response.proto.metadata.feature_view_metadata]
    check(
        "include_feature_view_version_metadata",
        versions == [("driver_stats", 1), ("customer_profile", 1)],
        versions,
    )

    # -- push and write_to_online_store (both POST /write-to-online-store) --------------------
    moment = now - timedelta(minutes=1)
    pushed = pd.DataFrame(
        {
            "driver_id": [1],
            "event_timestamp": [moment],
            "created": [moment],
            "conv_rate": [0.125],
            "acc_rate": [0.5],
            "trips": [99],
        }
    )
    admin.push("driver_stats_push", pushed)
    check("push is served", close(lookup()["conv_rate"][0], 0.125), lookup())
    written = pushed.assign(driver_id=[2], conv_rate=[0.875], trips=[77])
    admin.write_to_online_store("driver_stats", written)
    check("write_to_online_store is served", lookup()["trips"] == [99, 77], lookup())

    # -- one error of each kind, as Feast's own exception types ------------------------------
    raises(
        "unknown feature view",
        FeatureViewNotFoundException,
        lambda: lookup(features=["nope:conv_rate"]),
        "nope",
    )
    raises(
        "unknown feature",
        FeastObjectNotFoundException,
        lambda: lookup(features=["driver_stats:nope"]),
        "nope",
    )
    raises(
        "unknown feature view on the write path",
        FeatureViewNotFoundException,
        lambda: admin.write_to_online_store(
            "ghost_stats", written[["driver_id", "event_timestamp", "created", "conv_rate"]]
        ),
        "ghost_stats",
    )
    raises(
        "unknown feature service",
        FeatureServiceNotFoundException,
        lambda: lookup(features=FeatureService(name="nope", features=[])),
        "nope",
    )
    raises(
        "bad request: a join key of the wrong type",
        FeastError,
        lambda: admin.get_online_features(features=refs, entity_rows=[{"driver_id": "one"}]),
        "driver_id",
    )
    raises(
        "unknown token",
        FeastPermissionError,
        lambda: lookup(store=open_store(work, url, "fst_not_a_token")),
        "token",
    )
    reader = open_store(work, url, tokens["reader"])
    check("a reader may look up", close(lookup(store=reader)["conv_rate"][1], 0.875))
    raises(
        "a reader may not write",
        FeastPermissionError,
        lambda: reader.write_to_online_store("driver_stats", written),
        "write_online",
    )
    # With auth configured, Feast's materialize calls share the session that maps errors.
    raises(
        "materialize an unknown view",
        FeatureViewNotFoundException,
        lambda: admin.materialize(now - timedelta(days=1), now, feature_views=["nope"]),
        "nope",
    )
    print(json.dumps({"checks": CHECKS}))


if __name__ == "__main__":
    main()
