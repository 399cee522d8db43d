"""The example repository (``repo/``) with XS data and a history worth looking at, for the UI
tests: applied, materialized, a saved training set, statistics, a drift check, validations, and a
second version of the customer view and of the on-demand view ``trip_fit`` (so a definition diff
and a code diff exist)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from example_data import REPO, load_generator

from featurestore import FeatureStore

DATASET = "ride_training"
ON_DEMAND = "trip_fit"
#: The line of the on-demand view's code that its second version changes.
CODE_V1 = "clip(lower=0)"
CODE_V2 = "clip(lower=0, upper=10)"


def _generate(target: Path) -> None:
    generator = load_generator()
    generator.generate(target / "data", generator.workload_for("XS"), seed=7)


def make_example_repo(root: Path) -> Path:
    """A copy of ``repo/`` at ``root`` with its data generated and a history recorded."""
    root.mkdir(parents=True, exist_ok=True)
    for item in [*REPO.glob("*.py"), REPO / "featurestore.yaml"]:
        shutil.copy(item, root / item.name)
    _generate(root)
    now = datetime.now(UTC)
    with FeatureStore(root) as store:
        store.apply()
        store.materialize(now - timedelta(days=2), now, progress=False)
        entity_df = pd.read_parquet(root / "data" / "entity_df.parquet").head(200)
        job = store.get_historical_features(entity_df, "driver_activity")
        job.save_dataset(DATASET)
        store.statistics("driver_hourly_stats", now - timedelta(days=7), now - timedelta(days=4))
        store.statistics("driver_hourly_stats", now - timedelta(days=3), now)
        store.statistics("customer_daily_profile", now - timedelta(days=7), now)
        store.drift(
            "driver_hourly_stats",
            current_window=(now - timedelta(days=3), now),
            reference_window=(now - timedelta(days=7), now - timedelta(days=4)),
        )
        store.drift(
            "driver_hourly_stats",
            current_window=(now - timedelta(days=2), now),
            reference_dataset=DATASET,
        )
        store.validate("driver_hourly_stats", now - timedelta(days=1), now)
    # A second version of the customer view (a shorter TTL) and of the on-demand view (its
    # score capped: new code).
    features = root / "features.py"
    text = features.read_text()
    for old, new in [("ttl=timedelta(days=2)", "ttl=timedelta(days=1)"), (CODE_V1, CODE_V2)]:
        assert old in text, old
        text = text.replace(old, new, 1)
    features.write_text(text)
    with FeatureStore(root) as store:
        store.apply()
    return root
