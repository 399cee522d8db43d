"""The quickstart's last step: build a point-in-time correct training frame and show it.

Run after `python repo/generate_data.py --size XS` and `featurestore --repo repo apply`
(`make quickstart` does all three).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from featurestore import FeatureStore

REPO = Path(__file__).resolve().parent


def main() -> None:
    store = FeatureStore(repo_path=REPO)
    entity_df = pd.read_parquet(REPO / "data" / "entity_df.parquet")
    print(f"Entity frame: {len(entity_df):,} rows of {list(entity_df.columns)}")

    job = store.get_historical_features(entity_df=entity_df, features="driver_activity")
    training = job.to_pandas()

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(training.head(10).to_string(index=False))
    filled = training.drop(columns=entity_df.columns).notna().all(axis=1).sum()
    print(
        f"\nTraining frame: {len(training):,} rows, {training.shape[1]} columns "
        f"({filled:,} rows with every feature present; the rest fall outside a TTL or a gap)"
    )
    store.close()


if __name__ == "__main__":
    main()
