"""The access-control test repository, shared by the access tests.

One repository with policies: admins may do anything; analysts may describe and read, except
features tagged ``pii`` (an explicit deny, which beats their allow); the ``ingestor`` service
account may push to ``driver_*`` views; ``mallory`` is an analyst with an extra deny on
``customer_profile``. Everything else is denied by default.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from featurestore import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Policy,
    PushSource,
    Resource,
    on_demand_feature_view,
)
from featurestore.governance.access import Principal
from featurestore.types import Float32, Float64, Int64, String

NOW = datetime.now(UTC).replace(microsecond=0)
COMMAND = str(Path(sys.executable).parent / "featurestore")
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=Int64)
DRIVER_STATS = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="ssn", dtype=String, tags={"pii": "true"}),
        Field(name="trips", dtype=Int64),
    ],
    source=PushSource(name="driver_push", batch_source=FileSource(path="data/drivers.parquet")),
)
CUSTOMER_PROFILE = FeatureView(
    name="customer_profile",
    entities=[CUSTOMER],
    schema=[Field(name="age", dtype=Int64)],
    source=FileSource(path="data/customers.parquet"),
)


@on_demand_feature_view(
    sources=[DRIVER_STATS[["ssn"]]], schema=[Field(name="ssn_len", dtype=Int64)], mode="python"
)
def ssn_digits(row: dict[str, Any]) -> dict[str, Any]:
    return {"ssn_len": None if row["ssn"] is None else len(row["ssn"])}


@on_demand_feature_view(
    sources=[DRIVER_STATS[["conv_rate"]]], schema=[Field(name="conv_pct", dtype=Float64)]
)
def conv_percent(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"conv_pct": inputs["conv_rate"] * 100})


#: On-demand views over a pii input (``ssn_digits``) and over a plain one (``conv_percent``), for
#: the access tests that apply them (not part of :func:`make_repo`).
SSN_DIGITS = ssn_digits
CONV_PERCENT = conv_percent
#: Mallory may describe ``conv_percent`` but not read it.
NO_PERCENT = Policy(
    name="mallory-no-percent",
    effect="deny",
    principals=["mallory"],
    actions=["read_offline", "read_online"],
    resources=[Resource(kind="on_demand_feature_view", name="conv_percent")],
)
LEAKY = FeatureService(name="leaky", features=[DRIVER_STATS[["conv_rate", "ssn"]]])
SAFE = FeatureService(name="safe", features=[DRIVER_STATS[["conv_rate", "trips"]]])
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(
        name="analysts-read",
        roles=["analyst"],
        actions=["describe", "read_offline", "read_online"],
    ),
    Policy(
        name="no-pii",
        effect="deny",
        roles=["analyst"],
        actions=["read_offline", "read_online"],
        resources=[Resource(kind="feature", tags={"pii": "true"})],
    ),
    Policy(
        name="ingest",
        principals=["ingestor"],
        actions=["write_online", "write_offline"],
        resources=[Resource(kind="feature_view", name="driver_*")],
    ),
    Policy(
        name="mallory-no-customers",
        effect="deny",
        principals=["mallory"],
        actions=["*"],
        resources=[Resource(kind="feature_view", name="customer_*")],
    ),
]
ROOT = Principal("root", frozenset({"admin"}))
PRINCIPALS = {
    "admin": ("alice", ["admin"], "user"),
    "analyst": ("bob", ["analyst"], "user"),
    "ingestor": ("ingestor", [], "service_account"),
    "mallory": ("mallory", ["analyst"], "user"),
}


def make_repo(tmp_path: Path, registry: str | None = None) -> tuple[Path, dict[str, str]]:
    """The repository, its policies applied, materialized, and a token per principal
    (``registry``: a registry URL instead of the default SQLite file)."""
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2], dtype="int64"),
            "event_timestamp": [NOW - timedelta(hours=1)] * 2,
            "conv_rate": pd.Series([0.5, 0.25], dtype="float32"),
            "ssn": ["123", "456"],
            "trips": pd.Series([10, 20], dtype="int64"),
        }
    ).to_parquet(root / "data" / "drivers.parquet")
    pd.DataFrame(
        {
            "customer_id": pd.Series([7], dtype="int64"),
            "event_timestamp": [NOW - timedelta(hours=1)],
            "age": pd.Series([31], dtype="int64"),
        }
    ).to_parquet(root / "data" / "customers.parquet")
    (root / "featurestore.yaml").write_text(
        f"project: acl_{uuid.uuid4().hex[:8]}\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
        + ("" if registry is None else f"registry: '{registry}'\n")
    )
    tokens: dict[str, str] = {}
    with FeatureStore(root, principal=ROOT) as store:
        # While no policy exists the store is open: the first apply brings the policies.
        store.apply([DRIVER, CUSTOMER, DRIVER_STATS, CUSTOMER_PROFILE, LEAKY, SAFE, *POLICIES])
        store.materialize(NOW - timedelta(days=1), NOW, progress=False)
        for role, (name, roles, kind) in PRINCIPALS.items():
            tokens[role], _ = store.create_key(name, roles=roles, kind=kind)
    return root, tokens


def as_(repo: Path, token: str | None) -> FeatureStore:
    return FeatureStore(repo, token=token) if token else FeatureStore(repo)


def analysts_but_not_mallory(view: str, deny: str = "no-trips-for-mallory") -> list[Policy]:
    """Admins may do anything, analysts describe and read offline; ``mallory`` is denied
    ``read_offline`` on ``view`` by the policy ``deny`` (a read path's denied principal)."""
    return [
        Policy(name="admins", roles=["admin"], actions=["admin"]),
        Policy(name="analysts", roles=["analyst"], actions=["describe", "read_offline"]),
        Policy(
            name=deny,
            effect="deny",
            principals=["mallory"],
            actions=["read_offline"],
            resources=[Resource(kind="feature_view", name=view)],
        ),
    ]
