"""Entity keys that collide when concatenated as strings: does a point-in-time join mix them up?

    python bench/feast_collisions.py --feast-python .venv-feast/bin/python [--feast-store duckdb]

A SQL point-in-time join typically joins feature rows to entity rows on the typed keys, then
keeps the latest candidate per entity row, grouped by a *string* row id. If that id is the plain
concatenation of the keys and the timestamp, entity rows (1, 11) and (11, 1) at the same time
share an id, and the winner of one pair is served to both. Where Feast builds that id (0.67):

- ``feast/infra/offline_stores/ibis.py``, ``_entity_row_id`` (used by ``point_in_time_join``,
  which the ``duckdb`` store runs): every value is length-prefixed (``"_" + "1:1" + "2:11" ...``,
  null as ``"N"``), so ids are injective; its docstring cites the (1, 11) / (11, 1) case.
- ``feast/infra/offline_stores/dask.py``, ``_merge`` and ``_drop_duplicates``: ``dd.merge`` and
  ``drop_duplicates`` on the typed join-key columns; no string id at all.
- ``MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN`` in ``bigquery.py``, ``redshift.py`` and
  ``snowflake.py`` (and the contrib stores) still build ``<view>__entity_row_unique_id`` as
  ``CONCAT(CAST(key AS STRING), ..., CAST(ts AS STRING))`` with no separator, then GROUP BY it:
  that is where (1, 11) and (11, 1) would collide. Those stores need a warehouse; not run here.
- Online keys (``feast/infra/key_encoding_utils.py``, ``serialize_entity_key``, version 3) carry
  type tags and lengths: no collisions.

The data below collides under no separator ("111", "10011", "123", "abc"), under "_" and under
":" (the separator of the length prefix). Every partner row is *later* than its twin, so a merged
group would hand the partner's value to both rows. Observed with Feast 0.67: neither store mixes
the keys up. The dask store does lose the (1, 23) entity row, an unrelated bug: ``_merge`` pairs it
with its key's only (stale) row, and ``_filter_ttl`` then drops the merged row instead of keeping
it with nulls. Exit status: 1 only if our engine is wrong (a demonstration, not a Feast test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from common import emit_result, peak_rss_mb, run_child

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
ASK_AT = T0 + timedelta(hours=12)  # every entity row asks at this time, after all rows
TTL = timedelta(days=1)
ROW_ID = "row_id"
MISSING = "(no row)"  # the engine returned no row for this entity row
# view -> (join keys, key type, rows as (key pair, event time, value)).
VIEWS: dict[str, tuple[tuple[str, str], str, list[tuple[tuple[Any, Any], datetime, int]]]] = {
    "int_pairs": (("a", "b"), "Int64", [
        ((1, 11), T0 + timedelta(hours=1), 101),  # "1"+"11" == "11"+"1"
        ((11, 1), T0 + timedelta(hours=2), 102),
        ((100, 11), T0 + timedelta(hours=1), 201),  # "100"+"11" == "1001"+"1"
        ((1001, 1), T0 + timedelta(hours=2), 202),
        ((1, 23), T0 - timedelta(days=2), 301),  # outside the TTL: expected null
        ((12, 3), T0 + timedelta(hours=2), 302),  # "1"+"23" == "12"+"3"
    ]),
    "str_pairs": (("s", "t"), "String", [
        (("1_1", "1"), T0 + timedelta(hours=1), 401),  # "1_1"+"_"+"1" == "1"+"_"+"1_1"
        (("1", "1_1"), T0 + timedelta(hours=2), 402),
        (("a", "bc"), T0 + timedelta(hours=1), 501),  # "a"+"bc" == "ab"+"c"
        (("ab", "c"), T0 + timedelta(hours=2), 502),
        (("1:1", "1"), T0 + timedelta(hours=1), 601),  # "1:1"+":"+"1" == "1"+":"+"1:1"
        (("1", "1:1"), T0 + timedelta(hours=2), 602),
    ]),
}  # fmt: skip


def source_frame(view: str) -> pd.DataFrame:
    (k1, k2), _, rows = VIEWS[view]
    return pd.DataFrame({
        k1: [r[0][0] for r in rows], k2: [r[0][1] for r in rows],
        "event_timestamp": [r[1] for r in rows], "created": [r[1] for r in rows],
        "value": [r[2] for r in rows],
    })  # fmt: skip


def entity_frame(view: str) -> pd.DataFrame:
    """One entity row per key pair, all at ASK_AT, with a row id (Feast reorders rows)."""
    (k1, k2), _, rows = VIEWS[view]
    return pd.DataFrame({
        k1: [r[0][0] for r in rows], k2: [r[0][1] for r in rows],
        "event_timestamp": [ASK_AT] * len(rows), ROW_ID: range(len(rows)),
    })  # fmt: skip


def expected(view: str) -> list[int | None]:
    """Brute force of design.md's semantics: same typed keys, ts - ttl <= event <= ts, latest."""
    _, _, rows = VIEWS[view]
    out = []
    for keys, _, _ in rows:
        found = [(ev, ev, val) for k, ev, val in rows if k == keys and ASK_AT - TTL <= ev <= ASK_AT]
        out.append(max(found)[2] if found else None)
    return out


# -- child processes -----------------------------------------------------------------------------


def child_ours(work: Path) -> dict[str, list[Any]]:
    from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource
    from featurestore import types as fs_types

    repo = work / "ours"
    repo.mkdir()
    (repo / "featurestore.yaml").write_text(
        "project: collisions\nregistry: sqlite:///data/registry.db\noffline_store: {type: duckdb}\n"
    )
    (repo / "data").mkdir()
    objects: list[Any] = []
    for view, (keys, key_type, _) in VIEWS.items():
        entity = Entity(
            name=f"{view}_key", join_keys=list(keys), value_type=getattr(fs_types, key_type)
        )
        source = FileSource(path=str(work / f"{view}.parquet"), created_timestamp_column="created")
        objects += [entity, FeatureView(name=view, entities=[entity], ttl=TTL, source=source,
                                        schema=[Field(name="value", dtype=fs_types.Int64)])]  # fmt: skip
    values = {}
    with FeatureStore(repo_path=repo) as store:
        store.apply(objects)
        for view in VIEWS:
            job = store.get_historical_features(
                entity_df=entity_frame(view), features=[f"{view}:value"]
            )
            values[view] = _by_row_id(job.to_pandas())
    return values


def child_feast(work: Path, store_type: str) -> dict[str, list[Any]]:
    import feast
    import feast.types

    repo = work / f"feast-{store_type}"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        f"project: collisions\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"offline_store:\n  type: {store_type}\nonline_store:\n  type: sqlite\n"
        f"  path: {repo / 'online.db'}\nentity_key_serialization_version: 3\n"
    )
    objects: list[Any] = []
    for view, (keys, key_type, _) in VIEWS.items():
        # Feast entities have one join key each: a two-key view has two entities.
        vt = feast.ValueType.INT64 if key_type == "Int64" else feast.ValueType.STRING
        entities = [feast.Entity(name=k, join_keys=[k], value_type=vt) for k in keys]
        source = feast.FileSource(
            name=f"{view}_source",
            path=str(work / f"{view}.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        schema = [feast.Field(name=k, dtype=getattr(feast.types, key_type)) for k in keys]
        schema.append(feast.Field(name="value", dtype=feast.types.Int64))
        objects += [*entities, feast.FeatureView(name=view, entities=entities, ttl=TTL,
                                                 schema=schema, source=source, online=False)]  # fmt: skip
    store = feast.FeatureStore(repo_path=str(repo))
    store.apply(objects)
    return {
        view: _by_row_id(store.get_historical_features(entity_df=entity_frame(view),
                                                       features=[f"{view}:value"]).to_df())
        for view in VIEWS
    }  # fmt: skip


def _by_row_id(frame: pd.DataFrame) -> dict[str, Any]:
    """Value per row id (JSON keys are strings); NaN/None/NA as None. A lost row is absent."""
    return {
        str(r): None if pd.isna(v) else int(v)
        for r, v in zip(frame[ROW_ID], frame["value"], strict=True)
    }


def child_main(argv: list[str]) -> int:
    kind, work = argv[0], Path(argv[1])
    try:
        values = child_ours(work) if kind == "ours" else child_feast(work, kind)
    except Exception as exc:
        traceback.print_exc()
        emit_result({"error": f"{type(exc).__name__}: {exc}"[:500], "peak_mb": peak_rss_mb()})
        return 1
    emit_result({"seconds": 0.0, "peak_mb": peak_rss_mb(), "values": values})
    return 0


# -- the demonstration ---------------------------------------------------------------------------


def report(label: str, values: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Print one engine's table and summary; return (rows wrong, rows given another key's value)."""
    print(f"\n{label}")
    print(f"  {'view':<10} {'entity row (keys @ ts)':<34} {'expected':>9} {'engine':>9}  result")
    wrong = mixed = total = 0
    for view, (keys, _, rows) in VIEWS.items():
        for i, ((pair, _, _), want) in enumerate(zip(rows, expected(view), strict=True)):
            got = values[view].get(str(i), MISSING)
            total += 1
            if want == got:
                verdict = "OK"
            elif got in {v for k, _, v in rows if k != pair}:
                verdict, mixed = "WRONG: another key's value", mixed + 1
            else:
                verdict = "WRONG: entity row dropped" if got == MISSING else "WRONG"
            wrong += verdict != "OK"
            row = f"{keys[0]}={pair[0]!r}, {keys[1]}={pair[1]!r} @ {ASK_AT:%H:%M}"
            print(f"  {view:<10} {row:<34} {want!s:>9} {got!s:>9}  {verdict}")
    print(f"  {label}: {wrong} of {total} rows wrong, {mixed} mixed up with a colliding key")
    return wrong, mixed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feast-python", help="interpreter with Feast (default: this one)")
    parser.add_argument("--feast-store", choices=["duckdb", "dask"], action="append",
                        help="Feast offline store(s) to run; default both")  # fmt: skip
    args = parser.parse_args(argv)
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="featurestore-collisions-") as tmp:
        work = Path(tmp)
        for view in VIEWS:
            source_frame(view).to_parquet(work / f"{view}.parquet", index=False)
        ours = run_child("featurestore", [me, "--child", "ours", str(work)], timeout=300)
        ours_wrong = 1 if not ours.ok else report("featurestore (duckdb)", ours.detail["values"])[0]
        if not ours.ok:
            print(f"\nfeaturestore FAILED: {ours.error}")
        for store in args.feast_store or ["duckdb", "dask"]:
            label = f"feast ({store})"
            res = run_child(label, [me, "--child", store, str(work)],
                            python=args.feast_python, timeout=600)  # fmt: skip
            if not res.ok:
                print(f"\n{label} FAILED: {res.error}")
            elif report(label, res.detail["values"])[1] == 0:
                print(f"  {label} keeps every colliding key apart: no string-concatenation mix-up")
    return 1 if ours_wrong else 0


if __name__ == "__main__":
    sys.exit(main())
