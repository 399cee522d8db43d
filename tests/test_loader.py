"""Repository loading: definitions collected, ignores honoured, import errors located."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import RepoLoadError
from featurestore.loader import load_repo

DEFS = """\
from datetime import timedelta
from featurestore import Entity, FeatureView, Field, FileSource, FeatureService
from featurestore.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(hours=1),
                    schema=[Field(name="rate", dtype=Float32)],
                    source=FileSource(path="data/stats.parquet"))
"""


def test_collects_definitions_across_files(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(DEFS)
    (tmp_path / "services.py").write_text(
        "from defs import stats, driver\nfrom featurestore import FeatureService\n"
        "svc = FeatureService(name='svc', features=[stats])\n"
    )
    contents = load_repo(tmp_path)
    assert [(o.kind, o.name) for o in contents.objects] == [
        ("entity", "driver"),
        ("feature_view", "stats"),
        ("feature_service", "svc"),
    ]
    assert contents.origins[("feature_view", "stats")] == "defs.py"


def test_ignored_and_hidden_paths_are_not_imported(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(DEFS)
    (tmp_path / "script.py").write_text("raise SystemExit('must not be imported')\n")
    (tmp_path / ".featurestoreignore").write_text("# scripts\nscript.py\nnotebooks/\n")
    for folder in (".hidden", "data", "notebooks"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text("raise SystemExit('must not be imported')\n")
    assert len(load_repo(tmp_path).objects) == 2


def test_import_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text("x = 1\n\ny = undefined_name\n")
    with pytest.raises(RepoLoadError, match=r"defs.py:3: NameError: name 'undefined_name'"):
        load_repo(tmp_path)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text("x = (\n")
    with pytest.raises(RepoLoadError, match=r"defs.py:1: syntax error"):
        load_repo(tmp_path)


def test_definition_error_inside_repo_is_located(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(
        "from featurestore import Entity\n\nbad = Entity(name='e', join_keys='id')\n"
    )
    with pytest.raises(
        RepoLoadError, match=r"defs.py:3: DefinitionError: entity 'e': join_keys must be a list"
    ):
        load_repo(tmp_path)


def test_same_name_different_content_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from featurestore import Entity\ne = Entity(name='driver', join_keys=['id'])\n"
    )
    (tmp_path / "b.py").write_text(
        "from featurestore import Entity\ne = Entity(name='driver', join_keys=['key'])\n"
    )
    with pytest.raises(
        RepoLoadError, match=r"entity 'driver' is defined differently in a\.py and b\.py"
    ):
        load_repo(tmp_path)


def test_reload_sees_edits(tmp_path: Path) -> None:
    (tmp_path / "defs.py").write_text(DEFS)
    first = load_repo(tmp_path)
    (tmp_path / "defs.py").write_text(DEFS.replace("hours=1", "hours=3"))
    second = load_repo(tmp_path)
    assert first.feature_views[0].content_hash != second.feature_views[0].content_hash
