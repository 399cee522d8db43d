"""Helpers of the REST service tests: a feature repository with data online, and the real
uvicorn server on a free port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pandas as pd
import uvicorn

from api import ApiSettings, create_app
from featurestore import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
)
from featurestore.types import Float32, Int64, String

NOW = datetime.now(UTC).replace(microsecond=0)

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=Int64)


DRIVER_PUSH = PushSource(
    name="driver_stats_push",
    batch_source=FileSource(path="data/driver_stats.parquet", created_timestamp_column="created"),
)


def driver_stats(
    description: str = "Driver conversion statistics", ttl: timedelta = timedelta(hours=2)
) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=ttl,
        schema=[
            Field(name="conv_rate", dtype=Float32, description="Share of offers accepted"),
            Field(name="acc_rate", dtype=Float32, tags={"pii": "no"}),
            Field(name="trips", dtype=Int64),
        ],
        source=DRIVER_PUSH,
        description=description,
        tags={"team": "pricing"},
        owner="ana@example.com",
    )


CUSTOMER_PROFILE = FeatureView(
    name="customer_profile",
    entities=[CUSTOMER],
    schema=[Field(name="age", dtype=Int64), Field(name="tier", dtype=String)],
    source=FileSource(path="data/customers.parquet"),
    tags={"team": "growth"},
    owner="bo@example.com",
)
SERVICE = FeatureService(
    name="ranking", features=[driver_stats()[["conv_rate", "trips"]], CUSTOMER_PROFILE[["tier"]]]
)


def make_repo(root: Path, online: str, api: str = "") -> FeatureStore:
    """A repository with two views and a service, materialized; ``online`` is the YAML of the
    online store; the project name is unique (the Redis tests share a server)."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    recent = NOW - timedelta(minutes=10)
    stale = NOW - timedelta(hours=5)
    pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2, 3, 4], dtype="int64"),
            "event_timestamp": [recent, recent, stale, recent],
            "created": [recent, recent, stale, recent],
            "conv_rate": pd.Series([0.5, None, 0.3, 0.25], dtype="float32"),
            "acc_rate": pd.Series([0.9, 0.8, 0.7, 0.6], dtype="float32"),
            "trips": pd.Series([10, 20, 30, 40], dtype="int64"),
        }
    ).to_parquet(data / "driver_stats.parquet")
    pd.DataFrame(
        {
            "customer_id": pd.Series([7, 8], dtype="int64"),
            "event_timestamp": [recent, recent],
            "age": pd.Series([31, 45], dtype="int64"),
            "tier": ["gold", "silver"],
        }
    ).to_parquet(data / "customers.parquet")
    project = f"api_{uuid.uuid4().hex[:10]}"
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n{api}")
    store = FeatureStore(repo_path=root)
    store.apply([DRIVER, CUSTOMER, driver_stats(), CUSTOMER_PROFILE, SERVICE])
    store.materialize(NOW - timedelta(days=1), NOW, progress=False)
    return store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The real service (uvicorn, HTTP over a socket) in a background thread."""

    def __init__(
        self, store: FeatureStore, settings: ApiSettings | None = None, *, app: Any = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app if app is not None else create_app(store, settings=settings),
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            access_log=False,
            ws="none",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        wait_until_up(self.url)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    """Return once ``url`` answers HTTP at all (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/metrics", timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- /push helpers -----------------------------------------------------------------------


def stored_files(store: FeatureStore) -> list[Path]:
    """Files (staged ones included) in the store's own data folder for this project."""
    return [p for p in (store.config.data_dir / store.project).rglob("*") if p.is_file()]


def push(server: Server, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/push", json=body, timeout=10, **kwargs)


def push_body(to: str, driver: int, conv_rate: float, when: datetime) -> dict[str, Any]:
    """Feast's push body for one driver_stats row."""
    return {
        "push_source_name": "driver_stats_push",
        "df": {
            "driver_id": [driver],
            "event_timestamp": [when.isoformat()],
            "conv_rate": [conv_rate],
            "acc_rate": [0.5],
            "trips": [7],
        },
        "to": to,
        "allow_registry_cache": True,
    }
