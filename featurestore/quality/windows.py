"""Instants and windows of event time as the CLI and REST write them: ``START..END``.

An instant is an ISO-8601 date or datetime (naive means UTC), ``now``, ``today`` (midnight UTC),
or one of those two plus or minus a whole number of seconds, minutes, hours, days or weeks:
``now-3d``, ``today-1w``, ``now+30m``. Relative instants let commands and docs avoid hard-coded
dates (``featurestore materialize now-7d now``).

A window is two instants, either of which may be empty for an open bound (``2026-09-01..`` is
everything from September 1st on; ``now-3d..`` the last three days). Bounds are inclusive.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from featurestore.errors import QualityError

_RELATIVE = re.compile(r"(now|today)(?:\s*([+-])\s*(\d+)\s*([smhdw]))?", re.IGNORECASE)
_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}

#: A window of event time, bounds inclusive (``None``: open).
Window = tuple[datetime | None, datetime | None]


def parse_instant(text: str, now: datetime | None = None) -> datetime:
    """An aware datetime from ISO-8601 text or a relative instant (see the module docstring).

    ``now`` is the current instant relative ones count from (default: the clock, in UTC)::

        parse_instant("today-1d", now=datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc))
        # datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        anchor, sign, amount, unit = relative.groups()
        moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        if anchor.lower() == "today":
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if amount is None:
            return moment
        try:
            offset = int(amount) * _UNITS[unit.lower()]
            return moment + offset if sign == "+" else moment - offset
        except OverflowError:
            raise QualityError(f"{value!r} is outside the range of dates") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise QualityError(
            f"{value!r} is not an instant: write an ISO-8601 date or datetime "
            "(e.g. 2026-09-01T12:00:00), 'now', 'today', or one of those plus or minus an amount "
            "of s, m, h, d or w (e.g. now-3d, today-1w)"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def parse_window(text: str, now: datetime | None = None) -> Window:
    """``START..END`` as a window; see the module docstring. Relative bounds count from the
    same ``now``, so ``now-3d..now`` is exactly three days long."""
    now = now or datetime.now(timezone.utc)
    if ".." not in text:
        raise QualityError(
            f"{text!r} is not a window: write START..END, e.g. 2026-09-01..2026-09-08"
        )
    start, end = text.split("..", 1)
    low = parse_instant(start, now) if start.strip() else None
    high = parse_instant(end, now) if end.strip() else None
    if low is not None and high is not None and low > high:
        raise QualityError(f"window {text!r}: the start is after the end")
    return (low, high)
