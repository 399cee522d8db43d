"""What one reader may see of the features on a page: definitions, statistics, drift and
validation records with every feature the reader may not read taken out (not only its values: its
name too). The facade decides (:meth:`~featurestore.FeatureStore.visible_features`); this module
applies the decision to the JSON the pages render.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from featurestore.definitions.base import Definition
from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import ObjectNotFoundError
from featurestore.governance.access import Principal
from featurestore.store import FeatureStore

__all__ = ["CACHE_SIZE", "Visibility", "kwarg_columns"]

#: How many (registry state, principal, view) answers :meth:`Visibility.hidden` keeps per store.
#: Working one out reads every stored version of the view; the answer holds until the registry
#: changes (an apply, a policy, a key revoked: each moves the project's state token) or the
#: store's access controller reloads its policies (its generation), both part of the key, so a
#: page of a long history costs that read once, not on every page.
CACHE_SIZE = 1024
_Key = tuple[str, int, Principal, str]
_HIDDEN_CACHE: weakref.WeakKeyDictionary[FeatureStore, OrderedDict[_Key, frozenset[str]]] = (
    weakref.WeakKeyDictionary()
)
_CACHE_LOCK = threading.Lock()


class Visibility:
    """The features one principal may not see, per view, worked out once per request."""

    def __init__(self, store: FeatureStore, who: Principal | None) -> None:
        self.store = store
        self.who = who
        self._hidden: dict[str, frozenset[str]] = {}
        self._described: dict[str, frozenset[str]] = {}
        self._token: str | None = None

    def described(self, kind: str) -> frozenset[str]:
        """Names of the registered ``kind`` objects (``feature_view``,
        ``on_demand_feature_view``, ``feature_service``, ``entity``) the reader may describe."""
        if kind not in self._described:
            store, who = self.store, self.who
            found: list[Definition]
            if kind == "feature_view":
                found = list(store.list_feature_views(principal=who))
            elif kind == "on_demand_feature_view":
                found = list(store.list_on_demand_feature_views(principal=who))
            elif kind == "feature_service":
                found = list(store.list_feature_services(principal=who))
            else:
                found = list(store.list_entities(principal=who))
            self._described[kind] = frozenset(o.name for o in found)
        return self._described[kind]

    def hidden(self, view: str) -> frozenset[str]:
        """Feature names of ``view`` (every registered version of it) the reader may not see."""
        if view not in self._hidden:
            self._hidden[view] = self._work_out(view)
        return self._hidden[view]

    def _work_out(self, name: str) -> frozenset[str]:
        store = self.store
        guard = store.guard
        if not guard.access.enforced:
            return frozenset()  # no policy: everything is readable, no version need be read
        who = guard.principal(self.who)
        # The answer depends on the registry (versions, tags), the policies and the principal.
        key = (self._state(), guard.access.generation, who, name)
        with _CACHE_LOCK:
            cache = _HIDDEN_CACHE.setdefault(store, OrderedDict())
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        try:  # every stored version, in one read
            stored = store.registry.get_versions(store.project, "feature_view", name)
        except ObjectNotFoundError:
            stored = {}
        definitions = [d for d in stored.values() if isinstance(d, FeatureView)]
        governing = guard.governing(definitions[0]) if definitions else None
        hidden: set[str] = set()
        for definition in definitions:
            shown = store.visible_features(definition, principal=who, governing=governing)
            hidden |= set(definition.feature_names) - set(shown)
        with _CACHE_LOCK:
            cache[key] = frozenset(hidden)
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        return frozenset(hidden)

    def _state(self) -> str:
        """The registry's state token, read once per request."""
        if self._token is None:
            self._token = self.store.registry.state_token(self.store.project)
        return self._token

    def visible(self, view: str, feature: str) -> bool:
        return feature not in self.hidden(view)

    def column_visible(self, views: dict[str, int], column: str) -> bool:
        """Whether a saved dataset's column (``feature`` or ``view__feature``) may be shown."""
        view, sep, feature = column.partition("__")
        if sep and view in views:
            return self.visible(view, feature)
        return not any(column in self.hidden(v) for v in views)

    def definition(self, data: dict[str, Any], view: str) -> dict[str, Any]:
        """A view's ``to_dict()`` without the hidden features, wherever they are named: the
        schema, the field metadata, the validation suite, and any other part of the spec that
        lists entries by ``name``, ``column`` or ``feature`` (aggregations, transformations)."""
        hidden = self.hidden(view)
        if not hidden:
            return data
        cleaned: dict[str, Any] = _without(data, hidden)
        return cleaned

    def service(self, data: dict[str, Any]) -> dict[str, Any]:
        """A service's ``to_dict()`` with each projection's hidden features left out (a
        projection of the whole view is spelled out as its visible features)."""
        spec = dict(data.get("spec", {}))
        projections = []
        for projection in spec.get("projections", []):
            hidden = self.hidden(projection["view"])
            features = projection.get("features")
            if hidden and features is None:
                view = self.store.registry.get(
                    self.store.project, "feature_view", projection["view"]
                )
                assert isinstance(view, FeatureView)
                features = list(view.feature_names)
            if features is not None:
                features = [f for f in features if f not in hidden]
            projections.append({**projection, "features": features})
        return {**data, "spec": {**spec, "projections": projections}}

    def detail_lines(self, lines: list[str], view: str) -> list[str]:
        """A version's change lines without those naming a hidden feature."""
        hidden = self.hidden(view)
        return [line for line in lines if not any(_names(line, name) for name in hidden)]


_ENTRY_KEYS = ("name", "column", "feature")


def _without(value: Any, hidden: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, hidden) for k, v in value.items() if k not in hidden}
    if isinstance(value, list):
        kept = []
        for item in value:
            if isinstance(item, str) and item in hidden:
                continue
            if isinstance(item, dict) and _mentions(item, hidden):
                continue
            kept.append(_without(item, hidden))
        return kept
    return value


def _mentions(entry: dict[str, Any], hidden: frozenset[str]) -> bool:
    for key in _ENTRY_KEYS:
        if entry.get(key) in hidden:
            return True
    kwargs = entry.get("kwargs")
    return isinstance(kwargs, dict) and any(c in hidden for c in kwarg_columns(kwargs))


def kwarg_columns(kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation's arguments name (``column``, ``column_list``, ...)."""
    columns = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")]
    columns += list(kwargs.get("column_list") or [])
    return [c for c in columns if isinstance(c, str)]


def _names(line: str, name: str) -> bool:
    """Whether ``line`` names ``name`` as a word (``ssn`` in ``added feature ssn``)."""
    start = line.find(name)
    while start != -1:
        before = line[start - 1] if start else " "
        end = start + len(name)
        after = line[end] if end < len(line) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = line.find(name, start + 1)
    return False
