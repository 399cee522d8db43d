"""Saved training datasets: a Parquet file the store owns, and its record in the registry.

    job = store.get_historical_features(entity_df, features=["driver_stats:conv_rate"])
    job.save_dataset("churn_2026_03")
    store.get_saved_dataset("churn_2026_03").views        # {'driver_stats': 2}

The file is ``<data_path>/<project>/datasets/<name>.parquet`` (retention and erasure find saved
datasets there). It is written under a dot-name first and moved into place inside the registry
transaction that records it, so a failed save leaves neither a file nor a record, and an
overwrite replaces both at once.

The **fingerprint** identifies the entity frame a dataset was built from: a SHA-256 over the
entity columns as saved (every input column of the entity frame, features excluded) — their
names and Arrow types, then for each row in order a 64-bit hash of its values
(``pandas.util.hash_pandas_object``, which hashes nulls, strings and timestamps by value). It is
computed by streaming the saved file, so it costs one read of those columns; two datasets built
from the same entity rows in the same order share it whatever features they joined.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Connection, delete, insert, select

from featurestore.definitions.base import check_name
from featurestore.errors import DefinitionError, ObjectNotFoundError, SavedDatasetError
from featurestore.offline.base import RetrievalJob, SavedDataset
from featurestore.offline.store_data import StoreData
from featurestore.registry.base import Registry
from featurestore.registry.schema import saved_datasets

_FINGERPRINT_BATCH_ROWS = 65_536

#: Called inside the registry transaction that records a dataset (lineage edges go there too).
OnRecord = Callable[[Connection, SavedDataset], None]


class SavedDatasets:
    """The saved datasets of one project: their files and their registry rows."""

    def __init__(self, registry: Registry, project: str, data: StoreData) -> None:
        self.registry = registry
        self.project = project
        self.data = data
        self.folder = data.root / project / "datasets"

    def path(self, name: str) -> Path:
        """Where dataset ``name`` is (or would be) saved."""
        return self.folder / f"{name}.parquet"

    def save(
        self,
        job: RetrievalJob,
        name: str,
        *,
        overwrite: bool,
        views: dict[str, int],
        feature_columns: Sequence[str],
        principal: str | None,
        service: str | None,
        on_record: OnRecord | None = None,
    ) -> SavedDataset:
        """Write ``job``'s frame and record it; see the module docstring."""
        try:
            check_name("saved dataset", name)
        except DefinitionError as exc:
            raise SavedDatasetError(str(exc)) from None
        if not overwrite and self._exists(name):
            raise self._taken(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data.discard_stale(self.folder)  # what interrupted saves left
        staged = self.folder / f".{name}.{secrets.token_hex(4)}.parquet.tmp"
        try:
            job.to_parquet(staged)
            _fsync(staged)
            columns, rows = _shape(staged)
            entity_columns = tuple(c for c in columns if c not in set(feature_columns))
            saved = SavedDataset(
                name=name,
                location=str(self.path(name)),
                fingerprint=entity_fingerprint(staged, entity_columns),
                views=dict(views),
                rows=rows,
                created_at=datetime.now(timezone.utc),
                principal=principal,
                service=service,
                columns=columns,
                entity_columns=entity_columns,
            )
            with self.registry.writing() as conn:
                if self._exists(name, conn):
                    if not overwrite:
                        raise self._taken(name)
                    conn.execute(delete(saved_datasets).where(*self._key(name)))
                conn.execute(insert(saved_datasets).values(**_row(self.project, saved)))
                if on_record is not None:
                    on_record(conn, saved)
                # Last, so that any failure above leaves the previous file (if any) in place.
                os.replace(staged, self.path(name))
        finally:
            staged.unlink(missing_ok=True)
        return saved

    def get(self, name: str) -> SavedDataset:
        """The record of dataset ``name`` (ObjectNotFoundError when none was saved)."""
        with self.registry.reading() as conn:
            row = conn.execute(select(saved_datasets).where(*self._key(name))).one_or_none()
        if row is None:
            known = [d.name for d in self.list()]
            raise ObjectNotFoundError(
                f"no saved dataset {name!r} in project {self.project!r}; saved: {known}"
            )
        return _dataset(row)

    def list(self) -> list[SavedDataset]:
        """Every saved dataset of the project, by name."""
        s = saved_datasets
        with self.registry.reading() as conn:
            rows = conn.execute(
                select(s).where(s.c.project == self.project).order_by(s.c.name)
            ).all()
        return [_dataset(r) for r in rows]

    def _exists(self, name: str, conn: Connection | None = None) -> bool:
        query = select(saved_datasets.c.name).where(*self._key(name))
        if conn is not None:
            return conn.execute(query).first() is not None
        with self.registry.reading() as own:
            return own.execute(query).first() is not None

    def _key(self, name: str) -> tuple[Any, ...]:
        s = saved_datasets
        return (s.c.project == self.project, s.c.name == name)

    def _taken(self, name: str) -> SavedDatasetError:
        return SavedDatasetError(
            f"saved dataset {name!r} already exists in project {self.project!r} "
            f"({self.path(name)}); pick another name or pass overwrite=True to replace it"
        )


def entity_fingerprint(path: str | os.PathLike[str], entity_columns: Sequence[str]) -> str:
    """SHA-256 of the entity columns of a saved frame; see the module docstring."""
    digest = hashlib.sha256()
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    described = [[c, str(schema.field(c).type)] for c in entity_columns]
    digest.update(json.dumps(described).encode("utf-8"))
    for batch in parquet.iter_batches(
        batch_size=_FINGERPRINT_BATCH_ROWS, columns=list(entity_columns)
    ):
        hashes = pd.util.hash_pandas_object(batch.to_pandas(), index=False)
        digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()


def _shape(path: Path) -> tuple[tuple[str, ...], int]:
    parquet = pq.ParquetFile(path)
    return tuple(parquet.schema_arrow.names), int(parquet.metadata.num_rows)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _row(project: str, saved: SavedDataset) -> dict[str, Any]:
    return {
        "project": project,
        "name": saved.name,
        "created_at": saved.created_at,
        "principal": saved.principal,
        "location": saved.location,
        "fingerprint": saved.fingerprint,
        "views_json": json.dumps(saved.views, sort_keys=True),
        "rows": saved.rows,
        "detail_json": json.dumps(
            {
                "service": saved.service,
                "columns": list(saved.columns),
                "entity_columns": list(saved.entity_columns),
            },
            sort_keys=True,
        ),
    }


def _dataset(row: Any) -> SavedDataset:
    detail = json.loads(row.detail_json)
    return SavedDataset(
        name=row.name,
        location=row.location,
        fingerprint=row.fingerprint,
        views={k: int(v) for k, v in json.loads(row.views_json).items()},
        rows=int(row.rows),
        created_at=row.created_at,
        principal=row.principal,
        service=detail.get("service"),
        columns=tuple(detail.get("columns", ())),
        entity_columns=tuple(detail.get("entity_columns", ())),
    )


__all__ = ["SavedDatasets", "entity_fingerprint"]
