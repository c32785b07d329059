"""Cron schedules: parsing, next and previous firing times, time zones, missed runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller_manager import cron


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 2026-11-21 is a Saturday.
NEXT_CASES = [
    ("*/15 * * * *", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 21, 10, 15)),
    ("*/15 * * * *", None, utc(2026, 11, 21, 10, 15), utc(2026, 11, 21, 10, 30)),
    ("* * * * *", None, utc(2026, 11, 21, 10, 15, 30), utc(2026, 11, 21, 10, 16)),
    ("5/20 * * * *", None, utc(2026, 11, 21, 10, 30), utc(2026, 11, 21, 10, 45)),
    ("0 9 * * MON-FRI", None, utc(2026, 11, 21, 12, 0), utc(2026, 11, 23, 9, 0)),
    ("0 9 * * 1-5", None, utc(2026, 11, 23, 9, 0), utc(2026, 11, 24, 9, 0)),
    ("0 0 1,15 * *", None, utc(2026, 11, 2), utc(2026, 11, 15)),
    ("0 0 * JAN,jul *", None, utc(2026, 11, 2), utc(2027, 1, 1)),
    ("30 4 29 2 *", None, utc(2026, 3, 1), utc(2028, 2, 29, 4, 30)),
    # Both day fields restricted: either may match (the 13th, or any Friday).
    ("0 0 13 * FRI", None, utc(2026, 11, 21), utc(2026, 11, 27)),
    ("0 0 13 * FRI", None, utc(2026, 12, 12, 1), utc(2026, 12, 13)),
    # One day field starred: both must match.
    ("0 0 * * SUN", None, utc(2026, 11, 21), utc(2026, 11, 22)),
    ("0 0 13 * ?", None, utc(2026, 11, 21), utc(2026, 12, 13)),
    ("@hourly", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 21, 11)),
    ("@daily", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 22)),
    ("@midnight", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 22)),
    ("@weekly", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 22)),
    ("@monthly", None, utc(2026, 11, 21, 10, 7), utc(2026, 12, 1)),
    ("@yearly", None, utc(2026, 11, 21, 10, 7), utc(2027, 1, 1)),
    ("@annually", None, utc(2026, 11, 21, 10, 7), utc(2027, 1, 1)),
    ("@every 90s", None, utc(2026, 11, 21, 10, 7), utc(2026, 11, 21, 10, 8, 30)),
    # Time zones: a prefix, spec.timeZone, and spec.timeZone winning over a prefix.
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", None, utc(2026, 11, 21, 1), utc(2026, 11, 22, 0)),
    ("TZ=Europe/Berlin 0 9 * * *", None, utc(2026, 11, 21, 1), utc(2026, 11, 21, 8)),
    ("0 9 * * *", "America/New_York", utc(2026, 11, 21, 1), utc(2026, 11, 21, 14)),
    ("TZ=Asia/Tokyo 0 9 * * *", "UTC", utc(2026, 11, 21, 1), utc(2026, 11, 21, 9)),
    # Across daylight saving time: 09:00 in New York is 13:00 UTC in summer, 14:00 in winter.
    ("0 9 * * *", "America/New_York", utc(2026, 10, 31, 14), utc(2026, 11, 1, 14)),
    ("0 9 * * *", "America/New_York", utc(2026, 10, 30, 12), utc(2026, 10, 30, 13)),
]


@pytest.mark.parametrize(("text", "tz", "after", "expected"), NEXT_CASES)
def test_next(text, tz, after, expected):
    assert cron.parse(text, tz).next(after) == expected


def test_prev_is_the_last_time_at_or_before():
    s = cron.parse("*/10 * * * *")
    assert s.prev(utc(2026, 11, 21, 10, 25)) == utc(2026, 11, 21, 10, 20)
    assert s.prev(utc(2026, 11, 21, 10, 20)) == utc(2026, 11, 21, 10, 20)
    assert cron.parse("0 9 * * MON").prev(utc(2026, 11, 21)) == utc(2026, 11, 16, 9)


@pytest.mark.parametrize(("text", "message"), [
    ("* * * *", "expected exactly 5 fields, found 4"),
    ("* * * * * *", "expected exactly 5 fields, found 6"),
    ("60 * * * *", "end of range (60) above maximum (59)"),
    ("* 0-24 * * *", "end of range (24) above maximum (23)"),
    ("* * 0 * *", "beginning of range (0) below minimum (1)"),
    ("*/0 * * * *", "step of range should be a positive number"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1)"),
    ("1/2/3 * * * *", "too many slashes"),
    ("1-2-3 * * * *", "too many hyphens"),
    ("x * * * *", "failed to parse int from x"),
    ("* * * FOO *", "failed to parse int from FOO"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 5 parsecs", "failed to parse duration"),
    ("", "empty spec string"),
])
def test_bad_schedules(text, message):
    with pytest.raises(cron.ScheduleError) as info:
        cron.parse(text)
    assert message in str(info.value)


def test_unknown_time_zone():
    with pytest.raises(cron.UnknownTimeZone):
        cron.parse("* * * * *", "Mars/Olympus_Mons")
    with pytest.raises(cron.UnknownTimeZone):
        cron.parse("CRON_TZ=Nowhere/Land * * * * *")


def test_missed_runs_counts_and_caps():
    s = cron.parse("*/5 * * * *")
    last, n = cron.missed_runs(s, utc(2026, 11, 21, 10, 0), utc(2026, 11, 21, 10, 17))
    assert (last, n) == (utc(2026, 11, 21, 10, 15), 3)
    last, n = cron.missed_runs(s, utc(2026, 11, 21, 10, 15), utc(2026, 11, 21, 10, 19))
    assert (last, n) == (None, 0)
    last, n = cron.missed_runs(cron.parse("* * * * *"), utc(2026, 11, 21), utc(2026, 11, 22), cap=101)
    assert last == utc(2026, 11, 22) and n == 101


def test_fields_expand_lists_ranges_and_steps():
    s = cron.parse("0,30 8-10/2 * * *")
    assert s.minutes == (0, 30) and s.hours == (8, 10)
    assert cron.parse("0 0 * * SUN,sat").weekdays == frozenset({0, 6})


def test_parse_duration():
    assert cron.parse_duration("1h30m") == 5400
    assert cron.parse_duration("1.5s") == 1.5
    with pytest.raises(cron.ScheduleError):
        cron.parse_duration("1x")
