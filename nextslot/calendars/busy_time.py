"""From iCalendar events to the busy time they mean for one resource (pure: no I/O)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar

from nextslot.calendars.provider import Interval
from nextslot.core.instants import day_start, first_instant

OURS = "X-NEXTSLOT-BOOKING"  # the property marking the events we write (the booking's key)


def busy_intervals(texts: Iterable[str], zone: ZoneInfo, window: Interval) -> list[Interval]:
    """Merged busy intervals of the events in the window, recurring ones expanded.

    Transparent ("free") and cancelled events, and those nextslot wrote, block nothing; all-day events block the
    whole local day.
    """
    found: list[Interval] = []
    for text in texts:
        calendar = Calendar.from_ical(text)
        for event in recurring_ical_events.of(calendar).between(*window):
            if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            if event.get(OURS) is not None:  # a booking nextslot wrote: its claim already occupies the time
                continue
            interval = event_interval(event, zone)
            if interval and interval[0] < window[1] and interval[1] > window[0]:
                found.append(interval)
    return merged(found)


def event_interval(event, zone: ZoneInfo) -> Interval | None:
    start = event.get("DTSTART")
    if start is None:
        return None
    start = start.dt
    end = event.get("DTEND")
    if end is not None:
        end = end.dt
    elif event.get("DURATION") is not None:
        end = start + event.get("DURATION").dt
    else:  # RFC 5545: a date lasts one day, a date-time is an instant
        end = start + timedelta(days=1) if not isinstance(start, datetime) else start
    a, b = instant(start, zone), instant(end, zone)
    return (a, b) if a < b else None


def instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A date is the start of that local day; a floating time is local to the resource."""
    if not isinstance(value, datetime):
        return day_start(value, zone)
    return value if value.tzinfo is not None else first_instant(value, zone)


def merged(intervals: list[Interval]) -> list[Interval]:
    """Overlapping events are one busy stretch: a calendar occupies a resource at most once at a time."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
