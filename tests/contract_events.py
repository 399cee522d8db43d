"""Part of the offline engine contract: ``read_events`` tells which stream positions it read.

Materializing an aggregated view rebuilds each key's online state from ``read_events`` and keeps
the streamed events the read lacks, told apart by stream position; so the engine must report
(``durable``) the positions of exactly the files it read: a file published after it listed the
view's files is neither read nor counted, a staged (unpublished) one neither.
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from contract_engine import EngineContractBase

from featurestore.config import RepoConfig
from featurestore.definitions import Aggregation, Entity, FeatureView, Field, FileSource
from featurestore.definitions.stream_source import StreamSource
from featurestore.offline.base import LatestRows, SupportsEventReads
from featurestore.offline.file_positions import positions_metadata
from featurestore.offline.store_data import StoreData
from featurestore.types import Int64

T0 = datetime(2024, 6, 1, tzinfo=UTC)
TAPPER = Entity(name="tapper", join_keys=["tapper_id"], value_type=Int64)
HISTORY = FileSource(path="taps.parquet", timestamp_field="ts")
STREAMED = StreamSource(
    name="taps",
    broker="redis://127.0.0.1:6379/7",  # never opened: only the topic matters here
    topic="taps",
    timestamp_field="ts",
    batch_source=HISTORY,
)


def _view(source: FileSource) -> FeatureView:
    return FeatureView(
        name="tap_counts",
        entities=[TAPPER],
        schema=[Field(name="n", dtype=Int64)],
        aggregations=[Aggregation("n", "count", None)],
        source=source,
    )


def _taps(first: int, count: int) -> pa.Table:
    """``count`` taps of tapper 1, numbered from ``first``, a minute apart from T0."""
    numbers = range(first, first + count)
    return pa.table(
        {
            "tapper_id": pa.array([1] * count, pa.int64()),
            "ts": pa.array([T0 + timedelta(minutes=i) for i in numbers], pa.timestamp("us", "UTC")),
            "n": pa.array(list(numbers), pa.int64()),
        }
    )


def _read_numbers(rows: LatestRows) -> list[int]:
    return sorted(n for batch in rows.batches() for n in batch.column("n").to_pylist())


class EventReadsContract(EngineContractBase):
    """``read_events`` reports the stream positions of the files it read."""

    __test__ = False

    def test_read_events_reports_the_positions_of_exactly_the_files_it_read(
        self, tmp_path: Path
    ) -> None:
        config = RepoConfig(project="t", repo_path=tmp_path, registry="sqlite://")
        pq.write_table(_taps(0, 2), tmp_path / "taps.parquet")  # the history: no positions
        data = StoreData(config)
        data.stage("taps", _taps(2, 3), positions_metadata({"c1:taps": "100-0"})).commit()
        both = {"c1:taps": "105-3", "c2:taps": "90-1"}  # the largest per consumer wins
        data.stage("taps", _taps(5, 2), positions_metadata(both)).commit()
        data.stage("taps", _taps(7, 1), positions_metadata({"c1:taps": "101-0"})).commit()
        staged = data.stage("taps", _taps(50, 1), positions_metadata({"c1:taps": "200-0"}))
        view = _view(STREAMED)
        end = (T0 + timedelta(days=1) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
            microseconds=1
        )
        engine = self.open_engine(config)
        try:
            reads = self.capable(engine, SupportsEventReads)
            with closing(reads.read_events(view, after_us=None, end_us=end, batch_rows=2)) as rows:
                assert dict(rows.durable) == {"c1:taps": "105-3", "c2:taps": "90-1"}
                # Published after the engine listed the files: neither read nor counted.
                staged.commit()
                assert _read_numbers(rows) == list(range(8))
                assert dict(rows.durable) == {"c1:taps": "105-3", "c2:taps": "90-1"}
            with closing(reads.read_events(view, after_us=None, end_us=end, batch_rows=2)) as rows:
                assert dict(rows.durable) == {"c1:taps": "200-0", "c2:taps": "90-1"}
                assert _read_numbers(rows) == [*range(8), 50]
            plain = _view(HISTORY)  # not a stream: no positions, whatever the folder holds
            with closing(reads.read_events(plain, after_us=None, end_us=end, batch_rows=2)) as rows:
                assert dict(rows.durable) == {}
                assert _read_numbers(rows) == [0, 1]
        finally:
            engine.close()
