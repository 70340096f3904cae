"""Start times on a service's grid: every step minutes from local midnight in the business's zone, DST-aware
(a skipped wall time does not exist, a repeated one exists twice); and the local days a window touches."""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from nextslot.core.instants import wall_exists


def local_days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    """Every local date touched by [start, end), with one day of margin on each side."""
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


def grid_starts(step_minutes: int, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Grid start times in [start, end): every `step` minutes from local midnight, DST-aware."""
    grids = [g for day in local_days(start, end, zone) if (g := day_grid(step_minutes, zone, day))]
    starts = [s for grid in grids for s in grid]
    # each day's starts are in order and distinct; days overlap only where a zone's clocks went back a whole day
    if any(a[-1] >= b[0] for a, b in zip(grids, grids[1:])):
        starts = sorted(set(starts))
    return starts[bisect_left(starts, start):bisect_left(starts, end)]


@lru_cache(maxsize=1024)  # a day of 15-minute starts is about 5 KB: at most a few MB per process
def day_grid(step_minutes: int, zone: ZoneInfo, day: date) -> tuple[datetime, ...]:
    """The grid starts of one local date, in UTC and in order: the same for every search that touches the day."""
    midnight = datetime.combine(day, time())
    if steady_day(midnight, zone):  # most days: plain arithmetic from midnight, no conversion per start
        first = midnight.replace(tzinfo=zone).astimezone(UTC)
        return tuple(first + timedelta(minutes=minute) for minute in range(0, 1440, step_minutes))
    out: set[datetime] = set()
    for minute in range(0, 1440, step_minutes):
        wall = midnight + timedelta(minutes=minute)
        if not wall_exists(wall, zone):
            continue
        for fold in (0, 1):  # a repeated wall time is two instants
            out.add(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC))
    return tuple(sorted(out))


def steady_day(midnight: datetime, zone: ZoneInfo) -> bool:
    """True when the zone keeps one UTC offset from this local midnight to the next (no DST change).

    Equal unambiguous offsets at both midnights mean no change in between: tzdata has no two
    changes within a day (checked for every zone since 1970), so a change would show at one end.
    """
    ends = (midnight.replace(tzinfo=zone), (midnight + timedelta(days=1)).replace(tzinfo=zone))
    offsets = {t.replace(fold=fold).utcoffset() for t in ends for fold in (0, 1)}
    return len(offsets) == 1


def on_grid(instant: datetime, step_minutes: int, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    minutes = local.hour * 60 + local.minute
    return local.second == 0 and local.microsecond == 0 and minutes % step_minutes == 0
