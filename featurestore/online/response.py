"""The result of an online lookup: values, statuses and event times per column.

Columns are the join keys first (in the order the requested views declare them), then the
features in request order, named like the historical retrieval names them::

    response.to_dict()        # {"driver_id": [1, 2], "conv_rate": [0.5, None]}
    response.statuses         # {"driver_id": [PRESENT, PRESENT], "conv_rate": [PRESENT, NOT_FOUND]}
    response.to_feast_json()  # Feast's feature-server shape: {"metadata": ..., "results": [...]}
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FieldStatus", "OnlineResponse"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_TEXT = "1970-01-01T00:00:00Z"
#: Suffix of the event-time columns ``to_df(include_event_timestamps=True)`` adds (Feast's).
TIMESTAMP_SUFFIX = "__ts"
_NULLABLE_PANDAS = {
    pa.int32(): "Int32",
    pa.int64(): "Int64",
    pa.bool_(): "boolean",
}


class FieldStatus(str, Enum):
    """Why a looked-up value is what it is (the names Feast's feature server uses)."""

    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    NULL_VALUE = "NULL_VALUE"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


class OnlineResponse:
    """Values, statuses and event timestamps of one lookup, one list entry per entity row.

    Join-key columns echo the entity values with status ``PRESENT`` and no event time.
    """

    def __init__(
        self,
        *,
        join_keys: dict[str, list[Any]],
        values: dict[str, list[Any]],
        statuses: dict[str, list[FieldStatus]],
        event_timestamps_us: dict[str, list[int | None]],
        types: Mapping[str, pa.DataType],
        view_versions: Sequence[tuple[str, int]] = (),
    ) -> None:
        self._join_keys = join_keys
        self._view_versions = list(view_versions)
        self._values = values
        self._statuses = statuses
        self._event_ts_us = event_timestamps_us
        self._types = types

    @property
    def join_keys(self) -> list[str]:
        """The join-key column names, in output order."""
        return list(self._join_keys)

    @property
    def feature_names(self) -> list[str]:
        """The feature column names, in request order."""
        return list(self._values)

    @property
    def columns(self) -> list[str]:
        """Every output column: join keys first, then features."""
        return [*self._join_keys, *self._values]

    @property
    def metadata(self) -> dict[str, list[str]]:
        """``{"feature_names": [...]}``, every column in order, as Feast's server reports it."""
        return {"feature_names": self.columns}

    @property
    def view_versions(self) -> list[tuple[str, int]]:
        """``(view, version)`` of every view read, in request order (a view asked at two
        versions appears twice)."""
        return list(self._view_versions)

    def column(self, name: str) -> tuple[list[Any], list[FieldStatus], list[int | None]]:
        """One feature's values, statuses and event times (epoch microseconds), not copied."""
        return self._values[name], self._statuses[name], self._event_ts_us[name]

    @property
    def key_columns(self) -> Mapping[str, list[Any]]:
        """The join-key columns as echoed, not copied."""
        return self._join_keys

    @property
    def types(self) -> Mapping[str, pa.DataType]:
        """The Arrow type of each column."""
        return self._types

    def __len__(self) -> int:
        """The number of entity rows."""
        first = next(iter(self._join_keys.values()), None)
        if first is None:
            first = next(iter(self._values.values()), [])
        return len(first)

    def to_dict(self) -> dict[str, list[Any]]:
        """``{column: [value per entity row]}``: join keys first, then features in request order.

        Values that are not ``PRESENT`` are ``None``; see :attr:`statuses` for why.
        """
        out = {name: list(values) for name, values in self._join_keys.items()}
        for name, values in self._values.items():
            out[name] = list(values)
        return out

    @property
    def statuses(self) -> dict[str, list[FieldStatus]]:
        """``{column: [status per entity row]}``; join keys are always ``PRESENT``."""
        rows = len(self)
        out: dict[str, list[FieldStatus]] = {
            name: [FieldStatus.PRESENT] * rows for name in self._join_keys
        }
        for name, statuses in self._statuses.items():
            out[name] = list(statuses)
        return out

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """``{column: [event time per entity row]}`` (UTC); ``None`` for join keys and rows
        not found. An ``OUTSIDE_MAX_AGE`` value keeps the event time that made it too old."""
        rows = len(self)
        out: dict[str, list[datetime | None]] = {name: [None] * rows for name in self._join_keys}
        converted: dict[int, list[datetime | None]] = {}
        for name, stamps in self._event_ts_us.items():
            # Features of one view share their list of stamps: convert it once.
            if id(stamps) not in converted:
                converted[id(stamps)] = [
                    None if us is None else _EPOCH + timedelta(microseconds=us) for us in stamps
                ]
            out[name] = list(converted[id(stamps)])
        return out

    def to_arrow(self) -> pa.Table:
        """The values as a pyarrow Table with the declared types (join keys, then features)."""
        arrays = {
            name: pa.array(values, self._types.get(name))
            for name, values in {**self._join_keys, **self._values}.items()
        }
        return pa.table(arrays)

    def to_pandas(self) -> pd.DataFrame:
        """The values as a pandas DataFrame, same columns as :meth:`to_dict`.

        Integer and Bool columns use pandas' nullable dtypes, so a missing value is ``<NA>``
        and the column keeps its type.
        """
        return _nullable_frame(self.to_arrow())

    def to_df(self, include_event_timestamps: bool = False) -> pd.DataFrame:
        """Feast's name for :meth:`to_pandas`: the same frame, join keys then features.

        With ``include_event_timestamps``, each column is followed by ``<column>__ts``, its
        event time in whole seconds since the epoch, as Feast's ``to_df`` gives it; where there
        is none (join keys, rows not found) it is ``<NA>`` rather than Feast's 0.
        """
        table = self.to_arrow()
        if include_event_timestamps:
            rows = len(self)
            columns: dict[str, pa.Array] = {}
            for name in table.column_names:
                stamps = self._event_ts_us.get(name, [None] * rows)
                columns[name] = table.column(name).combine_chunks()
                columns[f"{name}{TIMESTAMP_SUFFIX}"] = pa.array(
                    [None if us is None else us // 1_000_000 for us in stamps], pa.int64()
                )
            table = pa.table(columns)
        return _nullable_frame(table)

    def to_feast_json(
        self, *, include_feature_view_version_metadata: bool = False
    ) -> dict[str, Any]:
        """Feast's feature-server response body, JSON-ready.

        ``{"metadata": {"feature_names": [...]}, "results": [{"values", "statuses",
        "event_timestamps"}, ...]}`` with one result per column, join keys first. Timestamps are
        ISO-8601 UTC strings (``1970-01-01T00:00:00Z`` where there is none, as Feast does);
        datetime values become ISO strings and bytes base64. With
        ``include_feature_view_version_metadata`` the metadata also lists each view read once,
        as Feast does: ``"feature_view_metadata": [{"name": "driver_stats", "version": 2}]``.
        """
        results: list[dict[str, list[Any]]] = []
        rows = len(self)
        for name, values in self._join_keys.items():
            results.append(
                {
                    "values": _json_values(values, self._types.get(name)),
                    "statuses": [FieldStatus.PRESENT.value] * rows,
                    "event_timestamps": [_EPOCH_TEXT] * rows,
                }
            )
        # Features of one view share one list of event timestamps: format it once.
        formatted: dict[int, list[str]] = {}
        for name, values in self._values.items():
            stamps = self._event_ts_us[name]
            texts = formatted.get(id(stamps))
            if texts is None:
                texts = formatted[id(stamps)] = [_iso_micros(us) for us in stamps]
            results.append(
                {
                    "values": _json_values(values, self._types.get(name)),
                    "statuses": [s.value for s in self._statuses[name]],
                    "event_timestamps": texts,
                }
            )
        metadata: dict[str, Any] = dict(self.metadata)
        if include_feature_view_version_metadata:
            # One entry per view name, its first version in request order (Feast's rule).
            first: dict[str, int] = {}
            for name, version in self._view_versions:
                first.setdefault(name, version)
            metadata["feature_view_metadata"] = [
                {"name": name, "version": version} for name, version in first.items()
            ]
        return {"metadata": metadata, "results": results}

    def __repr__(self) -> str:
        return f"OnlineResponse(rows={len(self)}, columns={self.columns})"


def _nullable_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as pandas, integer and Bool columns in nullable dtypes (``<NA>``, not NaN)."""
    frame: pd.DataFrame = table.to_pandas()
    for name in table.column_names:
        nullable = _NULLABLE_PANDAS.get(table.schema.field(name).type)
        if nullable is not None:
            frame[name] = frame[name].astype(nullable)
    return frame


def _iso_micros(us: int | None) -> str:
    if us is None:
        return _EPOCH_TEXT
    return _iso(_EPOCH + timedelta(microseconds=us))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return f"{text}Z"


def _json_values(values: list[Any], dtype: pa.DataType | None) -> list[Any]:
    """``values`` JSON-ready: numbers, strings and booleans are already."""
    if dtype is not None and (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
    ):
        return values
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value
