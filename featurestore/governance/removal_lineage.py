"""OpenLineage events of retention runs and erasures: one job per view, push source or saved
dataset whose data a run changed, each run reported once it is over (``START`` then
``COMPLETE``), through the lineage layer's emitter (silent without ``lineage.openlineage``).

Jobs are ``<project>.<run>.<view>``, ``<project>.<run>.push_source.<source>`` and
``<project>.<run>.saved_dataset.<name>`` with ``<run>`` ``retention`` or ``erase`` (job types
``RETENTION`` and ``ERASE``). A job reads and rewrites the same dataset: ``online_store.<view>``
in the project's namespace, the folder of pushed rows, or the dataset's file, named as the
materialization, push and save-dataset jobs name them. Dry runs change nothing and send nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featurestore.governance.holdings import Removal
from featurestore.governance.openlineage import (
    FILE_NAMESPACE,
    DatasetRef,
    LineageEmitter,
    store_namespace,
)

_JOB_TYPES = {"retention": "RETENTION", "erase": "ERASE"}
_OWNER_KINDS = {"online": "", "pushed": "push_source.", "dataset": "saved_dataset."}


def emit_removals(
    emitter: LineageEmitter, project: str, run: str, removed: Sequence[Removal]
) -> list[str]:
    """Report what a ``run`` (``retention`` or ``erase``) removed; returns the run ids."""
    if not emitter.enabled:
        return []
    datasets: dict[str, dict[str, DatasetRef]] = {}
    for removal in removed:
        if removal.place not in _OWNER_KINDS:
            # Staged files were never published, quality records are no dataset: no lineage.
            continue
        job = f"{project}.{run}.{_OWNER_KINDS[removal.place]}{removal.owner}"
        dataset = _dataset(project, removal)
        datasets.setdefault(job, {})[dataset.name] = dataset
    return [
        emitter.emit_run(job, list(refs.values()), list(refs.values()), job_type=_JOB_TYPES[run])
        for job, refs in datasets.items()
    ]


def _dataset(project: str, removal: Removal) -> DatasetRef:
    if removal.place == "online":
        return DatasetRef(namespace=store_namespace(project), name=f"online_store.{removal.owner}")
    assert removal.path is not None
    # Pushed rows are one dataset per push source: the folder of its files.
    path = Path(removal.path).parent if removal.place == "pushed" else Path(removal.path)
    return DatasetRef(namespace=FILE_NAMESPACE, name=str(path))
