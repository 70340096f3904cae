"""Dates and times said the local way, from CLDR's patterns (Babel): 'martes, 8 de diciembre, 10:00',
'mardi 8 décembre à 10:00', 'Dienstag, 8. Dezember, 10:00 Uhr'. English keeps the spoken form every channel
already uses ('Tuesday 8 December at 10 am'), which voice agents read well."""
from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time

from nextslot.languages.catalogs import N_, gettext
from nextslot.schemas.times import clock_time, repeat_note, spoken_time

# the two showings of a wall time a fall-back night repeats
REPEATS = (N_(" (before the clocks go back)"), N_(" (after the clocks go back)"))


@cache
def day_pattern(language: str) -> str:
    """CLDR's 'weekday, day month' skeleton for the language, with the weekday written out in full."""
    skeleton = Locale.parse(language).datetime_skeletons["MMMMEd"]
    return re.sub(r"E+", "EEEE", str(skeleton.pattern))


def local_day(day: date, language: str) -> str:
    """'Tuesday 8 December', 'martes, 8 de diciembre', 'Dienstag, 8. Dezember'."""
    if language == "en":
        return f"{day:%A} {day.day} {day:%B}"
    return format_date(day, day_pattern(language), locale=language)


def local_clock(local: datetime, language: str) -> str:
    """'10 am' / '10:00', with a note on the night the clocks show this time twice."""
    if language == "en":
        return clock_time(local)
    return format_time(local, "short", locale=language) + repeat_of(local, language)


def repeat_of(local: datetime, language: str) -> str:
    return repeat_note(local, (gettext(language, REPEATS[0]), gettext(language, REPEATS[1])))


def local_when(instant: datetime, zone: ZoneInfo, language: str) -> str:
    """The day and time in the zone, in the language: what a page shows and an agent says."""
    if language == "en":
        return spoken_time(instant, zone)
    local = instant.astimezone(zone)
    return gettext(language, "%(day)s at %(time)s", day=local_day(local.date(), language),
                   time=format_time(local, "short", locale=language)) + repeat_of(local, language)
