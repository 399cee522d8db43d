"""One line per validation failure of ``featurestore.yaml``, naming the setting's path::

    featurestore.yaml: online_store.expiry_grace must be a non-negative duration such as 1d, ...
    featurestore.yaml: unknown offline_store setting(s) ['thread'] for type duckdb; known: [...]
    featurestore.yaml: offline_store type 'bigquery' is not supported; use duckdb or spark

The lines are read off pydantic's errors and the file's model alone: a store's section is a
union of models picked by ``type`` (pydantic puts the chosen type in an error's location; the
lines say "for type ..." instead), and which models and types there are is the backend tables'
business, never named here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from pydantic_core import ErrorDetails

from featurestore.config_types import Section

__all__ = ["describe"]

#: The sections whose model is chosen by ``type`` (one of a backend table's models).
_UNIONS = (("online_store",), ("offline_store",))

Loc = tuple[int | str, ...]


def describe(errors: list[ErrorDetails], model: type[Section], hidden: Collection[str] = ()) -> str:
    """The first problem as one line naming the setting's path; unknown keys come first
    (a typo is the likeliest cause of the other errors of the same section). ``model`` is the
    file's model; ``hidden`` are keys it accepts but never lists as known (Feast's)."""
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return _unknown(unknown, model, hidden)
    error = errors[0]
    loc, tag = _strip_tag(error["loc"])
    path = ".".join(str(part) for part in loc)
    shown = f"'{path}'" if len(loc) == 1 else path
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "union_tag_invalid" or (kind == "literal_error" and loc[-1:] == ("type",)):
        if kind == "union_tag_invalid":  # a store's ``type``
            section, value, expected = path, ctx.get("tag"), ctx.get("expected_tags")
        else:
            section, expected = ".".join(str(part) for part in loc[:-1]), ctx.get("expected")
        choices = [c.strip("'") for c in re.split(r", | or ", str(expected or ""))]
        return f"{section} type {value!r} is not supported; use {' or '.join(choices)}"
    if kind == "literal_error":
        return f"{path} must be {ctx.get('expected')}, got {value!r}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"{shown} must be a mapping like {_example(model, loc, tag)}"
    if kind == "missing":
        owner = ".".join(str(part) for part in loc[:-1])
        needs = f"needs '{loc[-1]}'" if tag is None else f"type {tag} needs '{loc[-1]}'"
        if owner:
            return f"{owner}: {needs}"
        about = model.model_fields[str(loc[-1])].description
        return f"'{loc[-1]}' is required" + (f": {about}" if about else "")
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else error["msg"]
    if kind != "value_error":
        message = f"{message[0].lower()}{message[1:]}, got {value!r}"
    if message.startswith(("must ", "is ")):
        return f"{shown} {message}"
    return f"{path}: {message}" if path else message


def _strip_tag(loc: Loc) -> tuple[Loc, str | None]:
    for prefix in _UNIONS:
        if loc[: len(prefix)] == prefix and len(loc) > len(prefix):
            return (*prefix, *loc[len(prefix) + 1 :]), str(loc[len(prefix)])
    return loc, None


def _unknown(errors: list[ErrorDetails], model: type[Section], hidden: Collection[str]) -> str:
    loc, tag = _strip_tag(errors[0]["loc"])
    parent = loc[:-1]
    keys = sorted(str(_strip_tag(e["loc"])[0][-1]) for e in errors)
    section = _model_at(model, parent, tag)
    known = sorted(set(section.model_fields) - set(hidden)) if section else []
    what = f" for type {tag}" if tag else ""
    if not parent:
        return f"unknown setting(s) {keys}; known: {known}"
    if len(parent) == 1:
        return f"unknown {parent[0]} setting(s) {keys}{what}; known: {known}"
    where = ".".join(str(part) for part in parent)
    return f"{where}: unknown setting(s) {keys}{what}; known: {known}"


def _model_at(model: type[Section], loc: Loc, tag: str | None) -> type[Section] | None:
    """The model of the section at ``loc``, ``None`` past the sections. In a store's union, the
    member of type ``tag``; without a tag, the first member (the table's first row)."""
    for depth, part in enumerate(loc):
        field_info = model.model_fields.get(str(part))
        annotation: Any = field_info.annotation if field_info is not None else None
        members = [annotation, *getattr(annotation, "__args__", ())]
        sections = [m for m in members if isinstance(m, type) and issubclass(m, Section)]
        tagged = [m for m in sections if depth == 0 and tag is not None and _type_of(m) == tag]
        if not sections:
            return None
        model = (tagged or sections)[0]
    return model


def _type_of(model: type[Section]) -> object:
    type_field = model.model_fields.get("type")
    return type_field.default if type_field is not None else None


def _example(model: type[Section], loc: Loc, tag: str | None) -> str:
    section = _model_at(model, loc, tag)
    example = section.example if section is not None else ""
    return example or "{...}"
