"""The offline engine contract: one test class, subclassed per engine (``test_offline_<type>.py``).

A subclass sets ``engine_type`` to its row of :mod:`featurestore.offline.backends` and
``__test__ = True``. The contract gathers the parts every engine must pass: the brute-force
oracle (plain, filtered by created time, with retention cut-offs), the classic point-in-time
cases, the latest row per key for materialization (window, tie-break, retention cut-off),
windowed aggregations (``contract_aggregations.py``), the stream positions an event read
reports (``contract_events.py``) and statistics (skipped for an engine without :class:`SupportsStatistics`).
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from contract_aggregations import AggregationsContract
from contract_events import EventReadsContract
from contract_pit_cases import PitCasesContract
from contract_pit_oracle import PitOracleContract
from contract_stats import StatisticsContract

from featurestore.config import RepoConfig
from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.offline.base import LatestWindow
from featurestore.types import Float64, Int64

T0 = datetime(2024, 6, 1, tzinfo=UTC)
H = timedelta(hours=1)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
RATES = FeatureView(
    name="rates",
    entities=[DRIVER],
    ttl=timedelta(days=1),
    schema=[Field(name="rate", dtype=Float64)],
    source=FileSource(path="rates.parquet", created_timestamp_column="created"),
)
#: (driver, event time, created time, rate): driver 1 corrects its T0+1h row (created later).
SOURCE = [
    (1, T0, T0, 0.1),
    (1, T0 + H, T0 + H, 0.2),
    (1, T0 + H, T0 + 2 * H, 0.3),
    (2, T0, T0, 0.5),
    (2, T0 + 3 * H, T0 + 3 * H, 0.6),
    (3, T0 - 10 * H, T0 - 10 * H, 0.9),
]


def us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


class OfflineEngineContract(
    PitCasesContract,
    PitOracleContract,
    StatisticsContract,
    AggregationsContract,
    EventReadsContract,
):
    """Everything an offline engine must do, run against the engine ``engine_type`` names."""

    __test__ = False

    def latest(
        self, repo: Path, window: LatestWindow
    ) -> tuple[dict[int, float], int, int, int | None]:
        """Per driver its latest rate in ``window``, then the keys, rows read and max created."""
        ids, events, created, rates = (list(c) for c in zip(*SOURCE, strict=True))
        stamp = pa.timestamp("us", tz="UTC")
        source = {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(events, stamp),
            "created": pa.array(created, stamp),
            "rate": pa.array(rates, pa.float64()),
        }
        pq.write_table(pa.table(source), repo / "rates.parquet")
        engine = self.open_engine(RepoConfig(project="t", repo_path=repo, registry="sqlite://"))
        with closing(engine.latest_per_entity(RATES, window, batch_rows=2)) as rows:
            table = pa.Table.from_batches(list(rows.batches()))
            counts = (rows.keys, rows.rows_read, rows.max_created_us)
        engine.close()
        found = dict(zip(table["driver_id"].to_pylist(), table["rate"].to_pylist(), strict=True))
        return found, *counts

    def test_latest_per_key_breaks_event_time_ties_by_created_time(self, tmp_path: Path) -> None:
        found, keys, rows_read, max_created = self.latest(
            tmp_path, LatestWindow(start_us=None, end_us=us(T0 + 2 * H))
        )
        assert found == {1: 0.3, 2: 0.5, 3: 0.9}
        assert (keys, rows_read, max_created) == (3, 5, us(T0 + 2 * H))

    def test_latest_per_key_window_bounds_are_inclusive(self, tmp_path: Path) -> None:
        found, keys, rows_read, _ = self.latest(
            tmp_path, LatestWindow(start_us=us(T0 + H), end_us=us(T0 + 3 * H))
        )
        assert found == {1: 0.3, 2: 0.6}
        assert (keys, rows_read) == (2, 3)

    def test_latest_per_key_never_reads_rows_before_the_retention_cutoff(
        self, tmp_path: Path
    ) -> None:
        window = LatestWindow(start_us=None, end_us=us(T0 + 4 * H), not_before_us=us(T0 + H))
        found, keys, rows_read, _ = self.latest(tmp_path, window)
        assert found == {1: 0.3, 2: 0.6}
        assert (keys, rows_read) == (2, 3)

    def test_latest_per_key_since_a_watermark_keeps_only_changed_keys(self, tmp_path: Path) -> None:
        window = LatestWindow(
            start_us=None, end_us=us(T0 + 4 * H), changed_after=(us(T0 + H), us(T0 + H))
        )
        found, _, _, _ = self.latest(tmp_path, window)
        assert found == {1: 0.3, 2: 0.6}
