"""Materialization: the latest offline values per entity, synced into the online store.

    from featurestore.materialize import Materializer
    report = Materializer(project="demo", registry=registry, offline=engine, online=store,
                          progress=None).materialize_incremental(datetime.now(timezone.utc))
    print(report.summary())

Most callers go through :meth:`featurestore.FeatureStore.materialize` instead. The watermark rules
are described in :mod:`featurestore.materialize.materializer`.
"""

from featurestore.materialize.materializer import DEFAULT_BATCH_ROWS, Materializer
from featurestore.materialize.progress import MaterializationReport, ViewReport

__all__ = ["DEFAULT_BATCH_ROWS", "MaterializationReport", "Materializer", "ViewReport"]
