"""What any input may hold, one rule each, for every channel: text without control characters and of bounded
length, dates and times whose year stays far enough from 1 and 9999 that date arithmetic (buffers, horizons,
zones, +1 day) never overflows, integers that fit a bigint column, finite numbers.

Input models inherit `Input`, which checks every field (inside lists and dicts too), so a bad value is a field
error at the edge, never an OverflowError in the core or a DataError from PostgreSQL (which refuses NUL in
text). Edges that read a value by hand (a page's hidden time, the console's `date=`) call `in_range`.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator

EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2999, 12, 31)
BIGINT = 2**63 - 1  # PostgreSQL's bigint: ids and counts beyond it are NumericValueOutOfRange
MAX_TEXT = 10_000  # any text without a tighter bound of its own
MAX_DEPTH = 20  # lists and objects within each other
# C0 and C1 controls but tab and line breaks, DEL, and lone surrogates (which cannot be encoded as UTF-8)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def with_time_of_day(value: Any) -> Any:
    """A start needs its time: pydantic reads a bare date as that date's midnight, which a business open at night
    booked (and others refused as outside their hours, without a word about the missing time)."""
    if (isinstance(value, str) and DATE_ONLY.match(value)) or type(value) is dt.date:
        raise ValueError("needs a time of day, e.g. 2026-11-24T09:00:00+00:00: a date alone is no start time")
    return value


StartTime = Annotated[dt.datetime, BeforeValidator(with_time_of_day)]  # a booking's, a hold's, a move's start
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Scalar = Annotated[str, Field(max_length=2000)] | bool | int | float  # an intake answer: never an object or list


def in_range(value: dt.date) -> bool:
    """Whether a date (or a datetime's own calendar date) lies between EARLIEST and LATEST."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return EARLIEST <= day <= LATEST


def checked(value: Any, depth: int = 0) -> Any:
    """The value as given, or ValueError naming the rule it breaks; lists and dicts are checked all through."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nests lists or objects more than {MAX_DEPTH} deep")
    if isinstance(value, str):
        if (bad := CONTROL.search(value)) is not None:
            raise ValueError(f"contains a control character (U+{ord(bad[0]):04X}), which is not allowed")
        if len(value) > MAX_TEXT:
            raise ValueError(f"is too long (at most {MAX_TEXT} characters)")
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int) and not -BIGINT <= value <= BIGINT:
        raise ValueError(f"is out of range (at most {BIGINT} either side of zero)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    elif isinstance(value, dt.date) and not in_range(value):
        raise ValueError(f"must lie between {EARLIEST} and {LATEST}")
    elif isinstance(value, dict):
        for key, item in value.items():
            checked(key, depth + 1), checked(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            checked(item, depth + 1)
    return value


class Input(BaseModel):
    """Base of every input model: each field's value must pass `checked`."""

    @field_validator("*")
    @classmethod
    def _within_bounds(cls, value: Any) -> Any:
        return checked(value)
