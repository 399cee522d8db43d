"""The one instant parser of the CLI and REST (``featurestore.quality.windows``): ISO-8601 text
and relative instants (``now``, ``today``, ``now-3d``), alone and in ``START..END`` windows."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from featurestore.errors import QualityError
from featurestore.quality.windows import parse_instant, parse_window

NOW = datetime(2026, 12, 2, 9, 30, 15, 123, tzinfo=timezone.utc)
MIDNIGHT = datetime(2026, 12, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("today", MIDNIGHT),
        ("now-3d", NOW - timedelta(days=3)),
        ("now - 90m", NOW - timedelta(minutes=90)),
        ("now+1h", NOW + timedelta(hours=1)),
        ("now-45s", NOW - timedelta(seconds=45)),
        ("today-1w", MIDNIGHT - timedelta(weeks=1)),
        ("today+6h", MIDNIGHT + timedelta(hours=6)),
        ("2026-09-01", datetime(2026, 9, 1, tzinfo=timezone.utc)),
        ("2026-09-01T12:00:00", datetime(2026, 9, 1, 12, tzinfo=timezone.utc)),
    ],
)
def test_instants(text: str, expected: datetime) -> None:
    assert parse_instant(text, now=NOW) == expected


def test_relative_instants_count_from_the_clock_in_utc() -> None:
    before = datetime.now(timezone.utc)
    moment = parse_instant("now-1d")
    after = datetime.now(timezone.utc)
    assert moment.tzinfo is not None
    assert before - timedelta(days=1) <= moment <= after - timedelta(days=1)
    # A zoned "now" still gives midnight UTC for "today".
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert parse_instant("today", now=paris) == MIDNIGHT


@pytest.mark.parametrize("text", ["yesterday", "now-3", "now-d", "now*2d", "today-1y", "3d"])
def test_bad_instants_say_what_is_accepted(text: str) -> None:
    with pytest.raises(QualityError, match=re.escape(repr(text)) + " is not an instant.*now-3d"):
        parse_instant(text, now=NOW)


@pytest.mark.parametrize("text", ["now-99999999999w", "today+999999999999999999999d"])
def test_instants_past_the_calendar_are_bad_input_not_crashes(text: str) -> None:
    with pytest.raises(QualityError, match="outside the range of dates"):
        parse_instant(text, now=NOW)


def test_windows_take_relative_bounds() -> None:
    low, high = parse_window("now-3d..now")
    assert low is not None
    assert high is not None
    assert high - low == timedelta(days=3)
    low, high = parse_window("today-7d..")
    assert high is None
    assert low is not None
    assert low.hour == 0
    with pytest.raises(QualityError, match="the start is after the end"):
        parse_window("now..now-1d")
