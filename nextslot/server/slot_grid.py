"""The slot grid: a few days of genuinely free start times in the visitor's zone, and where to page next."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from nextslot.core.instants import day_instants
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.schemas.commands import SlotQuery
from nextslot.server.page_times import Day, by_day, parse_day

DAYS_SHOWN = 4  # a phone screen's worth
FURTHEST = timedelta(days=366)
LOOK_AHEAD = timedelta(days=31)  # the core's largest window: for "the next opening is ..."


@dataclass(frozen=True)
class SlotGrid:
    days: list[Day]  # only days with openings
    first_day: date
    last_day: date
    earlier: date | None  # None: the grid already starts today
    later: date | None  # None: the grid reaches the furthest day a visitor may page to
    next_opening: date | None  # set when the shown days have none


def slot_grid(service: BookingService, business_id: int, service_key: str, zone: ZoneInfo,
              from_param: str | None, language: str = "en", location: str | None = None) -> SlotGrid | Rejected:
    """Openings from the asked day (default today, never in the past) for DAYS_SHOWN days."""
    now = service.now()
    today = now.astimezone(zone).date()
    first = min(max(parse_day(from_param) or today, today), today + FURTHEST)
    last = first + timedelta(days=DAYS_SHOWN - 1)
    start, end = day_instants(first, zone, DAYS_SHOWN)
    found = openings(service, business_id, service_key, zone, max(now, start), end, limit=1000, language=language,
                     location=location)
    if isinstance(found, Rejected):
        return found
    next_opening = None
    if not found:
        later = openings(service, business_id, service_key, zone, end, end + LOOK_AHEAD, limit=1, location=location)
        if isinstance(later, list) and later:
            next_opening = later[0].day
    earlier = max(first - timedelta(days=DAYS_SHOWN), today) if first > today else None
    later = last + timedelta(days=1) if last < today + FURTHEST else None  # past it, "later" showed the same days
    return SlotGrid(found, first, last, earlier, later, next_opening)


def openings(service: BookingService, business_id: int, service_key: str, zone: ZoneInfo, start: datetime,
             end: datetime, limit: int, language: str = "en", location: str | None = None) -> list[Day] | Rejected:
    found = service.find_openings(business_id, SlotQuery(service=service_key, starts_from=start, until=end,
                                                          limit=limit, location=location))
    return found if isinstance(found, Rejected) else by_day(found, zone, language)
