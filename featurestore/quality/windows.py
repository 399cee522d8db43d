"""Windows of event time as the CLI and REST write them: ``START..END``.

Each side is an ISO-8601 date or datetime (naive means UTC) or ``now``; either may be empty
for an open bound (``2026-09-01..`` is everything from September 1st on). Bounds are inclusive.
"""

from __future__ import annotations

from datetime import datetime, timezone

from featurestore.errors import QualityError

#: A window of event time, bounds inclusive (``None``: open).
Window = tuple[datetime | None, datetime | None]


def parse_instant(text: str) -> datetime:
    """An aware UTC-or-zoned datetime from ISO-8601 text or ``now``."""
    value = text.strip()
    if value.lower() == "now":
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise QualityError(
            f"{value!r} is not an ISO-8601 date or datetime (e.g. 2026-09-01T12:00:00) or 'now'"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def parse_window(text: str) -> Window:
    """``START..END`` as a window; see the module docstring."""
    if ".." not in text:
        raise QualityError(
            f"{text!r} is not a window: write START..END, e.g. 2026-09-01..2026-09-08"
        )
    start, end = text.split("..", 1)
    low = parse_instant(start) if start.strip() else None
    high = parse_instant(end) if end.strip() else None
    if low is not None and high is not None and low > high:
        raise QualityError(f"window {text!r}: the start is after the end")
    return (low, high)
