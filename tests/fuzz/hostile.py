"""What the fuzz runs send and check: values a careless or hostile client sends (years 1 and 9999, NUL and other
control characters, nan, 1e400, integers beyond bigint, objects where a scalar belongs, blank names) mixed with
valid ones so the generated calls also get past validation into the core; and the checks every answer must pass.

NEXTSLOT_FUZZ_EXAMPLES scales every run (e.g. 20000 for a long one); the default keeps all of tests/fuzz near a
minute.
"""
from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Claim,
    Customer,
    Hold,
    IdempotencyKey,
    Notification,
    WaitlistEntry,
)

SCALE = int(os.environ.get("NEXTSLOT_FUZZ_EXAMPLES", "0"))


def examples(default: int) -> settings:
    """Hypothesis settings for a run of `default` cases, or NEXTSLOT_FUZZ_EXAMPLES of them."""
    return settings(max_examples=SCALE or default, derandomize=not SCALE, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


# what no answer may carry: a traceback, the driver or ORM, SQL, exception class names
LEAKS = re.compile(r"Traceback|File \"|psycopg|sqlalchemy|SELECT |INSERT |UPDATE |DELETE FROM|"
                   r"\b\w+(Error|Exception)\b|OverflowError|set_int_max_str_digits|pydantic_core")
ALLOWED = {"ValidationError"}  # never printed by us, but a name a person may type into a form


def assert_clean(text: str, sent: Iterable[str] = ()) -> None:
    """No internal text in an answer, apart from what the request itself sent (a search echoed on its page): a sent
    value that reads like internal text is taken out of the answer before the check, and no other."""
    for value in sorted((v for v in sent if LEAKS.search(v)), key=len, reverse=True):
        text = text.replace(html.escape(value), "").replace(value, "")
    for match in LEAKS.finditer(text):
        assert match[0] in ALLOWED, f"internal text {match[0]!r} in an answer: {text[:600]}"


EDGE_DAYS = ["0001-01-01", "9999-12-31", "1969-12-31", "3000-01-01", "2999-12-31", "1970-01-01", "2026-02-30",
             "2026-11-24", "2026-11-25", "2026-11-23", "+2026-11-24", "20261124", "2026-W48-2", ""]
EDGE_TIMES = ["9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",
              "0001-01-01T00:00:00", "9999-12-31T23:00:00", "2026-11-24T09:00:00+00:00", "2026-11-24T09:00:00",
              "2026-11-24T09:15:00Z", "2026-11-25T10:00:00+01:00", "2026-03-29T01:30:00", "2026-11-24T25:00:00Z",
              "1e400", "nan", "now", "2026-11-24T09:00:00+24:00"]
CONTROL_TEXT = st.builds(lambda a, c, b: a + c + b, st.text(max_size=8),
                         st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\x85", "\ud800", "\u2028", "\t", "\n"]),
                         st.text(max_size=8))
HUGE_NUMBERS = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 2**63, -(2**63) - 1,
                                2**63 - 1, 10**30, 10**400, -1, 0, 0.5, 1e-320])
BLANKS = st.sampled_from(["", " ", "   ", "\t", "\u00a0", "\u200b"])
PHONES = st.sampled_from(["+447911123456", "07911 123456", "+12125550100", "12", "+4479111234567890123456789",
                          "+44 7911 123 456 ext 5"])
EMAILS = st.sampled_from(["ann@example.com", "a@b", "not an email", "ann@example.com\x00", "x" * 400 + "@e.com"])


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(EDGE_DAYS), st.sampled_from(EDGE_TIMES), CONTROL_TEXT, HUGE_NUMBERS, BLANKS, PHONES, EMAILS,
        st.booleans(), st.none(), st.integers(), st.floats(), st.text(max_size=30),
        st.sampled_from(["consultation", "ultrasound", "oil-change", "Dr Patel", "Europe/London", "Mars/Base",
                         "America/New_York", "Y7CTDJ", "x" * 5000, "09:00", "24:00", "yes"]),
    )


def values() -> st.SearchStrategy[Any]:
    """A scalar, or a list or object of them (nested a few levels: where a scalar is expected, too)."""
    return st.recursive(scalars(), lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                        max_leaves=6)


def arguments(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """An arguments object over a tool's or form's own names (and now and then one it does not have)."""
    keys = st.one_of(*[st.sampled_from(names)] * 3 * bool(names), st.text(max_size=8))
    return st.dictionaries(keys, values(), max_size=len(names) + 1)


def json_text(value: Any) -> str:
    """JSON as a careless client writes it: nan and Infinity as bare words, huge integers in full."""
    return json.dumps(value, allow_nan=True)


COUNTED = (Booking, Claim, Hold, Customer, WaitlistEntry, BookingHistory, Notification, IdempotencyKey)


def counts(session_factory) -> dict[str, int]:
    """Rows of every table a write touches: a refused request must leave them all as they were."""
    with session_factory() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in COUNTED}


def assert_whole(session_factory) -> None:
    """Nothing half-written: every booking has its claims, its history and a customer."""
    with session_factory() as s:
        bare = s.scalar(select(func.count()).select_from(Booking).where(
            ~select(Claim.id).where(Claim.booking_id == Booking.id).exists()))
        unrecorded = s.scalar(select(func.count()).select_from(Booking).where(
            ~select(BookingHistory.id).where(BookingHistory.booking_id == Booking.id).exists()))
    assert bare == 0 and unrecorded == 0, f"{bare} bookings without claims, {unrecorded} without history"
