"""Fields: a named, typed column of a feature view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featurestore.definitions.base import check_name, check_tags
from featurestore.types import ValueType, check_value_type, from_name


class Field:
    """One typed column, e.g. ``Field(name="conv_rate", dtype=Float32)``."""

    def __init__(
        self,
        *,
        name: str,
        dtype: ValueType,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.name = check_name("field", name)
        self.dtype: ValueType = check_value_type(f"field {name!r}", dtype)
        self.description = description
        self.tags = check_tags(f"field {name!r}", tags)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.name}

    def meta(self) -> dict[str, Any]:
        return {"description": self.description, "tags": dict(sorted(self.tags.items()))}

    @classmethod
    def from_dicts(cls, spec: Mapping[str, Any], meta: Mapping[str, Any] | None) -> Field:
        meta = meta or {}
        return cls(
            name=spec["name"],
            dtype=from_name(spec["dtype"]),
            description=meta.get("description", ""),
            tags=meta.get("tags"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (self.spec(), self.meta()) == (
            other.spec(),
            other.meta(),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.dtype.name))

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, dtype={self.dtype!r})"
