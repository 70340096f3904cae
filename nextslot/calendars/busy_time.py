"""From iCalendar events to the busy time they mean for one resource (pure: no I/O)."""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar

from nextslot.calendars.provider import Interval
from nextslot.core.instants import day_start, first_instant

OURS = "X-NEXTSLOT-BOOKING"  # the property marking the events we write (the booking's key)
LENGTH = "X-NEXTSLOT-DURATION"  # an event's own DURATION, kept through expansion (which turns it into a DTEND)
DAY = timedelta(days=1)
MOST = 5000  # occurrences of one series in the window (an hourly one, day and night, has 2,300)
EARLIEST, LATEST = date.min + DAY, date.max - DAY  # the local dates whose midnight is an instant in any zone


def busy_intervals(texts: Iterable[str], zone: ZoneInfo, window: Interval) -> list[Interval]:
    """Merged busy intervals of the events in the window, recurring ones expanded.

    Transparent ("free") and cancelled events, and those nextslot wrote, block nothing; all-day events block the
    whole local day. An object a lenient server kept broken (no DTSTART, a bad rule or date) is read as far as it
    can be, never failing the calendar's other events.
    """
    found: list[Interval] = []
    for text in texts:
        try:
            calendar = Calendar.from_ical(text)
        except ValueError:  # not iCalendar: nothing in it reads as time, and the calendar's other events still do
            continue
        for source in calendar.walk("VEVENT"):  # occurrences are copies: they carry it to `event_interval`
            source.pop(LENGTH, None)
            if source.get("DURATION") is not None and source.get("DTEND") is None:
                source[LENGTH] = source["DURATION"]
        try:
            occurrences = expanded(calendar, zone, window)
        except (OverflowError, ValueError, KeyError):  # a date at the ends of time (year 1, 9999), a broken rule or
            occurrences = list(calendar.walk("VEVENT"))  # date: the events as they stand, rather than every sync failing
        for event in occurrences:
            if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            if event.get(OURS) is not None:  # a booking nextslot wrote: its claim already occupies the time
                continue
            try:
                interval = event_interval(event, zone)
            except ValueError:  # a broken date or duration: no time to read
                continue
            if interval and interval[0] < window[1] and interval[1] > window[0]:
                found.append(interval)
    return merged(found)


def expanded(calendar: Calendar, zone: ZoneInfo, window: Interval) -> list:
    """The occurrences of the calendar object's events in the window. A series with more than MOST of them (an
    invitation every minute, forever) would hold the sync for minutes and store as many rows: it blocks from
    its first occurrence to the window's end instead."""
    query = recurring_ical_events.of(calendar)
    # the expansion's ends can be a clock change out: a day's margin, then the real ends decide
    start, stop = query.to_datetime(window[0] - DAY), query.to_datetime(window[1] + DAY)
    found = []
    for series in query.series:
        some = [o.as_component(query.keep_recurrence_attributes)
                for o in itertools.islice(series.between(start, stop), MOST + 1)]
        if len(some) > MOST:
            first = min(some, key=lambda event: instant(event["DTSTART"].dt, zone))
            for name in ("DTEND", "DURATION", LENGTH):
                first.pop(name, None)
            first.add("DTEND", window[1])
            some = [first]
        found.extend(some)
    return found


def event_interval(event, zone: ZoneInfo) -> Interval | None:
    start = event.get("DTSTART")
    if start is None:
        return None
    start = start.dt
    end = event.get("DTEND")
    duration = event.get(LENGTH, event.get("DURATION") if end is None else None)
    if duration is not None:  # not the expansion's DTEND: start + duration on the wall clock
        end = duration_end(start, duration.dt, zone)
    elif end is not None:
        end = end.dt
    else:  # RFC 5545: a date lasts one day, a date-time is an instant
        end = start + timedelta(days=1) if not isinstance(start, datetime) else start
    a, b = instant(start, zone), instant(end, zone)
    return (a, b) if a < b else None


def duration_end(start: date | datetime, duration: timedelta, zone: ZoneInfo) -> datetime:
    """RFC 5545 3.3.6: a DURATION's days are nominal (the same wall time that many days on), the rest is
    elapsed time; so across a clock change PT2H is two real hours, and P1D ends at the same wall time."""
    days = timedelta(days=duration.days)
    return instant(start + days, zone).astimezone(UTC) + (duration - days)


def instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A date is the start of that local day; a floating time is local to the resource. One at the ends of time
    (year 1, 9999) is taken a day inside them, where every zone's offset still fits: the window is far from both."""
    if not isinstance(value, datetime):
        return day_start(min(max(value, EARLIEST), LATEST), zone)
    if value.tzinfo is not None:
        return value
    return first_instant(min(max(value, datetime.combine(EARLIEST, time())), datetime.combine(LATEST, time())), zone)


def merged(intervals: list[Interval]) -> list[Interval]:
    """Overlapping events are one busy stretch: a calendar occupies a resource at most once at a time."""
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
