"""Cron schedules as CronJobs write them, and the times they fire.

``parse(text, time_zone=None)`` reads the standard five fields (minute, hour, day of month,
month, day of week) with ``*``/``?``, ranges ``a-b``, steps ``/n``, lists ``a,b`` and names
(``JAN``..``DEC``, ``SUN``..``SAT``), the macros ``@yearly`` ``@annually`` ``@monthly``
``@weekly`` ``@daily`` ``@midnight`` ``@hourly`` and ``@every <duration>``, with an optional
``CRON_TZ=<zone>`` or ``TZ=<zone>`` prefix. Times are evaluated on the wall clock of the zone
(``spec.timeZone`` beats the prefix, UTC when neither is given), so daylight saving shifts move
runs as they do for Kubernetes.

As in the cron most schedulers share: when both day fields are restricted (neither starts with
``*``), a day matches if either does; otherwise both must match.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
           ("month", 1, 12, MONTHS), ("day of week", 0, 6, DAYS))
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
SEARCH_YEARS = 5                      # a schedule that never fires within this many years never fires


class ScheduleError(ValueError):
    """The schedule text does not parse; the message says why."""


class UnknownTimeZone(ScheduleError):
    """The zone named by ``spec.timeZone`` or a ``TZ=`` prefix is not in the zone database."""


def zone(name: str | None) -> tzinfo:
    """The tzinfo for a zone name (None, "" and "UTC" are UTC; "Local" is refused: no host zone)."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise UnknownTimeZone(f"unknown time zone {name}") from e


@dataclass(frozen=True)
class Schedule:
    """Sets of allowed values per field, or a fixed interval (``@every``)."""

    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()       # 0 = Sunday
    days_star: bool = True
    weekdays_star: bool = True
    tz: tzinfo = UTC
    every: float | None = None                   # seconds, for @every

    def _day_matches(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.weekday() + 1) % 7 in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def _local(self, day: datetime, hour: int, minute: int) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)

    def next(self, after: datetime) -> datetime | None:
        """The first firing time strictly after ``after`` (aware), in UTC; None if none in
        ``SEARCH_YEARS`` years."""
        after = after.astimezone(UTC)
        if self.every is not None:
            step = max(1.0, float(int(self.every)))
            return (after + timedelta(seconds=step)).replace(microsecond=0)
        local = after.astimezone(self.tz)
        day = datetime(local.year, local.month, local.day)
        # Wall-clock minutes of the first candidate day: skip those at or before ``after``.
        for _ in range(366 * SEARCH_YEARS):
            if self._day_matches(day):
                for h in self.hours:
                    start = 0
                    if day.date() == local.date() and h < local.hour:
                        continue
                    if day.date() == local.date() and h == local.hour:
                        start = bisect.bisect_right(self.minutes, local.minute)
                    for m in self.minutes[start:]:
                        t = self._local(day, h, m).astimezone(UTC)
                        if t > after:
                            return t
            day += timedelta(days=1)
        return None

    def prev(self, at_or_before: datetime) -> datetime | None:
        """The last firing time at or before ``at_or_before``, in UTC (for ``@every``: None)."""
        if self.every is not None:
            return None
        ref = at_or_before.astimezone(UTC)
        local = ref.astimezone(self.tz)
        day = datetime(local.year, local.month, local.day)
        for _ in range(366 * SEARCH_YEARS):
            if self._day_matches(day):
                for h in reversed(self.hours):
                    for m in reversed(self.minutes):
                        t = self._local(day, h, m).astimezone(UTC)
                        if t <= ref:
                            return t
            day -= timedelta(days=1)
        return None


def _number(text: str, names: tuple[str, ...] | None, lo: int) -> int:
    if names and text.upper() in names:
        return names.index(text.upper()) + lo
    if not text.isdigit():
        raise ScheduleError(f"failed to parse int from {text}")
    return int(text)


def _field(text: str, lo: int, hi: int, names: tuple[str, ...] | None) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        range_step = part.split("/")
        if len(range_step) > 2:
            raise ScheduleError(f"too many slashes: {part}")
        bounds = range_step[0].split("-")
        if len(bounds) > 2:
            raise ScheduleError(f"too many hyphens: {part}")
        if bounds[0] in ("*", "?"):
            if len(bounds) == 2:
                raise ScheduleError(f"a range cannot start with *: {part}")
            start, end = lo, hi
        else:
            start = _number(bounds[0], names, lo)
            end = _number(bounds[1], names, lo) if len(bounds) == 2 else start
        step = 1
        if len(range_step) == 2:
            step = _number(range_step[1], None, 0)
            if step <= 0:
                raise ScheduleError(f"step of range should be a positive number: {part}")
            if len(bounds) == 1 and bounds[0] not in ("*", "?"):
                end = hi                 # "5/15" means from 5 to the maximum, every 15
        if start < lo:
            raise ScheduleError(f"beginning of range ({start}) below minimum ({lo}): {part}")
        if end > hi:
            raise ScheduleError(f"end of range ({end}) above maximum ({hi}): {part}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        out.update(range(start, end + 1, step))
    return out


def parse_duration(text: str) -> float:
    """A Go-style duration such as ``1h30m`` or ``90s``, in seconds."""
    text = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ScheduleError(f"failed to parse duration {text}")
    return total


def parse(text: str, time_zone: str | None = None) -> Schedule:
    """Parse a schedule; ``time_zone`` (``spec.timeZone``) overrides a ``CRON_TZ=``/``TZ=`` prefix."""
    s = text.strip()
    prefix_zone = None
    if s.startswith(("CRON_TZ=", "TZ=")):
        head, _, rest = s.partition(" ")
        prefix_zone = head.split("=", 1)[1]
        s = rest.strip()
    tz = zone(time_zone if time_zone is not None else prefix_zone)
    if not s:
        raise ScheduleError("empty spec string")
    if s.startswith("@every"):
        return Schedule(tz=tz, every=parse_duration(s[len("@every"):]))
    if s.startswith("@"):
        if s not in MACROS:
            raise ScheduleError(f"unrecognized descriptor: {s}")
        s = MACROS[s]
    fields = s.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    sets = [_field(f, lo, hi, names) for f, (_, lo, hi, names) in zip(fields, _FIELDS, strict=True)]
    return Schedule(minutes=tuple(sorted(sets[0])), hours=tuple(sorted(sets[1])), days=frozenset(sets[2]),
                    months=frozenset(sets[3]), weekdays=frozenset(sets[4]),
                    days_star=fields[2].startswith(("*", "?")), weekdays_star=fields[4].startswith(("*", "?")),
                    tz=tz)


def missed_runs(schedule: Schedule, earliest: datetime, now: datetime, cap: int = 101
                ) -> tuple[datetime | None, int]:
    """The most recent firing time in (``earliest``, ``now``] and how many there were (counted up
    to ``cap``; a count of ``cap`` means at least that many)."""
    if schedule.every is not None:
        count, last, t = 0, None, schedule.next(earliest)
        while t is not None and t <= now:
            count += 1
            last = t
            if count >= cap:
                step = max(1.0, float(int(schedule.every)))
                last = t + timedelta(seconds=step * int((now - t).total_seconds() // step))
                break
            t = schedule.next(t)
        return last, count
    last = schedule.prev(now)
    if last is None or last <= earliest:
        return None, 0
    count, t = 0, schedule.next(earliest)
    while t is not None and t <= now and count < cap:
        count += 1
        t = schedule.next(t)
    return last, count
