"""The building blocks of the configuration file: keys, names, opening-hours spans, zones, and their limits."""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema

from nextslot.schemas.inputs import Input

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]  # lower-case, digits, dashes
# JSON Schema's date-time wants an offset; an exception given as a date or as wall times is kept and shown without
# one, since a branch in another zone reads it on its own calendar.
WallOrInstant = Annotated[dt.datetime, WithJsonSchema({
    "type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$",
    "description": "ISO 8601 date and time: with an offset, that instant; without one, local wall time in the "
                   "resource's zone (closures: in each branch's zone)"})]


def parse_span(text: str) -> tuple[int, int]:
    """'09:00-17:30' -> minutes since midnight (540, 1050); '24:00' may end a day."""
    m = SPAN.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a span like 09:00-17:30")
    h1, m1, h2, m2 = map(int, m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or h1 > 23 or end > 1440 or start >= end:
        raise ValueError(f"'{text}' must run forwards within one day (00:00-24:00)")
    return start, end


def check_zone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as 'Europe'
        raise ValueError(f"'{name}' is not an IANA time zone such as Europe/London") from None
    return name


MAX_EXCEPTION_DAYS = 366
# the stored spans of all of a config's exceptions together (a day's spans, each day of a range): one closure of
# a year with 24 spans a day is 8,808 rows, and a thousand of them would be millions
MAX_EXCEPTION_SPANS = 5000
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Strict(Input):
    model_config = ConfigDict(extra="forbid")


# one reminder or several, from 5 minutes to 30 days before the start
ReminderOffsets = Annotated[list[Annotated[int, Field(ge=5, le=30 * 24 * 60)]], Field(max_length=5)]
Spans = Annotated[list[Annotated[str, StringConstraints(max_length=20)]], Field(max_length=24)]  # "09:00-12:30", ...
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WeeklySpans = dict[Weekday, Spans]
# far more than any business has, far less than what would hurt: bigger lists are refused whole
MAX_RESOURCES, MAX_SERVICES, MAX_EXCEPTIONS = 500, 500, 1000


def check_week(week: WeeklySpans | None) -> WeeklySpans | None:
    for spans in (week or {}).values():
        for span in spans:
            parse_span(span)
    return week
