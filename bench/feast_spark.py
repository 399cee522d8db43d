"""Feast's side of ``historical.py --engine spark --compare feast``: Feast 0.67's
``SparkOfflineStore`` over the same Parquet files, on the same local Spark with the same settings.

Runs in Feast's own interpreter (``--feast-python .venv-feast-spark/bin/python``, see the
Makefile's ``.venv-feast-spark`` target): this module never imports featurestore.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import ViewSpec, emit_result, peak_rss_mb, stopwatch, views_for
from repos import feast_objects
from spark_common import time_spark_retrieval


def build_feast_spark_repo(target: Path, master: str, conf: dict[str, str]) -> Path:
    """A Feast repository folder whose offline store is Spark with ``master`` and ``conf``.

    Only ``feature_store.yaml``; the definitions are applied in code (:func:`child_apply`).
    """
    import yaml

    target.mkdir(parents=True)
    config = {
        "project": "bench",
        "registry": str(target / "registry.db"),
        "provider": "local",
        "offline_store": {"type": "spark", "spark_conf": {"spark.master": master, **conf}},
        "online_store": {"type": "sqlite", "path": str(target / "online.db")},
        "entity_key_serialization_version": 3,
    }
    (target / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def feast_spark_objects(views: Sequence[ViewSpec], data_dir: Path) -> list[Any]:
    """Feast definitions equivalent to ``views``, each over a ``SparkSource`` of the same file."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    return feast_objects(views, data_dir, source_class=SparkSource, file_format="parquet")


def child_apply(repo: str, data_dir: str, no_ttl: bool) -> None:
    """Register the definitions (not timed)."""
    import feast

    store = feast.FeatureStore(repo_path=repo)
    with stopwatch() as elapsed:
        store.apply(feast_spark_objects(views_for(no_ttl), Path(data_dir)))
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb()})


def child_retrieve(
    repo: str,
    entity_df: Any,
    out: str,
    refs: list[str],
    master: str,
    conf: dict[str, str],
) -> None:
    """Time Feast's retrieval on Spark; write the result to ``out`` for the comparison.

    The Spark session is started before the clock with the settings of ``feature_store.yaml``;
    Feast's store takes it as the active session.
    """
    import feast

    store = feast.FeatureStore(repo_path=repo)
    store.list_feature_views()
    time_spark_retrieval(
        lambda: store.get_historical_features(entity_df=entity_df, features=refs).to_df(),
        master,
        conf,
        out,
        f"feast {feast.__version__} (spark offline store)",
    )
