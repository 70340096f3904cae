"""The longest values each kind of message can be given, so that a business's template is tried with them before
it is stored: one that could make a text message longer than Twilio takes is refused then, not at 3 am.

Names are as long as the schemas and columns let them be (200 characters; a character that SMS must send in two
places, such as an emoji, is left to the dispatcher, which shortens the names of such a message rather than lose
it). Links are as long as ours can be for a public URL of up to PUBLIC_URL_LENGTH characters, the largest ids,
the longest booking code and the last year a time may lie in; times in the longest words of each language.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

from nextslot.core.links import Links
from nextslot.core.money import money
from nextslot.schemas.spoken import AT, MONTHS, REPEATS, WEEKDAYS, spoken_day
from nextslot.schemas.times import REPEATS as EN_REPEATS

NAME_LENGTH = 200  # PersonName, the config's Name, and the name columns of businesses, services and customers
CODE_LENGTH = 16  # bookings.code
PUBLIC_URL_LENGTH = 100  # a deployment's public URL (Settings.public_url) this check allows for
LARGEST_ID = 2**63 - 1  # a bigint
LAST_INSTANT = datetime(2200, 12, 31, 23, 59, tzinfo=UTC)  # the last year a time may lie in (schemas.config)
LONGEST_DEPOSIT = money(100_000 * 100, "CHF").display  # DepositConfig's most, in a currency with no symbol
KINDS_WITHOUT_BOUND = ("business_",)  # notices to the business about its own set-up: a URL of 2,000 characters, an
# error's reason; the dispatcher shortens those in a text message


def longest(words: Iterable[str]) -> str:
    return max(words, key=len)


@cache
def longest_when(language: str) -> str:
    """The longest way a time is said in `language`: the longest day and month names, a two-digit day, a two-digit
    hour, and the longest note of a repeated wall time."""
    if language not in WEEKDAYS:
        day = f"{longest(calendar.day_name)} 28 {longest(calendar.month_name)}"
        return f"{day} at 12:30 pm{longest(EN_REPEATS)}"
    weekday = WEEKDAYS[language].index(longest(WEEKDAYS[language]))
    month = MONTHS[language].index(longest(MONTHS[language])) + 1
    return f"{spoken_day(weekday, 28, month, language)} {AT[language]} 12:30{longest(REPEATS[language])}"


@cache
def longest_values(kind: str, language: str) -> dict[str, str]:
    """The values a message of this kind gets, each as long as it can be (None: a kind with no such bound)."""
    links = Links("x", "https://" + "x" * (PUBLIC_URL_LENGTH - len("https://")))
    code, name, when = "X" * CODE_LENGTH, "N" * NAME_LENGTH, longest_when(language)
    hers = language if language != "en" else None  # her pages' links carry her language (reminders/jobs.py)
    if kind == "waitlist_offer":
        return {"name": name, "business": name, "service": name, "when": when, "minutes": "1440", "party": "100",
                "offer_url": links.offer_url(LARGEST_ID, LARGEST_ID, LAST_INSTANT)}
    return {"name": name, "service": name, "business": name, "code": code, "customer": name, "when": when,
            "previous_when": when, "manage_url": links.manage_url(LARGEST_ID, code, LAST_INSTANT, hers),
            "calendar_url": links.calendar_url(LARGEST_ID, code, LAST_INSTANT),
            "pay_url": links.pay_url(LARGEST_ID, code, LAST_INSTANT, hers), "deposit": LONGEST_DEPOSIT,
            "pay_by": when}


def has_bound(kind: str) -> bool:
    """Whether the kind's values have a length worth holding a template to (not the business's own notices)."""
    return not kind.startswith(KINDS_WITHOUT_BOUND)
