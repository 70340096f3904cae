"""Turn user-supplied times into UTC instants, refusing the ambiguous ones with a reason."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nextslot.core.availability import wall_exists
from nextslot.core.results import Rejected


def load_zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as 'Europe'
        return None


def unknown_zone(name: str, field: str = "timezone") -> Rejected:
    return Rejected("unknown_timezone", f"'{name}' is not an IANA time zone such as Europe/London.", field)


def resolve_instant(value: datetime, zone_name: str | None, field: str) -> datetime | Rejected:
    """An aware datetime as UTC; a wall time is read in `zone_name`, if it exists exactly once."""
    if value.tzinfo is not None and value.utcoffset() is not None:
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
