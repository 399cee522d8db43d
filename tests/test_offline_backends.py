"""The table of offline engines and the capability seam.

The facade opens the engine ``offline_store.type`` names through
:mod:`featurestore.offline.backends`; an engine with only the required interface still serves
retrieval and materialization, and every operation it lacks fails with an
:class:`EngineCapabilityError` naming the engine and the operation, before anything is written.
The one fake here is that minimal engine: a missing capability cannot be caused otherwise.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, Policy
from featurestore.config import OfflineStoreConfig, RepoConfig, load_config, parse_config
from featurestore.errors import AccessDeniedError, ConfigError, EngineCapabilityError
from featurestore.governance.access import Principal
from featurestore.offline.backends import (
    OFFLINE_ENGINES,
    OfflineBackend,
    open_offline_engine,
    registered_offline_engine,
)
from featurestore.offline.base import (
    EntityFrameInput,
    FeatureRequest,
    LatestRows,
    LatestWindow,
    OfflineEngine,
    RetrievalJob,
    SupportsKeyCounts,
    SupportsStatistics,
    SupportsWindowReads,
)
from featurestore.offline.settings import OfflineStoreSettings
from featurestore.types import Float64, Int64

ROOT = Path(__file__).resolve().parent.parent
# Recent, so the materialized rows are still within the view's TTL when looked up.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
RATES = FeatureView(
    name="rates",
    entities=[DRIVER],
    ttl=timedelta(days=1),
    schema=[Field(name="rate", dtype=Float64)],
    source=FileSource(path="rates.parquet"),
)


class MinimalSettings(OfflineStoreSettings):
    """The minimal engine's settings: the keys every engine has."""

    type: Literal["minimal"] = "minimal"


class MinimalEngine(OfflineEngine):
    """Retrieval, latest rows and key samples only (DuckDB's, from the table), no capability."""

    engine_type = "minimal"

    def __init__(self, config: RepoConfig) -> None:
        duckdb_settings = config.offline_store.model_copy(update={"type": "duckdb"})
        duckdb_config = replace(config, offline_store=duckdb_settings)
        self._inner = open_offline_engine(duckdb_config)

    def get_historical_features(
        self,
        entity_df: EntityFrameInput,
        requests: Sequence[FeatureRequest],
        *,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        return self._inner.get_historical_features(
            entity_df, requests, filter_by_created_timestamp=filter_by_created_timestamp
        )

    def latest_per_entity(
        self, view: FeatureView, window: LatestWindow, *, batch_rows: int
    ) -> LatestRows:
        return self._inner.latest_per_entity(view, window, batch_rows=batch_rows)

    def sample_entity_keys(self, view: FeatureView, sample: int, seed: int) -> pa.Table:
        return self._inner.sample_entity_keys(view, sample, seed)

    def close(self) -> None:
        self._inner.close()


def minimal_config(tmp_path: Path) -> RepoConfig:
    pq.write_table(
        pa.table(
            {
                "driver_id": pa.array([1, 2], pa.int64()),
                "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
                "rate": pa.array([0.25, 0.75], pa.float64()),
            }
        ),
        tmp_path / "rates.parquet",
    )
    config = RepoConfig(
        project="seam",
        repo_path=tmp_path,
        registry=f"sqlite:///{tmp_path / 'registry.db'}",
        offline_store=MinimalSettings(),
    )
    return config


MINIMAL = OfflineBackend("minimal", f"{__name__}:MinimalEngine", MinimalSettings)


@pytest.fixture
def minimal_store(tmp_path: Path) -> Iterator[FeatureStore]:
    with registered_offline_engine(MINIMAL):
        store = FeatureStore(config=minimal_config(tmp_path))
        store.apply([DRIVER, RATES])
        yield store
        store.close()


def test_the_facade_opens_the_engine_the_table_names(tmp_path: Path) -> None:
    config = RepoConfig(project="seam", repo_path=tmp_path, registry="sqlite://")
    engine = FeatureStore(config=config).offline
    assert engine.engine_type == "duckdb"
    for capability in (SupportsStatistics, SupportsWindowReads, SupportsKeyCounts):
        assert isinstance(engine, capability)


def test_every_row_names_a_loadable_engine_and_its_config_model(tmp_path: Path) -> None:
    for name, backend in OFFLINE_ENGINES.items():
        assert backend.type_name == name
        engine_class = backend.load()
        assert isinstance(engine_class, type)
        assert engine_class.engine_type == name
        # featurestore.yaml's model picks, by type, the settings model the row names.
        settings = parse_config({"project": "p", "offline_store": {"type": name}}, tmp_path)
        assert type(settings.offline_store) is backend.settings


def test_an_unknown_engine_type_is_a_clear_error(tmp_path: Path) -> None:
    # featurestore.yaml's model rejects the type first (one line naming the setting); the table
    # still guards a settings object built without validation.
    (tmp_path / "featurestore.yaml").write_text("project: seam\noffline_store: {type: duckbd}\n")
    with pytest.raises(ConfigError, match=r"offline_store.*duckbd"):
        load_config(tmp_path)
    config = RepoConfig(
        project="seam",
        repo_path=tmp_path,
        registry="sqlite://",
        offline_store=OfflineStoreConfig.model_construct(type="duckbd"),
    )
    with pytest.raises(ConfigError, match=r"'duckbd' is not a known offline engine.*'duckdb'"):
        open_offline_engine(config)


def test_a_minimal_engine_serves_retrieval_and_materialization(
    minimal_store: FeatureStore,
) -> None:
    assert minimal_store.offline.engine_type == "minimal"
    entity_df = pd.DataFrame({"driver_id": [2, 1], "event_timestamp": [T0, T0]})
    frame = minimal_store.get_historical_features(entity_df, ["rates:rate"]).to_pandas()
    assert frame["rate"].tolist() == [0.75, 0.25]
    minimal_store.materialize(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    online = minimal_store.get_online_features(["rates:rate"], [{"driver_id": 1}]).to_dict()
    assert online["rate"] == [0.25]


def test_statistics_name_the_engine_that_cannot_compute_them(
    minimal_store: FeatureStore,
) -> None:
    with pytest.raises(
        EngineCapabilityError, match=r"offline engine 'minimal' cannot compute statistics"
    ):
        minimal_store.statistics("rates")
    assert minimal_store.statistics_history("rates") == []


def test_a_denied_principal_is_refused_before_the_engine_is_asked(tmp_path: Path) -> None:
    config = minimal_config(tmp_path)
    policies = [
        Policy(name="admins", roles=["admin"], actions=["admin"]),
        Policy(name="auditors", roles=["auditor"], actions=["describe"]),
    ]
    with registered_offline_engine(MINIMAL):
        admin = FeatureStore(config=config, principal=Principal("root", frozenset({"admin"})))
        with admin:
            admin.apply([DRIVER, RATES, *policies])
            with pytest.raises(EngineCapabilityError, match="'minimal' cannot compute"):
                admin.statistics("rates")
        auditor = FeatureStore(config=config, principal=Principal("carol", frozenset({"auditor"})))
        with auditor, pytest.raises(AccessDeniedError, match="carol"):
            auditor.statistics("rates")


def test_validation_names_the_engine_that_cannot_read_a_window(
    minimal_store: FeatureStore,
) -> None:
    with pytest.raises(
        EngineCapabilityError, match=r"offline engine 'minimal' cannot read the rows of a window"
    ):
        minimal_store.validate("rates")


def test_erasure_with_an_engine_that_cannot_search_sources_removes_nothing(
    minimal_store: FeatureStore,
) -> None:
    minimal_store.materialize(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    with pytest.raises(
        EngineCapabilityError,
        match=r"offline engine 'minimal' cannot count an entity's rows in sources",
    ):
        minimal_store.erase({"driver_id": 1})
    online = minimal_store.get_online_features(["rates:rate"], [{"driver_id": 1}]).to_dict()
    assert online["rate"] == [0.25]


def test_engine_libraries_load_only_with_their_engine() -> None:
    """Importing the SDK, the CLI and the REST app imports no engine's client library; only
    opening a DuckDB store does."""
    script = (
        "import sys, featurestore, featurestore.store, featurestore.cli, api.app\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'pyspark'})\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


def test_no_module_outside_an_engine_package_imports_an_engine_library() -> None:
    importing = re.compile(r"^\s*(import|from)\s+(duckdb|pyspark)\b", re.MULTILINE)
    # Each engine's own package (the module of its row's factory) may import its library.
    packages = [
        ROOT.joinpath(*row.factory.split(":")[0].split(".")) for row in OFFLINE_ENGINES.values()
    ]
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("featurestore", "api")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not any(path.is_relative_to(p) for p in packages) and importing.search(path.read_text())
    ]
    assert offenders == []
