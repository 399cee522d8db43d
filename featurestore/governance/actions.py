"""What a principal can do, as the access policies and the audit log name it."""

from __future__ import annotations

import enum

from featurestore.errors import DefinitionError


class Action(enum.Enum):
    """An action on a resource (``admin`` covers every other action, and access management)."""

    DESCRIBE = "describe"
    APPLY = "apply"
    READ_OFFLINE = "read_offline"
    READ_ONLINE = "read_online"
    WRITE_ONLINE = "write_online"
    WRITE_OFFLINE = "write_offline"
    MATERIALIZE = "materialize"
    DELETE = "delete"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: Action | str, where: str = "action") -> Action:
        if isinstance(value, Action):
            return value
        for action in cls:
            if value == action.value:
                return action
        raise DefinitionError(f"{where}: unknown action {value!r}; known: {[a.value for a in cls]}")
