"""What every definition shares: a name, metadata, a canonical serialization and a content hash.

A definition's serialization has two halves. ``spec`` holds everything that decides which values
it serves (schema, entities, source, TTL); its hash is the definition's *content hash*, and a new
hash means a new version. ``meta`` holds what only describes it (description, tags, owner); a
change there is recorded in the registry without a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from featurestore.errors import DefinitionError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal data, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(spec: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``spec``."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def check_name(kind: str, name: object) -> str:
    """Validate an object or column name, raising an error that names the object."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(
            f"{kind} name {name!r} is invalid: use letters, digits, '_' or '-', "
            "starting with a letter or '_'"
        )
    return name


def check_tags(owner: str, tags: Mapping[str, str] | None) -> dict[str, str]:
    """Tags are a flat str -> str mapping."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise DefinitionError(
            f"{owner}: tags must be a mapping of strings to strings, got {tags!r}"
        )
    return dict(tags)


class Definition:
    """Base of Entity, FeatureView and FeatureService: the objects kept in the registry."""

    kind: ClassVar[str]

    name: str
    description: str
    tags: dict[str, str]
    owner: str

    def _init_metadata(self, description: str, tags: Mapping[str, str] | None, owner: str) -> None:
        label = f"{self.kind} {self.name!r}"
        if not isinstance(description, str):
            raise DefinitionError(f"{label}: description must be a string")
        if not isinstance(owner, str):
            raise DefinitionError(f"{label}: owner must be a string")
        self.description = description
        self.tags = check_tags(label, tags)
        self.owner = owner

    @property
    def label(self) -> str:
        """How errors name this object, e.g. ``feature view 'driver_stats'``."""
        return f"{self.kind.replace('_', ' ')} {self.name!r}"

    def spec(self) -> dict[str, Any]:
        """The part of the serialization that decides which values are served."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """The descriptive part: a change here is recorded but makes no new version."""
        return {
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "owner": self.owner,
        }

    def to_dict(self) -> dict[str, Any]:
        """Canonical serialization: ``{"kind", "name", "spec", "meta"}``."""
        return {"kind": self.kind, "name": self.name, "spec": self.spec(), "meta": self.meta()}

    @property
    def content_hash(self) -> str:
        """Hash of :meth:`spec`; a different hash means a different version."""
        return content_hash(self.spec())

    @property
    def meta_hash(self) -> str:
        """Hash of :meth:`meta`, used to detect metadata-only changes."""
        return content_hash(self.meta())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Definition) or type(other) is not type(self):
            return False
        return canonical_json(self.to_dict()) == canonical_json(other.to_dict())

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.content_hash))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, hash={self.content_hash[:12]})"
