"""Line breaks in what a business or a customer typed, reaching what we generate: an email's headers and its
calendar attachment, sent through the real dispatcher and smtplib to a real SMTP server (aiosmtpd), and the ICS
feed over HTTP.

A business's name goes into every email's Subject and names every calendar (X-WR-CALNAME). Config text may hold
a line break (only the other control characters are refused). icalendar writes an X- property unescaped, so it
refused the calendar with an AssertionError: every email (its attachment) of such a business could not be
prepared, tried again and again, then given up, and the business's ICS feeds answered 500. The email library
refuses a header with a line break too (no Bcc can be smuggled in, but the email is lost). The customer's name
and notes must stay inside SUMMARY and DESCRIPTION, never start a property of their own."""
from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select

from nextslot.calendars.feeds import create_feed
from nextslot.reminders.channels.smtp_channel import SmtpEmailChannel
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.reminders.conftest import smtp_server  # noqa: F401 - a real SMTP server on loopback

BROKEN_NAME = "Riverside Clinic\r\nBcc: mallory@evil.example"
CUSTOMER = "Ann Lee\r\nATTENDEE:mailto:mallory@evil.example"
NOTES = "door code 4471\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:free lunch"


def test_a_business_name_with_a_line_break_neither_adds_a_header_nor_stops_its_email(
        service, make_business, session_factory, clock, smtp_server):  # noqa: F811
    clinic = make_business("clinic", name=BROKEN_NAME)
    booked = service.book(clinic, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, 9, tzinfo=UTC), notes=NOTES,
        customer=CustomerIn(name=CUSTOMER, email="ann@example.com", channels=["email"])))
    channel = SmtpEmailChannel("127.0.0.1", smtp_server.port, "Bookings <bookings@nextslot.test>")
    Dispatcher(session_factory, {"email": channel}, clock=clock).dispatch_due()

    with session_factory() as s:
        status = s.scalar(select(Notification.status).where(Notification.booking_id == booked.booking.id,
                                                           Notification.kind == "confirmation"))
    assert status == "delivered"
    [email] = smtp_server.messages
    assert smtp_server.envelopes == [("bookings@nextslot.test", ["ann@example.com"])]
    assert email["Bcc"] is None and "\n" not in email["Subject"] and "Riverside Clinic" in email["Subject"]

    [ics] = [part for part in email.iter_attachments() if part.get_content_type() == "text/calendar"]
    calendar = Calendar.from_ical(ics.get_payload(decode=True))
    [event] = calendar.walk("VEVENT")
    assert event.get("ATTENDEE") is None
    assert "ATTENDEE:mailto:mallory@evil.example" in str(event["SUMMARY"])
    assert "BEGIN:VEVENT" in str(event["DESCRIPTION"])


def test_a_business_name_with_a_line_break_still_gives_its_calendar_feed(service, make_business, session_factory):
    clinic = make_business("clinic", name=BROKEN_NAME)
    service.book(clinic, BookingCreate(service="consultation", starts_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
                                       customer=CustomerIn(name=CUSTOMER, phone="+447911123571")))
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    with TestClient(create_app(Settings(secret_key="injection-tests"), service=service)) as client:
        feed = client.get(f"/ics/{token}.ics")
    assert feed.status_code == 200, feed.text
    calendar = Calendar.from_ical(feed.content)
    assert "\n" not in str(calendar["X-WR-CALNAME"]) and [e.get("ATTENDEE") for e in calendar.walk("VEVENT")] == [None]
