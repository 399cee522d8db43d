"""Entities: the things features describe, identified by one or more join keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from featurestore.definitions.base import Definition, check_name
from featurestore.errors import DefinitionError
from featurestore.types import ValueType, check_value_type, from_name


class Entity(Definition):
    """An entity such as a driver or a customer.

    ``join_keys`` are the columns that identify one instance (default: ``[name]``).
    ``value_type`` is the type of the keys: one type for all, or a mapping per key. Keys are
    compared as typed values, never as concatenated strings::

        driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
        trip = Entity(name="trip", join_keys=["city", "trip_no"],
                      value_type={"city": String, "trip_no": Int64})
    """

    kind: ClassVar[str] = "entity"

    def __init__(
        self,
        name: str,
        join_keys: Sequence[str] | None = None,
        value_type: ValueType | Mapping[str, ValueType] | None = None,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        owner: str = "",
    ) -> None:
        self.name = check_name("entity", name)
        keys = [name] if join_keys is None else list(join_keys)
        if isinstance(join_keys, str):
            raise DefinitionError(
                f"entity {name!r}: join_keys must be a list, e.g. [{join_keys!r}]"
            )
        if not keys:
            raise DefinitionError(f"entity {name!r}: needs at least one join key")
        for key in keys:
            check_name(f"entity {name!r} join key", key)
        if len(set(keys)) != len(keys):
            raise DefinitionError(f"entity {name!r}: join keys {keys} repeat a name")
        self.join_keys: list[str] = keys
        self.join_key_types: dict[str, ValueType | None] = self._key_types(value_type)
        self._init_metadata(description, tags, owner)

    def _key_types(
        self, value_type: ValueType | Mapping[str, ValueType] | None
    ) -> dict[str, ValueType | None]:
        if value_type is None:
            return dict.fromkeys(self.join_keys)
        if isinstance(value_type, Mapping):
            unknown = set(value_type) - set(self.join_keys)
            if unknown:
                raise DefinitionError(
                    f"entity {self.name!r}: value_type names {sorted(unknown)}, "
                    f"which are not join keys {self.join_keys}"
                )
            return {
                k: check_value_type(f"entity {self.name!r} key {k!r}", value_type[k])
                if k in value_type
                else None
                for k in self.join_keys
            }
        checked = check_value_type(f"entity {self.name!r}", value_type)
        return dict.fromkeys(self.join_keys, checked)

    @property
    def value_type(self) -> ValueType | None:
        """The key type when the entity has exactly one typed join key."""
        types = set(self.join_key_types.values())
        return types.pop() if len(types) == 1 else None

    def spec(self) -> dict[str, Any]:
        return {
            "join_keys": [
                {"name": k, "dtype": None if t is None else t.name}
                for k, t in self.join_key_types.items()
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        """Rebuild an entity from :meth:`to_dict` output."""
        keys = data["spec"]["join_keys"]
        meta = data.get("meta", {})
        return cls(
            name=data["name"],
            join_keys=[k["name"] for k in keys],
            value_type={k["name"]: from_name(k["dtype"]) for k in keys if k["dtype"] is not None},
            description=meta.get("description", ""),
            tags=meta.get("tags"),
            owner=meta.get("owner", ""),
        )
