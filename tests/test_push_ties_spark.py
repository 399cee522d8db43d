"""The tie tests of ``test_push_ties.py`` on the Spark offline engine (SQLite online store): a
pushed row wins a full tie with the source's file row whatever the file names, as online."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spark_session import PY4J_WARNINGS, spark  # noqa: F401 - the module's session fixture
from test_push_ties import (  # noqa: F401 - collected here again, with this module's fixtures
    plain_view,
    repo,
    rows,
    test_a_pushed_row_wins_a_full_tie_with_the_file_row,
    test_an_aggregated_view_keeps_the_file_copy_and_orders_pushed_events_last,
    test_the_later_of_two_tied_pushes_wins,
)

from featurestore.config import RepoConfig
from featurestore.offline.spark.scan import read_source, with_file_index
from featurestore.offline.store_data import StoreData

pytestmark = PY4J_WARNINGS


@pytest.fixture
def offline_yaml(spark: Any) -> str:  # noqa: F811 - the session the engine reuses
    return "{type: spark, master: 'local[2]', conf: {spark.sql.shuffle.partitions: '1'}}"


@pytest.fixture
def online_yaml() -> str:
    return "{type: sqlite, path: data/online.db}"


def test_every_row_gets_the_index_of_its_file_whatever_its_name(
    spark: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The index is found by the file's path as Spark reports it: names Spark escapes in its
    URIs (space, ``+``, ``%``, non-ASCII) must still match, or the row would lose its place."""
    folder = tmp_path / "odd dir"
    folder.mkdir()
    names = ["a+b %41é.parquet", "b c.parquet", "c%2B.parquet"]
    for i, name in enumerate(names):
        frame = rows(rate=[float(i), float(i)])
        frame.to_parquet(folder / name)
    view = plain_view("odd dir/*.parquet")
    config = RepoConfig(project="t", repo_path=tmp_path, registry="sqlite://")
    source = read_source(spark, StoreData(config), view)
    found = source.frame.select("__fs_fidx", "rate").toArrow().to_pylist()
    assert sorted((r["__fs_fidx"], r["rate"]) for r in found) == [
        (0, 0.0), (0, 0.0), (1, 1.0), (1, 1.0), (2, 2.0), (2, 2.0)
    ]  # fmt: skip


def test_a_row_whose_file_is_not_in_the_list_fails_naming_the_file(
    spark: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A file Spark reports under a path the list does not hold (it would get no index and sort
    first, settling its ties the wrong way without a word) stops the read instead."""
    frame = spark.createDataFrame(
        [("/data/a.parquet", 1), ("/data/elsewhere.parquet", 2)], "__fs_file string, v int"
    )
    indexed = with_file_index(spark, frame, ["/data/a.parquet", "/data/b.parquet"])
    with pytest.raises(Exception, match=r"not in the view's file list.*elsewhere\.parquet"):
        indexed.collect()
    matched = with_file_index(spark, frame.where("v = 1"), ["/data/a.parquet", "/data/b"])
    assert [r["__fs_fidx"] for r in matched.collect()] == [0]
