"""Times on the booking pages: in the visitor's own zone, grouped by day, short enough for a phone."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from nextslot.core.instants import load_zone
from nextslot.core.results import Opening
from nextslot.languages import local_clock, local_day, local_when, ngettext
from nextslot.schemas.inputs import in_range
from nextslot.schemas.views import SlotView

# offered in the zone picker, besides the business's zone and the one in use (a detected zone is always kept)
COMMON_ZONES = (
    "UTC", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Vancouver", "America/Phoenix",
    "America/Denver", "America/Chicago", "America/Mexico_City", "America/New_York", "America/Toronto",
    "America/Bogota", "America/Lima", "America/Halifax", "America/St_Johns", "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires", "Atlantic/Reykjavik", "Europe/Lisbon", "Europe/London", "Europe/Dublin",
    "Europe/Madrid", "Europe/Paris", "Europe/Brussels", "Europe/Amsterdam", "Europe/Berlin", "Europe/Zurich",
    "Europe/Rome", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Helsinki", "Europe/Kyiv",
    "Europe/Istanbul", "Europe/Moscow", "Africa/Lagos", "Africa/Cairo", "Africa/Johannesburg", "Africa/Nairobi",
    "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Singapore",
    "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Manila", "Asia/Tokyo", "Asia/Seoul", "Australia/Perth",
    "Australia/Adelaide", "Australia/Brisbane", "Australia/Sydney", "Pacific/Auckland",
)


@dataclass(frozen=True)
class SlotChoice:
    at: str  # the start in UTC, as the pages pass it around: 2026-11-24T14:30:00Z
    clock: str  # "9:30 am"
    label: str  # "9:30 am, Tuesday 24 November": the whole time, for screen readers
    seats_left: int | None = None  # a class: places still free
    seats: str = ""  # "3 left", in the visitor's language


@dataclass(frozen=True)
class Day:
    day: date
    label: str  # "Tuesday 24 November"
    slots: list[SlotChoice]


def zone_choices(*keep: str) -> list[str]:
    """The zone picker's options: the common zones plus the ones given (the business's, the visitor's)."""
    extra = [z for z in keep if z and z not in COMMON_ZONES and load_zone(z)]
    return sorted({*COMMON_ZONES, *extra}, key=lambda z: (z != "UTC", z))


def day_label(day: date, language: str = "en") -> str:
    return local_day(day, language)


def duration(minutes: int) -> str:
    """45 -> '45 min', 90 -> '1 h 30 min'."""
    hours, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


def slot_param(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_slot_param(text: str | None) -> datetime | None:
    """A start time sent back by a page: an instant with an offset, within the years any input may name, else
    nothing."""
    if not text or len(text) > 40:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None or value.utcoffset() is None or not in_range(value):
        return None
    return value.astimezone(UTC)


def parse_day(text: str | None) -> date | None:
    """A day from a page's URL (`from=`, the console's `date=`), within the years any input may name, else
    nothing."""
    if not text or len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if in_range(day) else None


def by_day(openings: list[Opening], zone: ZoneInfo, language: str = "en") -> list[Day]:
    """Openings grouped by the visitor's local day; a clock time the night repeats (DST) says which of the two."""
    days: dict[date, list[SlotChoice]] = {}
    labels: dict[date, str] = {}  # each day's name, worked out once for its ~25 times
    for opening in openings:
        local = opening.starts_at.astimezone(zone)
        day = local.date()
        label = labels.get(day) or labels.setdefault(day, day_label(day, language))
        shown = local_clock(local, language)
        seats = opening.seats_left
        left = "" if seats is None else ", " + ngettext(language, "%(num)s place left", "%(num)s places left", seats)
        days.setdefault(day, []).append(
            SlotChoice(slot_param(opening.starts_at), shown, f"{shown}, {label}{left}", seats,
                       "" if seats is None else ngettext(language, "%(num)s left", "%(num)s left", seats)))
    return [Day(day, labels[day], choices) for day, choices in days.items()]


def alternatives(slots: list[SlotView], zone: ZoneInfo, language: str = "en") -> list[SlotChoice]:
    """A lost race's nearest openings, each labelled with its day (they may fall on different days)."""
    return [SlotChoice(slot_param(s.starts_at.utc), local_when(s.starts_at.utc, zone, language),
                       local_when(s.starts_at.utc, zone, language)) for s in slots]

