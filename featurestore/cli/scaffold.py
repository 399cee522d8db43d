"""``featurestore init``: scaffold a new feature repository that applies and retrieves at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.cli.app import CliContext
from featurestore.errors import ConfigError

CONFIG_TEMPLATE = """\
project: {project}
# SQLite (relative paths are relative to this folder) or postgresql+psycopg://user@host/db
registry: sqlite:///data/registry.db
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: data/online.db
"""

DEFINITIONS_TEMPLATE = '''\
"""Feature definitions of this repository; `featurestore apply` registers them."""

from datetime import timedelta

from featurestore import Entity, FeatureService, FeatureView, Field, FileSource
from featurestore.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64,
                description="A driver of the fleet.")

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="conv_rate", dtype=Float32, description="Share of offers accepted."),
        Field(name="trips_today", dtype=Int64),
    ],
    source=FileSource(path="data/driver_stats.parquet", timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
    description="Hourly driver statistics.",
)

driver_model = FeatureService(name="driver_model", features=[driver_stats])
'''


def register(cli: click.Group) -> None:
    """Attach ``init`` to ``cli``."""
    cli.add_command(init)


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def init(state: CliContext, path: Path) -> None:
    """Create a feature repository at PATH with example definitions and data."""
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"cannot scaffold into {path}: the folder exists and is not empty")
    project = re.sub(r"[^A-Za-z0-9_]", "_", path.resolve().name) or "features"
    if not project[0].isalpha():
        project = f"p_{project}"
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "featurestore.yaml").write_text(
        CONFIG_TEMPLATE.format(project=project), encoding="utf-8"
    )
    (path / "features.py").write_text(DEFINITIONS_TEMPLATE, encoding="utf-8")
    write_example_data(path / "data" / "driver_stats.parquet")
    state.console.print(
        f"Created feature repository {path} (project {project!r}).\n"
        f"Next: featurestore --repo {path} apply"
    )


def write_example_data(target: Path, drivers: int = 5, hours: int = 48, seed: int = 7) -> None:
    """A small hourly driver_stats table ending at the current hour."""
    rng = np.random.default_rng(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    times = [end - timedelta(hours=h) for h in range(hours)]
    driver_ids = np.repeat(np.arange(1001, 1001 + drivers, dtype=np.int64), hours)
    event_ts = pa.array(times * drivers, type=pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {
            "driver_id": driver_ids,
            "event_timestamp": event_ts,
            "created": event_ts,
            "conv_rate": rng.random(drivers * hours, dtype=np.float32),
            "trips_today": rng.integers(0, 40, drivers * hours, dtype=np.int64),
        }
    )
    pq.write_table(table, target)
