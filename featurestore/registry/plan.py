"""The apply plan: what an apply changes, which changes break consumers, and why.

Pure logic with no database: :func:`build_plan` compares the registry's records
(:class:`StoredObject`) with the definitions being applied, validates the state the project
would be in afterwards, and returns a :class:`Plan`. Everything is compared as the definitions'
canonical ``spec`` / ``meta`` dictionaries, so stored and incoming objects are treated alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from featurestore.definitions import Definition, canonical_json
from featurestore.errors import DefinitionError, RegistryConflictError
from featurestore.registry.on_demand_plan import diff_on_demand, on_demand_problems

KINDS: tuple[str, ...] = (
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "policy",
)
"""The kinds of object the registry keeps, in dependency order (entities first)."""

PlanChange = Literal["added", "changed", "metadata", "unchanged", "deleted"]

_LABELS = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
    "policy": "policy",
}
_SECTIONS = {
    "entity": "Entities",
    "feature_view": "Feature views",
    "on_demand_feature_view": "On-demand feature views",
    "feature_service": "Feature services",
    "policy": "Policies",
}
_SYMBOLS = {"added": "+", "changed": "~", "metadata": "*", "unchanged": "=", "deleted": "-"}


def label(kind: str, name: str) -> str:
    """How messages name an object, e.g. ``feature view 'driver_stats'``."""
    return f"{_LABELS.get(kind, kind)} {name!r}"


@dataclass(frozen=True)
class ObjectChange:
    """What an apply does (or did) to one object.

    ``breaking`` lists why the change can break a consumer (empty: not breaking); ``details``
    says what changed, e.g. ``"ttl: 2:00:00 -> 3:00:00"``. Re-adding a deleted object is an
    ``"added"`` change whose ``old_version`` is the version that was deleted (see :attr:`restored`).
    """

    kind: str
    name: str
    change: PlanChange
    old_version: int | None
    new_version: int | None
    breaking: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def restored(self) -> bool:
        """True when the change brings back an object that was deleted."""
        return self.change == "added" and self.old_version is not None


@dataclass(frozen=True)
class Plan:
    """The changes of one apply: one :class:`ObjectChange` per applied or deleted object.

    ``warnings`` are things the apply did not do but someone must, e.g. materialize a new view
    version (the facade's ``apply`` adds them; a plan alone has none).
    """

    changes: list[ObjectChange]
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """True when applying the plan writes anything."""
        return any(c.change != "unchanged" for c in self.changes)

    @property
    def breaking(self) -> list[ObjectChange]:
        """The changes with at least one breaking reason."""
        return [c for c in self.changes if c.breaking]

    def render(self) -> str:
        """A per-object text table for the CLI, grouped by kind::

        Feature views
          ~ driver_stats   changed   v1 -> v2   BREAKING
              ! feature conv_rate: Float32 -> Float64
              - ttl: 2:00:00 -> 3:00:00
        """
        return render_plan(self)


@dataclass(frozen=True)
class StoredObject:
    """The registry's record of one object, as the plan needs it.

    ``version``, ``content_hash`` and ``spec`` are those of the current version (for a deleted
    object: the last one); ``meta`` is the object's current metadata.
    """

    kind: str
    name: str
    version: int
    content_hash: str
    meta_hash: str
    spec: dict[str, Any]
    meta: dict[str, Any]
    deleted: bool


def build_plan(
    stored: Sequence[StoredObject], objects: Sequence[Definition], *, delete_missing: bool
) -> Plan:
    """Compare ``objects`` with the ``stored`` state and validate the result.

    Raises :class:`RegistryConflictError` when two different objects share a kind and name, and
    :class:`DefinitionError` when the project would be left with a dangling reference.
    """
    incoming = _deduplicate(objects)
    records = {(s.kind, s.name): s for s in stored}
    deleting = sorted(
        key
        for key, s in records.items()
        if delete_missing and not s.deleted and key not in incoming
    )
    after: dict[tuple[str, str], dict[str, Any]] = {
        key: s.spec for key, s in records.items() if not s.deleted and key not in deleting
    }
    after.update({key: obj.spec() for key, obj in incoming.items()})
    _validate(after, set(deleting), {key for key, s in records.items() if not s.deleted})

    view_features = {
        name: [f["name"] for f in spec["features"]]
        for (kind, name), spec in after.items()
        if kind in ("feature_view", "on_demand_feature_view")  # what a service may list
    }
    changes = [_change(records.get(key), obj, view_features) for key, obj in incoming.items()]
    changes += [_deletion(records[key]) for key in deleting]
    changes.sort(key=lambda c: (KINDS.index(c.kind), c.name))
    return Plan(changes)


def _deduplicate(objects: Sequence[Definition]) -> dict[tuple[str, str], Definition]:
    seen: dict[tuple[str, str], Definition] = {}
    for obj in objects:
        if not isinstance(obj, Definition) or getattr(obj, "kind", None) not in KINDS:
            raise DefinitionError(
                f"cannot apply {obj!r}: expected an Entity, FeatureView, OnDemandFeatureView, "
                "FeatureService or Policy"
            )
        key = (obj.kind, obj.name)
        first = seen.get(key)
        if first is None:
            seen[key] = obj
        elif canonical_json(first.to_dict()) != canonical_json(obj.to_dict()):
            raise RegistryConflictError(
                f"two different definitions of {obj.label} in one apply: {first!r} and {obj!r} "
                f"(content {first.content_hash[:12]} vs {obj.content_hash[:12]}); "
                "rename one or keep a single definition"
            )
    return seen


def _validate(
    after: Mapping[tuple[str, str], dict[str, Any]],
    deleting: set[tuple[str, str]],
    registered: set[tuple[str, str]],
) -> None:
    """Every reference in the post-apply state must resolve; report all that do not."""

    def missing(kind: str, name: str, user: str) -> str:
        if (kind, name) in deleting:
            return f"cannot delete {label(kind, name)}: {user} still uses it"
        where = (
            "is not in this apply"
            if (kind, name) in registered
            else "is neither registered nor in this apply"
        )
        return f"{user} uses {label(kind, name)}, which {where}"

    problems: list[str] = []
    for (kind, name), spec in sorted(after.items()):
        user = label(kind, name)
        if kind == "feature_view":
            problems += [
                missing("entity", e["name"], user)
                for e in spec["entities"]
                if ("entity", e["name"]) not in after
            ]
        elif kind == "on_demand_feature_view":
            problems += on_demand_problems(name, spec, after, missing)
        elif kind == "feature_service":
            exposed: dict[str, list[str]] = {}
            for proj in spec["projections"]:
                view = after.get(("feature_view", proj["view"])) or after.get(
                    ("on_demand_feature_view", proj["view"])
                )
                if view is None:
                    problems.append(missing("feature_view", proj["view"], user))
                    continue
                have = [f["name"] for f in view["features"]]
                problems += [
                    f"{user} uses feature {f!r} of {label('feature_view', proj['view'])}, "
                    f"which has no such feature after this apply (it has {have})"
                    for f in proj["features"] or []
                    if f not in have
                ]
                for feature in proj["features"] or have:
                    exposed.setdefault(feature, []).append(f"{proj['view']}:{feature}")
            problems += [
                _name_clash(user, name, refs) for name, refs in exposed.items() if len(refs) > 1
            ]
    if problems:
        raise DefinitionError("apply rejected, nothing was written:\n  " + "\n  ".join(problems))


def _name_clash(user: str, name: str, references: list[str]) -> str:
    # Retrieved without full_feature_names (the default), both would be one column `name`.
    both = " and ".join(references)
    return (
        f"{user} exposes the feature name {name!r} more than once ({both}): without "
        "full_feature_names they would be one column; list only one of them (view[['...']]) or "
        "rename a feature"
    )


def _change(
    record: StoredObject | None, obj: Definition, view_features: Mapping[str, list[str]]
) -> ObjectChange:
    spec, meta = obj.spec(), obj.meta()
    if record is None:
        return ObjectChange(obj.kind, obj.name, "added", None, 1)
    spec_changed = record.content_hash != obj.content_hash
    details: list[str] = []
    breaking: list[str] = []
    if spec_changed:
        details, breaking = diff_spec(obj.kind, record.spec, spec, view_features)
    if record.meta_hash != obj.meta_hash:
        details += diff_meta(record.meta, meta)
    if record.deleted:
        version = record.version + 1 if spec_changed else record.version
        note = f"restored (was deleted at v{record.version})"
        # A restore re-adds the object: consumers cannot be broken by something that was gone.
        return ObjectChange(
            obj.kind, obj.name, "added", record.version, version, [], [note, *details]
        )
    if spec_changed:
        return ObjectChange(
            obj.kind, obj.name, "changed", record.version, record.version + 1, breaking, details
        )
    if record.meta_hash != obj.meta_hash:
        return ObjectChange(
            obj.kind, obj.name, "metadata", record.version, record.version, [], details
        )
    return ObjectChange(obj.kind, obj.name, "unchanged", record.version, record.version)


def _deletion(record: StoredObject) -> ObjectChange:
    reason = f"{label(record.kind, record.name)} deleted"
    return ObjectChange(
        record.kind,
        record.name,
        "deleted",
        record.version,
        None,
        [reason],
        [f"deleted (v{record.version} stays in the history)"],
    )


def diff_spec(
    kind: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    view_features: Mapping[str, list[str]],
) -> tuple[list[str], list[str]]:
    """Human-readable differences between two specs of one kind, and the breaking ones."""
    details: list[tuple[str, bool]] = []
    if kind == "entity":
        details += _diff_keys("join key", old["join_keys"], new["join_keys"])
    elif kind == "feature_view":
        details += _diff_view(old, new)
    elif kind == "feature_service":
        details += _diff_service(old["projections"], new["projections"], view_features)
    elif kind == "on_demand_feature_view":
        details += diff_on_demand(old, new)
    elif kind == "policy":
        details += [
            (f"{key}: {old.get(key)!r} -> {new.get(key)!r}", False)
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
    if not details:
        details.append(("definition changed", False))
    return [d for d, _ in details], [d for d, brk in details if brk]


def _diff_view(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, bool]]:
    old_entities = [e["name"] for e in old["entities"]]
    new_entities = [e["name"] for e in new["entities"]]
    if old_entities != new_entities:
        yield f"entities: {old_entities} -> {new_entities}", True
    yield from _diff_keys("join key", old["join_keys"], new["join_keys"])
    # Adding (or reordering) features cannot break a consumer; losing or retyping one can.
    yield from _diff_keys("feature", old["features"], new["features"], growth_breaks=False)
    if old["ttl_seconds"] != new["ttl_seconds"]:
        yield f"ttl: {_ttl(old['ttl_seconds'])} -> {_ttl(new['ttl_seconds'])}", False
    for key in sorted(set(old["source"]) | set(new["source"])):
        before, after = old["source"].get(key), new["source"].get(key)
        if before != after:
            yield f"source {key}: {before!r} -> {after!r}", False


def _diff_keys(
    what: str,
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    growth_breaks: bool = True,
) -> Iterator[tuple[str, bool]]:
    """Differences of two ``[{"name", "dtype"}]`` lists.

    A removal or a new type always breaks; an addition or a new order breaks when
    ``growth_breaks`` (join keys: every lookup key changes shape).
    """
    before = {k["name"]: k["dtype"] for k in old}
    after = {k["name"]: k["dtype"] for k in new}
    for name in before:
        if name not in after:
            yield f"{what} {name} removed", True
        elif before[name] != after[name]:
            yield f"{what} {name}: {before[name] or 'untyped'} -> {after[name] or 'untyped'}", True
    for name in after:
        if name not in before:
            yield f"{what} {name} added", growth_breaks
    common_before = [n for n in before if n in after]
    common_after = [n for n in after if n in before]
    if common_before != common_after:
        yield f"{what}s reordered: {common_before} -> {common_after}", growth_breaks


def _diff_service(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    view_features: Mapping[str, list[str]],
) -> Iterator[tuple[str, bool]]:
    before = {p["view"]: p["features"] for p in old}
    after = {p["view"]: p["features"] for p in new}
    for view, features in before.items():
        if view not in after:
            yield f"feature view {view} removed", True
            continue
        if features == after[view]:
            continue
        # None means "the whole view": resolve it against the view as it is after the apply.
        whole = view_features.get(view, [])
        old_set = features if features is not None else whole
        new_set = after[view] if after[view] is not None else whole
        removed = [f for f in old_set if f not in new_set]
        added = [f for f in new_set if f not in old_set]
        for f in removed:
            yield f"feature {view}:{f} removed", True
        for f in added:
            yield f"feature {view}:{f} added", False
        if not removed and not added:
            scope = "the whole view" if after[view] is None else f"features {after[view]}"
            yield f"feature view {view}: now {scope}", False
    for view in after:
        if view not in before:
            yield f"feature view {view} added", False


def diff_meta(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences of two metadata dictionaries, e.g. ``description changed``."""
    return list(_diff_meta((), old, new))


def _diff_meta(path: tuple[str, ...], old: Any, new: Any) -> Iterator[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            sub = (*path, str(key))
            if key not in new:
                if path != ("fields",):  # a field leaving the schema is reported by the spec diff
                    yield f"{_meta_label(sub)} removed"
            elif key not in old:
                if path != ("fields",):
                    yield f"{_meta_label(sub)} added ({new[key]!r})"
            elif old[key] != new[key]:
                yield from _diff_meta(sub, old[key], new[key])
    elif old != new:
        if path and path[-1] == "description":
            yield f"{_meta_label(path)} changed"
        else:
            yield f"{_meta_label(path)}: {old!r} -> {new!r}"


def _meta_label(path: tuple[str, ...]) -> str:
    # ("fields", "conv_rate", "description") reads "field conv_rate description"; a key inside
    # "fields" or "tags" is a user's name and is never translated.
    words = {"fields": "field", "tags": "tag"}
    out: list[str] = []
    previous = ""
    for part in path:
        out.append(part if previous in words else words.get(part, part))
        previous = part
    return " ".join(out)


def _ttl(seconds: float | None) -> str:
    return "none" if seconds is None else str(timedelta(seconds=seconds))


def render_plan(plan: Plan) -> str:
    """The text :meth:`Plan.render` returns."""
    if not plan.changes:
        return "Nothing to apply: no objects given."
    width = max(len(c.name) for c in plan.changes)
    lines: list[str] = []
    for kind in KINDS:
        group = [c for c in plan.changes if c.kind == kind]
        if not group:
            continue
        lines.append(_SECTIONS[kind])
        for c in group:
            change = "restored" if c.restored else c.change
            row = f"  {_SYMBOLS[c.change]} {c.name:<{width}}  {change:<9}  {_versions(c):<10}"
            lines.append((row + ("  BREAKING" if c.breaking else "")).rstrip())
            lines += [f"      {'!' if d in c.breaking else '-'} {d}" for d in c.details]
            lines += [f"      ! {b}" for b in c.breaking if b not in c.details]
    counts = {name: sum(1 for c in plan.changes if c.change == name) for name in _SYMBOLS}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    suffix = f"; {len(plan.breaking)} BREAKING" if plan.breaking else ""
    lines.append(f"Plan: {summary}{suffix}" if plan.has_changes else f"No changes ({summary}).")
    lines += [f"Warning: {warning}" for warning in plan.warnings]
    return "\n".join(lines)


def _versions(c: ObjectChange) -> str:
    if c.change == "deleted" or c.new_version is None:
        return f"v{c.old_version}"
    if c.old_version is None or c.old_version == c.new_version:
        return f"v{c.new_version}"
    return f"v{c.old_version} -> v{c.new_version}"
