"""Adding an offline engine touches only its own package and one row of the table (issue 12).

A toy engine is written here as a package of its own under ``tmp_path`` (its settings model, a
lazy ``__init__`` and the engine class) and added to ``OFFLINE_ENGINES`` with one row through
``monkeypatch``: ``featurestore.yaml`` then validates ``offline_store: {type: toy, ...}`` with
the toy's model and reports its errors like any engine's, ``open_offline_engine`` builds it and
the facade materializes through it, with nothing in ``featurestore.config`` touched. The toy's
engine is the capability-less ``MinimalEngine`` of ``test_offline_backends`` plus one setting of
its own, ``max_batch_rows``, which caps the batches it streams to the online store.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_offline_backends import DRIVER, RATES, MinimalEngine

import featurestore.config as config_module
from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.config_show import json_schema
from featurestore.errors import ConfigError
from featurestore.offline.backends import OFFLINE_ENGINES, OfflineBackend, open_offline_engine
from featurestore.offline.duckdb.settings import DuckDBOfflineStoreConfig
from featurestore.offline.spark.settings import SparkOfflineStoreConfig

ROOT = Path(__file__).resolve().parent.parent
TOY_FILES = {
    "__init__.py": '''
        """A toy offline engine: its settings import without its engine."""
        from featurestore.offline.lazy import lazy_exports

        __getattr__ = lazy_exports(__name__, {"ToyEngine": "toy_offline.engine"})
    ''',
    "settings.py": '''
        from typing import Literal

        from featurestore.config_types import PositiveInt
        from featurestore.offline.settings import OfflineStoreSettings


        class ToySettings(OfflineStoreSettings):
            """The toy's settings: the keys every engine has and its own batch cap."""

            example = "{type: toy, max_batch_rows: 100}"
            type: Literal["toy"] = "toy"
            max_batch_rows: PositiveInt = 10_000
    ''',
    "engine.py": """
        from {minimal_module} import MinimalEngine


        class ToyEngine(MinimalEngine):
            engine_type = "toy"

            def __init__(self, config):
                super().__init__(config)
                self.settings = config.offline_store
                self.batch_rows_used = []

            def latest_per_entity(self, view, window, *, batch_rows):
                capped = min(batch_rows, self.settings.max_batch_rows)
                self.batch_rows_used.append(capped)
                return super().latest_per_entity(view, window, batch_rows=capped)
    """,
}


@pytest.fixture
def toy_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OfflineBackend]:
    """The toy's package on ``sys.path`` and its row in the table (both undone after)."""
    package = tmp_path / "plugins" / "toy_offline"
    package.mkdir(parents=True)
    for name, text in TOY_FILES.items():
        text = text.replace("{minimal_module}", MinimalEngine.__module__)
        (package / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(package.parent))
    from toy_offline.settings import ToySettings  # the package exists from here on

    row = OfflineBackend("toy", "toy_offline:ToyEngine", ToySettings)
    monkeypatch.setitem(OFFLINE_ENGINES, "toy", row)
    yield row
    for module in [m for m in sys.modules if m.split(".")[0] == "toy_offline"]:
        del sys.modules[module]


def write_repo(repo: Path, offline_store: str) -> Path:
    (repo / "featurestore.yaml").write_text(
        f"project: toy\noffline_store: {offline_store}\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
    )
    return repo


def test_the_toy_validates_with_its_own_model_and_the_table_is_read_when_the_file_is(
    tmp_path: Path, toy_row: OfflineBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_repo(tmp_path, "{type: toy, max_batch_rows: 3, data_path: own}"))
    assert type(config.offline_store) is toy_row.settings
    assert config.offline_store.model_dump() == {
        "type": "toy",
        "data_path": "own",
        "temp_directory": None,
        "max_batch_rows": 3,
    }
    assert config.data_dir == tmp_path / "own"
    # `featurestore config schema` offers the toy to editors, with its own keys.
    schema = json.loads(json_schema())
    mapping = schema["properties"]["offline_store"]["discriminator"]["mapping"]
    assert mapping == {
        name: f"#/$defs/{row.settings.__name__}" for name, row in OFFLINE_ENGINES.items()
    }
    assert "max_batch_rows" in schema["$defs"]["ToySettings"]["properties"]
    # The engines that ship are unaffected, and the model built at import stays as it was.
    for name, model in (("duckdb", DuckDBOfflineStoreConfig), ("spark", SparkOfflineStoreConfig)):
        other = load_config(write_repo(tmp_path, f"{{type: {name}}}"))
        assert type(other.offline_store) is model
    monkeypatch.delitem(OFFLINE_ENGINES, "toy")
    assert config_module.config_file_model() is config_module.ConfigFile
    with pytest.raises(ConfigError, match=r"type 'toy' is not supported; use duckdb or spark$"):
        load_config(write_repo(tmp_path, "{type: toy}"))


@pytest.mark.parametrize(
    ("offline_store", "line"),
    [
        (
            "{type: toy, max_batch_row: 3}",
            "unknown offline_store setting(s) ['max_batch_row'] for type toy; known: "
            "['data_path', 'max_batch_rows', 'temp_directory', 'type']",
        ),
        (
            "{type: toy, max_batch_rows: 0}",
            "offline_store.max_batch_rows must be a positive integer, got 0",
        ),
        (
            "{type: toy, data_path: ''}",
            "offline_store.data_path must be a folder path, got ''",
        ),
        (
            "{type: tyo}",
            "offline_store type 'tyo' is not supported; use duckdb or spark or toy",
        ),
        (
            "{type: toy, memory_limit: 1GB}",
            "unknown offline_store setting(s) ['memory_limit'] for type toy; known: "
            "['data_path', 'max_batch_rows', 'temp_directory', 'type']",
        ),
    ],
)
def test_the_toy_settings_errors_are_the_usual_one_line(
    tmp_path: Path, toy_row: OfflineBackend, offline_store: str, line: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write_repo(tmp_path, offline_store))
    assert str(raised.value) == f"{tmp_path.resolve() / 'featurestore.yaml'}: {line}"


def random_rates(rng: random.Random, start: datetime) -> list[dict[str, Any]]:
    """Source rows for drivers 1..8 (some without rows), distinct event times within an hour."""
    seconds = rng.sample(range(1, 3600), 40)
    return [
        {
            "driver_id": rng.randint(1, 8),
            "event_timestamp": start + timedelta(seconds=second),
            "rate": round(rng.random(), 6),
        }
        for second in seconds
    ]


def latest_rate_oracle(rows: list[dict[str, Any]], driver_id: int) -> float | None:
    """Brute force: the rate of the driver's row with the latest event time, if any."""
    own = [row for row in rows if row["driver_id"] == driver_id]
    return max(own, key=lambda row: row["event_timestamp"])["rate"] if own else None


@pytest.mark.parametrize("seed", [3, 17])
def test_open_offline_engine_builds_the_toy_and_the_facade_materializes_through_it(
    tmp_path: Path, toy_row: OfflineBackend, seed: int
) -> None:
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    rows = random_rates(rng, start)
    pq.write_table(
        pa.Table.from_pylist(
            rows,
            pa.schema(
                [
                    ("driver_id", pa.int64()),
                    ("event_timestamp", pa.timestamp("us", tz="UTC")),
                    ("rate", pa.float64()),
                ]
            ),
        ),
        tmp_path / "rates.parquet",
    )
    config = load_config(write_repo(tmp_path, "{type: toy, max_batch_rows: 3}"))
    engine = open_offline_engine(config)
    try:
        assert type(engine).__module__ == "toy_offline.engine"
        assert engine.engine_type == "toy"
    finally:
        engine.close()

    with FeatureStore(config=config) as store:
        store.apply([DRIVER, RATES])
        store.materialize(start, start + timedelta(hours=1, seconds=1))
        assert store.offline.batch_rows_used == [3]  # type: ignore[attr-defined]
        drivers = list(range(1, 10))
        online = store.get_online_features(
            ["rates:rate"], [{"driver_id": d} for d in drivers]
        ).to_dict()
    assert online["rate"] == [latest_rate_oracle(rows, d) for d in drivers]


def test_engine_settings_load_without_the_engines_libraries(tmp_path: Path) -> None:
    """Reading a featurestore.yaml of any engine, and importing every engine's package and
    settings, imports neither duckdb nor pyspark; the engine class, read from its package,
    imports its library then."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import featurestore.offline.duckdb, featurestore.offline.spark
        from featurestore.config import load_config
        from featurestore.offline.backends import OFFLINE_ENGINES

        def loaded():
            return {m.split(".")[0] for m in sys.modules} & {"duckdb", "pyspark"}

        repo = Path(sys.argv[1])
        for name, row in OFFLINE_ENGINES.items():
            repo.joinpath("featurestore.yaml").write_text(
                f"project: p\\noffline_store: {{type: {name}}}\\n"
            )
            assert type(load_config(repo).offline_store) is row.settings, name
            assert not loaded(), (name, loaded())
        from featurestore.offline.duckdb import DuckDBEngine
        assert loaded() == {"duckdb"}, loaded()
        """
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=ROOT)


def test_the_old_names_of_the_engines_settings_still_resolve() -> None:
    assert config_module.OfflineStoreConfig is DuckDBOfflineStoreConfig
    assert config_module.DuckDBOfflineStoreConfig is DuckDBOfflineStoreConfig
    assert config_module.SparkOfflineStoreConfig is SparkOfflineStoreConfig
    with pytest.raises(AttributeError, match="has no attribute 'SqliteOfflineStoreConfig'"):
        _ = config_module.SqliteOfflineStoreConfig
