"""Turn local dates, wall times and user-supplied times into UTC instants, refusing the unclear ones with a reason.

A local date is a whole local day: from its first instant to the first instant of the next date, found
without asking for an offset, because some zones skip or repeat midnight (America/Havana, Asia/Beirut...).
"""
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nextslot.core.results import Rejected

SECOND = timedelta(seconds=1)


def load_zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as 'Europe'
        return None


def unknown_zone(name: str, field: str = "timezone") -> Rejected:
    return Rejected("unknown_timezone", f"'{name}' is not an IANA time zone such as Europe/London.", field)


def wall_exists(wall: datetime, zone: ZoneInfo) -> bool:
    """False for a wall time skipped by a spring-forward change."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant the clocks in `zone` show `wall` or later (UTC).

    A repeated wall time is its first occurrence; a skipped one is the moment the clocks jump over it,
    so a skipped midnight gives the day's real start rather than an hour into it.
    """
    after = wall.replace(tzinfo=zone).astimezone(UTC)  # fold 0: the earlier of two, or as far past a gap as into it
    if wall_exists(wall, zone):
        return after
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # as far before the gap as into it
    while after - before > SECOND:  # the jump lies in (before, after]: tzdata changes fall on whole seconds
        middle = before + timedelta(seconds=(after - before) // SECOND // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


@lru_cache(maxsize=8192)  # opening hours turn the same days' walls into instants on every slot search
def wall_to_utc(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The first instant of `minute` past local midnight on `day` (minute 1440: the next day's start)."""
    return first_instant(datetime.combine(day, time()) + timedelta(minutes=minute), zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local date, whether its midnight happens once, twice or not at all."""
    return first_instant(datetime.combine(day, time()), zone)


def day_instants(first: date, zone: ZoneInfo, days: int = 1) -> tuple[datetime, datetime]:
    """The instants of `days` whole local days from `first`: [its first instant, the next date's first instant)."""
    return day_start(first, zone), day_start(first + timedelta(days=days), zone)


def resolve_instant(value: datetime | date, zone_name: str | None, field: str) -> datetime | Rejected:
    """An aware datetime as UTC; a wall time is read in `zone_name`, if it exists exactly once; a date is the
    first instant of that local day."""
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC)
    if not zone_name:
        return Rejected(
            "missing_timezone",
            f"{field} has no UTC offset: give one (e.g. 2026-11-25T17:00:00+01:00) or name the time zone.",
            field,
        )
    zone = load_zone(zone_name)
    if zone is None:
        return unknown_zone(zone_name)
    if not isinstance(value, datetime):
        return day_start(value, zone)
    if not wall_exists(value, zone):
        return Rejected(
            "nonexistent_local_time",
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone_name}: the clocks skip it for daylight saving.",
            field,
        )
    first, second = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        return Rejected(
            "ambiguous_local_time",
            f"{value:%Y-%m-%d %H:%M} happens twice in {zone_name} (clocks go back): "
            f"give the offset, {first.isoformat()} or {second.isoformat()}.",
            field,
        )
    return first.astimezone(UTC)
