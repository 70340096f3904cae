"""Round 11: the .ics a customer gets by email and the feeds staff subscribe to, as bytes: UTC instants in odd zones,
one UID and a growing SEQUENCE through moves, RFC 5545 lines (CRLF, 75 octets, escaping) with hostile names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from nextslot.calendars.feeds import booking_ics, create_feed, feed_ics
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.storage.tables import Booking, Business
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import example

HOSTILE_NAMES = [
    "Zoë, Ñandú; \\n back\\slash\\;",
    "Ann\nLee\r\nBEGIN:VEVENT\rSUMMARY:free money",
    "\u202eeeL nnA\u202c \u200f\u2066",  # RTL override and isolates
    "👩🏽‍⚕️ Ana 日本語 " * 12,  # emoji sequences and CJK across the 75-octet folds
    "Line\u2028separator\u2029para\u0085",
]


def physical_lines_are_rfc5545(raw: bytes) -> None:
    """CRLF only, no line over 75 octets, no line that splits a UTF-8 character."""
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b""), "a bare CR or LF"
    for line in raw.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line
        line.decode("utf-8")  # a fold inside a character would make half a character of each line


def only_event(raw: bytes):
    [event] = Calendar.from_ical(raw).walk("VEVENT")
    return event


@pytest.fixture
def attachment(session_factory, clock):
    """The booking's .ics as the confirmation email carries it."""

    def read(business_id: int, code: str) -> bytes:
        with session_factory() as s:
            booking = s.query(Booking).filter_by(business_id=business_id, code=code).one()
            return booking_ics(s, s.get(Business, business_id), booking, clock())

    return read


def book(service, business: int, start: datetime, name: str = "Ann Lee", phone: str = "+447911123650") -> str:
    result = service.book(
        business, BookingCreate(service="consultation", starts_at=start, customer=CustomerIn(name=name, phone=phone))
    )
    assert hasattr(result, "booking"), result
    return result.booking.code


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_name_stays_inside_its_summary_in_both_the_attachment_and_the_feed(
    name, service, make_business, session_factory, attachment, clock
):
    config = example("clinic")
    config["business"]["name"] = 'Café, Zoë; "Ñ" 🦷 Clinic'
    config["business"]["details"]["address"] = "12 Rue, 75001\nParis; France"
    clinic = make_business(config)
    code = book(service, clinic, datetime(2026, 11, 24, 9, tzinfo=UTC), name)
    stored = CustomerIn(name=name).name  # as the schema keeps it (stripped)
    raw = attachment(clinic, code)
    physical_lines_are_rfc5545(raw)
    event = only_event(raw)
    assert str(event["summary"]) == f"GP consultation: {stored}".replace("\r\n", "\n").replace("\r", "\n")
    assert str(event["location"]) == "12 Rue, 75001\nParis; France"
    assert len(Calendar.from_ical(raw).walk("VEVENT")) == 1  # nothing smuggled in as a second event
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    feed = feed_ics(SqlAlchemyUnitOfWork(session_factory), token, clock())
    physical_lines_are_rfc5545(feed)
    assert str(only_event(feed)["summary"]) == str(event["summary"])


@pytest.mark.parametrize(
    ("zone", "local"),
    [
        ("Australia/Lord_Howe", datetime(2026, 10, 5, 9, 0)),  # the Monday after its half-hour spring-forward
        ("Australia/Lord_Howe", datetime(2027, 4, 5, 9, 0)),  # after its half-hour fall-back
        ("Pacific/Chatham", datetime(2026, 9, 28, 9, 0)),  # +12:45 -> +13:45
        ("Asia/Kathmandu", datetime(2026, 11, 24, 9, 0)),  # +05:45
        ("America/Santiago", datetime(2026, 9, 7, 9, 0)),  # after its skipped midnight
        ("Europe/London", datetime(2026, 10, 26, 9, 0)),  # the Monday after the clocks went back
    ],
)
def test_an_event_in_an_odd_zone_starts_at_the_booked_instant_in_utc(
    zone, local, service, make_business, attachment, session_factory, clock
):
    clinic = make_business("clinic", timezone=zone)
    start = local.replace(tzinfo=ZoneInfo(zone))
    clock.now = start.astimezone(UTC) - timedelta(days=3)
    code = book(service, clinic, start)
    raw = attachment(clinic, code)
    text = raw.decode()
    assert re.search(r"^DTSTART:\d{8}T\d{6}Z\r$", text, re.M), text  # UTC: no zone a calendar must know
    assert "TZID" not in text or "BEGIN:VTIMEZONE" in text  # a TZID names a VTIMEZONE of the file
    event = only_event(raw)
    assert event.decoded("dtstart") == start and event.decoded("dtend") == start + timedelta(minutes=20)


def test_a_booking_moved_twice_and_cancelled_keeps_its_uid_and_its_sequence_only_grows(
    service, make_business, attachment, session_factory, clock
):
    clinic = make_business("clinic")
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    code = book(service, clinic, start)
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    seen = []
    for change in (None, timedelta(hours=1), timedelta(days=1), "cancel"):
        if change == "cancel":
            service.cancel(clinic, BookingChange(code=code))
        elif change is not None:
            service.reschedule(clinic, BookingReschedule(code=code, starts_at=start + change))
        mailed = only_event(attachment(clinic, code))
        fed = only_event(feed_ics(SqlAlchemyUnitOfWork(session_factory), token, clock()))
        assert (mailed["uid"], int(mailed["sequence"])) == (fed["uid"], int(fed["sequence"]))
        assert mailed.decoded("dtstart") == fed.decoded("dtstart")
        seen.append((str(mailed["uid"]), int(mailed["sequence"]), str(mailed["status"])))
    assert len({uid for uid, _, _ in seen}) == 1
    assert [sequence for _, sequence, _ in seen] == sorted({sequence for _, sequence, _ in seen})
    assert seen[-1][2] == "CANCELLED" and seen[0][2] == "CONFIRMED"
