"""The two repositories a benchmark compares: ours (the example repository's definitions over
the cached workload) and Feast's (equivalent definitions applied in code), plus the children that
apply them. Each engine's imports stay inside its own functions, so a Feast child never loads
featurestore and the other way round.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import REPO_DIR, ViewSpec, emit_result, peak_rss_mb, stopwatch, views_for

#: The two ways users write entities: with ``value_type`` declared, or without (as most Feast
#: users do; apply then infers the key types from the sources).
DEFINITION_STYLES = ("typed", "untyped")
_VALUE_TYPE = re.compile(r"\n\s*value_type=Int64,")


def build_our_repo(
    target: Path,
    data_dir: Path,
    views: Sequence[ViewSpec],
    online_store: dict[str, Any] | None = None,
    style: str = "typed",
    offline_store: dict[str, Any] | None = None,
) -> Path:
    """A featurestore repository in ``target`` whose ``data/`` links to the workload files.

    ``online_store`` replaces the example's ``online_store`` setting (an embedded SQLite file),
    ``offline_store`` its ``offline_store`` (DuckDB).
    ``style="untyped"`` leaves out the entities' ``value_type`` and names the project
    ``<project>_untyped``, so both styles can share one online store.
    """
    import yaml

    target.mkdir(parents=True)
    (target / "data").mkdir()
    for view in views:
        (target / "data" / view.file).symlink_to(data_dir / view.file)
    if online_store is None and offline_store is None and style == "typed":
        shutil.copy(REPO_DIR / "featurestore.yaml", target / "featurestore.yaml")
    else:
        config = yaml.safe_load((REPO_DIR / "featurestore.yaml").read_text())
        if online_store is not None:
            config["online_store"] = online_store
        if offline_store is not None:
            config["offline_store"] = offline_store
        if style != "typed":
            config["project"] = f"{config['project']}_{style}"
        (target / "featurestore.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if list(views) == views_for():
        # The standard case runs the example repository's own definitions.
        source = (REPO_DIR / "features.py").read_text()
        if style != "typed":
            source, removed = _VALUE_TYPE.subn("", source)
            assert removed == 2, "the example's entities no longer declare value_type=Int64"
        (target / "features.py").write_text(source)
    else:
        (target / "features.py").write_text(_our_definitions(views, typed=style == "typed"))
    return target


def _our_definitions(views: Sequence[ViewSpec], typed: bool = True) -> str:
    """Python source of featurestore definitions for ``views`` (no TTL, or TTLs widened)."""
    types = sorted({dtype for view in views for _, dtype in view.features} | {"Int64"})
    lines = [
        "from datetime import timedelta",
        "",
        "from featurestore import Entity, FeatureView, Field, FileSource",
        f"from featurestore.types import {', '.join(types)}",
        "",
    ]
    for view in views:
        ttl = "None" if view.ttl is None else f"timedelta(seconds={view.ttl.total_seconds()})"
        fields = ", ".join(f'Field(name="{n}", dtype={t})' for n, t in view.features)
        lines += [
            f'{view.entity} = Entity(name="{view.entity}", join_keys=["{view.join_key}"]'
            + (", value_type=Int64)" if typed else ")"),
            f'{view.name} = FeatureView(name="{view.name}", entities=[{view.entity}], ttl={ttl},',
            f"    schema=[{fields}],",
            f'    source=FileSource(path="data/{view.file}", timestamp_field="event_timestamp",',
            '                      created_timestamp_column="created"))',
            "",
        ]
    return "\n".join(lines)


def build_feast_repo(target: Path, store: str, online_store: dict[str, Any] | None = None) -> Path:
    """A Feast repository folder: only ``feature_store.yaml``; definitions are applied in code.

    ``online_store`` is Feast's ``online_store`` setting (default: a SQLite file in ``target``).
    """
    import yaml

    target.mkdir(parents=True)
    config = {
        "project": "bench",
        "registry": str(target / "registry.db"),
        "provider": "local",
        "offline_store": {"type": store},
        "online_store": online_store or {"type": "sqlite", "path": str(target / "online.db")},
        "entity_key_serialization_version": 3,
    }
    (target / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def feast_objects(
    views: Sequence[ViewSpec],
    data_dir: Path,
    online: bool = False,
    source_class: Callable[..., Any] | None = None,
    **source_options: Any,
) -> list[Any]:
    """Feast definitions equivalent to ``views`` over the files in ``data_dir``, each file a
    ``source_class`` (default Feast's ``FileSource``) built with ``source_options`` too."""
    import feast
    import feast.types

    make_source = feast.FileSource if source_class is None else source_class
    objects: list[Any] = []
    for view in views:
        entity = feast.Entity(
            name=view.entity, join_keys=[view.join_key], value_type=feast.ValueType.INT64
        )
        source = make_source(
            name=f"{view.name}_source",
            path=str(data_dir / view.file),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
            **source_options,
        )
        schema = [feast.Field(name=view.join_key, dtype=feast.types.Int64)] + [
            feast.Field(name=name, dtype=getattr(feast.types, dtype))
            for name, dtype in view.features
        ]
        objects += [
            entity,
            feast.FeatureView(
                name=view.name,
                entities=[entity],
                # Feast spells "no TTL" as a zero timedelta.
                ttl=view.ttl if view.ttl is not None else timedelta(0),
                schema=schema,
                source=source,
                online=online,
            ),
        ]
    return objects


def child_apply_ours(repo: str) -> None:
    """Apply the repository (as ``featurestore apply`` does); not timed."""
    from featurestore import FeatureStore  # imported here: a Feast child must not load it

    with stopwatch() as elapsed, FeatureStore(repo_path=repo) as store:
        store.apply()
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb()})


def child_apply_feast(
    repo: str,
    data_dir: str,
    no_ttl: bool = False,
    online: bool = False,
    ttl: timedelta | None = None,
) -> None:
    """Register the Feast definitions equivalent to the workload's views; not timed.

    ``ttl`` replaces the views' TTLs, as in :func:`common.views_for`.
    """
    import feast

    store = feast.FeatureStore(repo_path=repo)
    with stopwatch() as elapsed:
        store.apply(feast_objects(views_for(no_ttl, ttl), Path(data_dir), online=online))
    emit_result({"seconds": elapsed[0], "peak_mb": peak_rss_mb()})
