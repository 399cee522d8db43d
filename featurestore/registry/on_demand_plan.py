"""The apply plan's part for on-demand feature views: their dependencies and their code diff."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_VIEW = "feature_view"
_ON_DEMAND = "on_demand_feature_view"


def on_demand_problems(
    name: str,
    spec: Mapping[str, Any],
    after: Mapping[tuple[str, str], Mapping[str, Any]],
    missing: Callable[[str, str, str], str],
) -> list[str]:
    """Why the on-demand view ``name`` would not resolve after the apply (empty: it does)."""
    user = f"on-demand feature view {name!r}"
    problems: list[str] = []
    written = bool(spec.get("write_to_online_store"))
    keys_seen: tuple[str, list[str]] | None = None
    if (_VIEW, name) in after:
        problems.append(
            f"{user} has the name of a feature view: names are shared by feature views and "
            "on-demand views (a reference 'name:feature' must mean one of them)"
        )
    for source in spec["sources"]:
        view_name = source.get("view")
        if view_name is None:
            continue
        if view_name == name:
            problems.append(f"{user} depends on itself")
            continue
        if (_ON_DEMAND, view_name) in after:
            problems.append(
                f"{user} reads on-demand view {view_name!r}: an on-demand view can only read "
                "feature views and request sources"
            )
            continue
        view = after.get((_VIEW, view_name))
        if view is None:
            problems.append(missing(_VIEW, view_name, user))
            continue
        if written:
            keys = [k["name"] for k in view["join_keys"]]
            if "aggregations" in view:
                problems.append(
                    f"{user} (write_to_online_store=True) reads aggregated feature view "
                    f"{view_name!r}, whose values change with the lookup instant"
                )
            if keys_seen is None:
                keys_seen = (view_name, keys)
            elif keys != keys_seen[1]:
                problems.append(
                    f"{user} (write_to_online_store=True) needs source views keyed alike, but "
                    f"{keys_seen[0]!r} has join keys {keys_seen[1]} and {view_name!r} {keys}"
                )
        have = {f["name"]: f["dtype"] for f in view["features"]}
        for feature in source["features"]:
            if feature["name"] not in have:
                problems.append(
                    f"{user} reads feature {feature['name']!r} of feature view {view_name!r}, "
                    f"which has no such feature after this apply (it has {sorted(have)})"
                )
            elif have[feature["name"]] != feature["dtype"]:
                problems.append(
                    f"{user} reads {view_name}:{feature['name']} as {feature['dtype']}, but it "
                    f"is {have[feature['name']]} after this apply; re-apply the on-demand view "
                    "with the view's current definition"
                )
    return problems


def diff_on_demand(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, bool]]:
    """What changed between two versions, code as a unified diff; (detail, breaking) pairs."""
    old_features = {f["name"]: f["dtype"] for f in old["features"]}
    new_features = {f["name"]: f["dtype"] for f in new["features"]}
    for feature in sorted(set(old_features) - set(new_features)):
        yield f"feature removed: {feature}", True
    for feature in sorted(set(new_features) - set(old_features)):
        yield f"feature added: {feature} ({new_features[feature]})", False
    for feature in sorted(set(old_features) & set(new_features)):
        if old_features[feature] != new_features[feature]:
            yield (
                f"feature {feature}: {old_features[feature]} -> {new_features[feature]}",
                True,
            )
    old_written = bool(old.get("write_to_online_store"))
    new_written = bool(new.get("write_to_online_store"))
    if old_written != new_written:
        yield f"write_to_online_store: {old_written} -> {new_written}", False
    if old["mode"] != new["mode"]:
        yield f"mode: {old['mode']} -> {new['mode']}", False
    if old["sources"] != new["sources"]:
        yield f"sources: {_sources(old)} -> {_sources(new)}", False
    old_code, new_code = old["code"], new["code"]
    if old_code["source"] != new_code["source"]:
        lines = difflib.unified_diff(
            old_code["source"].splitlines(),
            new_code["source"].splitlines(),
            "code (registered)",
            "code (new)",
            lineterm="",
        )
        yield "code changed:\n        " + "\n        ".join(lines), False
    for part in ("imports", "constants"):
        if old_code[part] != new_code[part]:
            yield f"{part}: {old_code[part]} -> {new_code[part]}", False


def _sources(spec: Mapping[str, Any]) -> list[str]:
    return [
        f"{s['view']}[{', '.join(f['name'] for f in s['features'])}]"
        if "view" in s
        else f"request {s['request']}[{', '.join(f['name'] for f in s['fields'])}]"
        for s in spec["sources"]
    ]
