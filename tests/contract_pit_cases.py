"""Contract part: the classic point-in-time cases, every entity_df and result format, errors.

Run per engine through ``tests/offline_contract.py`` (DuckDB's own settings are tested in
``tests/test_offline_duckdb.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from contract_engine import EngineContractBase

from featurestore.config import OfflineStoreConfig, RepoConfig
from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.errors import EntityFrameError, FeatureReferenceError
from featurestore.offline.base import FeatureRequest, OfflineEngine
from featurestore.types import Float32, Int64

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def _view(ttl: timedelta | None = 2 * HOUR) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=ttl,
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=FileSource(path="driver_stats.parquet", created_timestamp_column="created"),
    )


def _write_source(
    repo: Path, rows: list[tuple[int, datetime, datetime | None, float | None, int]]
) -> None:
    ids, events, created, conv, trips = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {
            "driver_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array(events, pa.timestamp("us", tz="UTC")),
            "created": pa.array(created, pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array(conv, pa.float32()),
            "trips": pa.array(trips, pa.int32()),
        }
    )
    pq.write_table(table, repo / "driver_stats.parquet")


def _request(view: FeatureView) -> FeatureRequest:
    return FeatureRequest(view, ("conv_rate", "trips"), ("conv_rate", "trips"))


def _entities(*rows: tuple[int, datetime]) -> pd.DataFrame:
    return pd.DataFrame(
        {"driver_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows]}
    )


# -- filter_by_created_timestamp: only rows that existed at the entity row's time -------------
# Feast's own cases (its test_filter_by_created_timestamp.py) first, then the edges; each runs
# on a TTL view (bucket join) and a view without TTL (availability-ordered ASOF join).

FILTER_VIEWS = pytest.mark.parametrize("ttl", [timedelta(days=7), None], ids=["ttl", "no_ttl"])
DAY = timedelta(days=1)


class PitCasesContract(EngineContractBase):
    """The classic point-in-time cases, every entity_df kind and result format, and errors."""

    def _engine(self, repo: Path, offline: OfflineStoreConfig | None = None) -> OfflineEngine:
        config = RepoConfig(project="t", repo_path=repo, registry="sqlite://")
        if offline is not None:
            config = RepoConfig(
                project="t", repo_path=repo, registry="sqlite://", offline_store=offline
            )
        return self.open_engine(config)

    def _retrieve(
        self, repo: Path, entity_df: object, view: FeatureView | None = None
    ) -> pd.DataFrame:
        return (
            self._engine(repo)
            .get_historical_features(entity_df, [_request(view or _view())])
            .to_pandas()
        )

    def test_value_just_outside_ttl_is_null_and_exactly_at_the_edge_is_present(
        self, tmp_path: Path
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.5, 10)])
        entity = _entities(
            (1, T0 + 2 * HOUR),
            (1, T0 + 2 * HOUR + timedelta(microseconds=1)),
            (1, T0 - timedelta(microseconds=1)),
        )
        result = self._retrieve(tmp_path, entity)
        assert result["conv_rate"].tolist()[0] == 0.5
        assert result["conv_rate"].isna().tolist() == [False, True, True]

    def test_no_ttl_serves_arbitrarily_old_values(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.5, 10)])
        result = self._retrieve(tmp_path, _entities((1, T0 + 1000 * HOUR)), _view(ttl=None))
        assert result["conv_rate"].tolist() == [0.5]

    def test_no_ttl_far_past_ties_single_rows_and_rows_before_any_value(
        self, tmp_path: Path
    ) -> None:
        """Without TTL, next to a key with a dense recent history: a key with one row long ago,
        one whose latest rows long ago tie on event time (created time, then file order
        settles it), one whose only row is later than every entity row of it, and entity rows
        before any row of their key or exactly at an event time."""
        old = T0 - 900 * HOUR
        dense = [(1, T0 + i * HOUR, T0 + i * HOUR, float(i), i) for i in range(20)]
        _write_source(
            tmp_path,
            [
                *dense,
                (2, T0 - 1000 * HOUR, T0 - 1000 * HOUR, 2.5, 20),
                (3, old - HOUR, old, 3.0, 30),
                (3, old, old + HOUR, 3.25, 31),
                (3, old, old + 2 * HOUR, 3.5, 32),  # the later created time wins the tie
                (3, old, None, 3.75, 33),  # a null created time loses to any other
                (4, old, old, 4.0, 40),
                (4, old, old, 4.25, 41),  # a full tie: the last in file order wins
                (5, T0 + 30 * HOUR, T0 + 30 * HOUR, 5.0, 50),
            ],
        )
        entity = _entities(
            (1, T0 + 5 * HOUR + timedelta(minutes=30)),
            (1, T0 - timedelta(microseconds=1)),
            (2, T0 + 10 * HOUR),
            (2, T0 - 1000 * HOUR),
            (2, T0 - 1000 * HOUR - timedelta(microseconds=1)),
            (3, T0 + 10 * HOUR),
            (3, old - HOUR),
            (4, T0),
            (5, T0 + 10 * HOUR),
            (6, T0),
            (1, T0 + 19 * HOUR),
        )
        result = self._retrieve(tmp_path, entity, _view(ttl=None))
        trips = [None if pd.isna(v) else v for v in result["trips"].tolist()]
        assert trips == [5, None, 20, 20, None, 32, 30, 41, None, None, 19]
        assert result["conv_rate"].tolist()[:1] == [5.0]

    def test_later_created_timestamp_wins_an_event_time_tie(self, tmp_path: Path) -> None:
        _write_source(
            tmp_path, [(1, T0, T0 + HOUR, 0.75, 2), (1, T0, T0, 0.25, 1), (1, T0, None, 0.5, 3)]
        )
        for view in (_view(), _view(ttl=None)):
            result = self._retrieve(tmp_path, _entities((1, T0)), view)
            assert (result["conv_rate"].tolist(), result["trips"].tolist()) == ([0.75], [2])

    def test_equal_time_correction_with_later_created_lands_even_with_null_values(
        self,
        tmp_path: Path,
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1), (1, T0, T0 + timedelta(minutes=5), None, 4)])
        result = self._retrieve(tmp_path, _entities((1, T0 + HOUR)))
        assert result["conv_rate"].isna().tolist() == [True]
        assert result["trips"].tolist() == [4]

    def test_backfill_with_later_event_time_wins_over_later_created(self, tmp_path: Path) -> None:
        late_created = T0 + 10 * HOUR
        _write_source(
            tmp_path, [(1, T0, late_created, 0.25, 1), (1, T0 + HOUR, T0 + HOUR, 0.75, 2)]
        )
        result = self._retrieve(tmp_path, _entities((1, T0 + HOUR)))
        assert result["conv_rate"].tolist() == [0.75]

    def test_input_order_duplicates_and_extra_columns_are_preserved(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1), (2, T0, T0, 0.75, 2)])
        entity = pd.DataFrame(
            {
                "label": ["c", "a", "b", "a", "d"],
                "driver_id": [2, 1, 3, 1, 2],
                "event_timestamp": [T0 + HOUR, T0, T0, T0, T0 - HOUR],
            }
        )
        result = self._retrieve(tmp_path, entity)
        assert list(result.columns) == [
            "label",
            "driver_id",
            "event_timestamp",
            "conv_rate",
            "trips",
        ]
        assert result["label"].tolist() == ["c", "a", "b", "a", "d"]
        assert result["driver_id"].tolist() == [2, 1, 3, 1, 2]
        assert result["conv_rate"].tolist()[:2] == [0.75, 0.25]
        assert result["conv_rate"].isna().tolist() == [False, False, True, False, True]
        assert result["conv_rate"].dtype == "float32"

    def test_all_result_formats_agree(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1), (2, T0 - HOUR, None, None, 2)])
        entity = _entities((2, T0), (1, T0), (3, T0), (1, T0 - HOUR))
        job = self._engine(tmp_path).get_historical_features(entity, [_request(_view())])
        arrow = job.to_arrow()
        assert arrow.schema.field("conv_rate").type == pa.float32()
        assert arrow.schema.field("trips").type == pa.int64()
        frame = job.to_pandas()
        # Integer features keep their type in pandas: nullable Int64, missing values as <NA>.
        assert str(frame["trips"].dtype) == "Int64"
        assert frame["trips"].isna().tolist() == [False, False, True, True]
        assert frame.astype({"trips": "float64"}).equals(arrow.to_pandas())
        assert job.to_polars().equals(pl.DataFrame(arrow))
        job.to_parquet(tmp_path / "out.parquet")
        assert pq.read_table(tmp_path / "out.parquet").equals(arrow)
        assert arrow.column("trips").to_pylist() == [2, 1, None, None]

    @pytest.mark.parametrize(
        "kind", ["pandas", "polars", "arrow", "parquet_str", "parquet_path", "parquet_dir"]
    )
    def test_every_entity_df_kind_gives_the_same_result(self, tmp_path: Path, kind: str) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1), (2, T0, T0, 0.75, 2)])
        frame = _entities((2, T0), (1, T0 + HOUR), (2, T0 - HOUR), (1, T0))
        entity: object = frame
        if kind == "polars":
            entity = pl.from_pandas(frame)
        elif kind == "arrow":
            entity = pa.Table.from_pandas(frame)
        elif kind.startswith("parquet"):
            folder = tmp_path / "entities"
            folder.mkdir()
            pq.write_table(pa.Table.from_pandas(frame.iloc[:2]), folder / "a.parquet")
            pq.write_table(pa.Table.from_pandas(frame.iloc[2:]), folder / "b.parquet")
            entity = {
                "parquet_str": str(folder / "*.parquet"),
                "parquet_path": folder / "a.parquet",
                "parquet_dir": folder,
            }[kind]
            frame = frame.iloc[:2] if kind == "parquet_path" else frame
        result = self._retrieve(tmp_path, entity)
        assert result["driver_id"].tolist() == frame["driver_id"].tolist()
        assert result["trips"].fillna(-1).tolist() == [2, 1, -1, 1][: len(frame)]
        assert result["conv_rate"].isna().tolist() == [False, False, True, False][: len(frame)]

    def test_aware_and_naive_entity_timestamps_are_the_same_instants(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        tokyo = pd.DataFrame(
            {
                "driver_id": [1, 1],
                "event_timestamp": pd.to_datetime([T0, T0 - HOUR]).tz_convert("Asia/Tokyo"),
            }
        )
        naive = pd.DataFrame(
            {
                "driver_id": [1, 1],
                "event_timestamp": [T0.replace(tzinfo=None), (T0 - HOUR).replace(tzinfo=None)],
            }
        )
        assert self._retrieve(tmp_path, tokyo)["trips"].isna().tolist() == [False, True]
        assert self._retrieve(tmp_path, naive)["trips"].isna().tolist() == [False, True]

    def test_timestamp_column_found_by_type_when_not_named_event_timestamp(
        self, tmp_path: Path
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        entity = pd.DataFrame({"driver_id": [1], "asof": [T0]})
        assert self._retrieve(tmp_path, entity)["trips"].tolist() == [1]

    def test_missing_join_key_column_names_the_column_and_view(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        with pytest.raises(EntityFrameError, match=r"no column 'driver_id'.*driver_stats"):
            self._retrieve(tmp_path, pd.DataFrame({"driver": [1], "event_timestamp": [T0]}))

    def test_wrong_key_type_names_both_types(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        with pytest.raises(
            EntityFrameError, match=r"'driver_id' is (large_)?string.*declared Int64"
        ):
            self._retrieve(tmp_path, pd.DataFrame({"driver_id": ["1"], "event_timestamp": [T0]}))

    @pytest.mark.parametrize(
        ("frame", "message"),
        [
            (pd.DataFrame({"driver_id": [1]}), "no timestamp column"),
            (pd.DataFrame({"driver_id": [1], "a": [T0], "b": [T0]}), "several timestamp columns"),
            (pd.DataFrame({"driver_id": [1], "event_timestamp": [3]}), "must hold timestamps"),
        ],
    )
    def test_timestamp_column_errors(
        self, tmp_path: Path, frame: pd.DataFrame, message: str
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        with pytest.raises(EntityFrameError, match=message):
            self._retrieve(tmp_path, frame)

    def test_output_name_colliding_with_an_entity_column_is_refused(self, tmp_path: Path) -> None:
        _write_source(tmp_path, [(1, T0, T0, 0.25, 1)])
        entity = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0], "trips": [0]})
        with pytest.raises(FeatureReferenceError, match="'trips'"):
            self._retrieve(tmp_path, entity)

    def _filtered(
        self,
        repo: Path,
        entity_df: object,
        view: FeatureView,
        *,
        filter_by_created_timestamp: bool = True,
    ) -> pd.DataFrame:
        job = self._engine(repo).get_historical_features(
            entity_df, [_request(view)], filter_by_created_timestamp=filter_by_created_timestamp
        )
        return job.to_pandas()

    @FILTER_VIEWS
    def test_filter_drops_a_version_created_after_the_entity_row(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        # Same event time; the later-created version was written after the prediction was made.
        _write_source(tmp_path, [(1, T0, T0 + 2 * HOUR, 0.25, 1), (1, T0, T0 + 2 * DAY, 0.75, 2)])
        entity = _entities((1, T0 + DAY))
        assert self._filtered(tmp_path, entity, _view(ttl), filter_by_created_timestamp=False)[
            "conv_rate"
        ].tolist() == [0.75]
        assert self._filtered(tmp_path, entity, _view(ttl))["conv_rate"].tolist() == [0.25]

    @FILTER_VIEWS
    def test_filter_drops_rows_whose_created_timestamp_is_null(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0 + 2 * HOUR, 0.25, 1), (1, T0 + HOUR, None, 0.75, 2)])
        entity = _entities((1, T0 + DAY))
        assert self._filtered(tmp_path, entity, _view(ttl), filter_by_created_timestamp=False)[
            "trips"
        ].tolist() == [2]
        assert self._filtered(tmp_path, entity, _view(ttl))["trips"].tolist() == [1]

    @FILTER_VIEWS
    def test_filter_keeps_the_entity_row_when_every_candidate_is_future_created(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        _write_source(
            tmp_path, [(1, T0, T0 + 2 * DAY, 0.25, 1), (1, T0 + HOUR, T0 + 3 * DAY, 0.75, 2)]
        )
        result = self._filtered(tmp_path, _entities((1, T0 + DAY)), _view(ttl))
        assert result["driver_id"].tolist() == [1]
        assert result["conv_rate"].isna().tolist() == [True]
        assert result["trips"].isna().tolist() == [True]

    @FILTER_VIEWS
    def test_filter_never_borrows_another_keys_version(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        _write_source(tmp_path, [(1, T0, T0 + 2 * HOUR, 0.25, 1), (2, T0, T0 + 2 * DAY, 0.75, 2)])
        result = self._filtered(tmp_path, _entities((1, T0 + DAY), (2, T0 + DAY)), _view(ttl))
        assert result["trips"].fillna(-1).tolist() == [1, -1]

    @FILTER_VIEWS
    def test_filter_ignores_a_late_correction_of_an_older_event_until_it_exists(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        # The event at T0 + 2h is the latest, but only exists from T0 + 5h; before that the older
        # event (T0 + 1h) is what was known. The correction of T0 + 1h arriving at T0 + 6h loses to the
        # later event once both exist: event time still decides first.
        _write_source(
            tmp_path,
            [
                (1, T0 + HOUR, T0 + HOUR, 0.25, 1),
                (1, T0 + 2 * HOUR, T0 + 5 * HOUR, 0.5, 2),
                (1, T0 + HOUR, T0 + 6 * HOUR, 0.75, 3),
            ],
        )
        entity = _entities(
            (1, T0 + 3 * HOUR),
            (1, T0 + 5 * HOUR - timedelta(microseconds=1)),
            (1, T0 + 5 * HOUR),  # created exactly at the entity row's time: it exists (inclusive)
            (1, T0 + 7 * HOUR),
            (1, T0 + HOUR - timedelta(microseconds=1)),
        )
        result = self._filtered(tmp_path, entity, _view(ttl))
        assert result["trips"].fillna(-1).tolist() == [1, 1, 2, 2, -1]
        unfiltered = self._filtered(tmp_path, entity, _view(ttl), filter_by_created_timestamp=False)
        assert unfiltered["trips"].fillna(-1).tolist() == [2, 2, 2, 2, -1]

    @FILTER_VIEWS
    def test_filter_is_a_no_op_for_a_source_without_created_column(
        self, tmp_path: Path, ttl: timedelta | None
    ) -> None:
        _write_source(tmp_path, [(1, T0, None, 0.25, 1), (1, T0 + HOUR, None, 0.75, 2)])
        view = FeatureView(
            name="driver_stats",
            entities=[driver],
            ttl=ttl,
            schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
            source=FileSource(path="driver_stats.parquet"),
        )
        entity = _entities((1, T0 + DAY), (1, T0 + HOUR), (1, T0))
        filtered = self._filtered(tmp_path, entity, view)
        pd.testing.assert_frame_equal(
            filtered, self._filtered(tmp_path, entity, view, filter_by_created_timestamp=False)
        )
        assert filtered["trips"].tolist() == [2, 2, 1]
