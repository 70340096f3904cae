"""ICS feeds fetched from the running server and parsed back with `icalendar`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
from icalendar import Calendar

from nextslot.calendars.feeds import create_feed
from nextslot.core.links import Links
from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, CustomerIn
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork

TUESDAY_9 = datetime(2026, 11, 24, 9, tzinfo=UTC)


def book(service, business: int, start: datetime, phone: str, resources: list[str]):
    return service.book(business, BookingCreate(service="consultation", starts_at=start, resources=resources,
                                                customer=CustomerIn(name="Ann Lee", phone=phone))).booking


def events(server, token: str) -> dict[str, dict]:
    response = httpx2.get(f"{server.url}/ics/{token}.ics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return {str(e["uid"]): {"start": e.decoded("dtstart"), "end": e.decoded("dtend"), "sequence": int(e["sequence"]),
                            "status": str(e["status"]), "summary": str(e["summary"]),
                            "description": str(e["description"])} for e in calendar.walk("VEVENT")}


def test_a_reschedule_keeps_the_uid_and_bumps_the_sequence_and_a_cancel_shows_as_cancelled(
        service, make_business, session_factory, live_server):
    clinic = make_business("clinic")
    token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic)
    patel_token = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-patel")
    booking = book(service, clinic, TUESDAY_9, "+447911123600", ["dr-patel"])
    with live_server(frozen=True) as server:
        [(uid, first)] = events(server, token).items()
        assert first["start"] == TUESDAY_9 and first["end"] == TUESDAY_9 + timedelta(minutes=20)
        assert first["sequence"] == 0 and first["status"] == "CONFIRMED" and booking.code in first["description"]
        assert first["summary"] == "GP consultation: Ann Lee"
        service.reschedule(clinic, BookingReschedule(code=booking.code, starts_at=TUESDAY_9 + timedelta(hours=1)))
        moved = events(server, token)[uid]
        assert moved["start"] == TUESDAY_9 + timedelta(hours=1) and moved["sequence"] == 1
        assert uid in events(server, patel_token)
        service.cancel(clinic, BookingChange(code=booking.code))
        cancelled = events(server, token)[uid]
        assert cancelled["status"] == "CANCELLED" and cancelled["sequence"] == 2


def test_a_resource_feed_shows_only_that_resources_bookings_and_unknown_tokens_get_404(
        service, make_business, session_factory, live_server):
    clinic = make_business("clinic")
    wednesday = TUESDAY_9 + timedelta(days=1, hours=2)  # both doctors work
    patel = book(service, clinic, wednesday, "+447911123601", ["dr-patel"])
    okafor = book(service, clinic, wednesday, "+447911123602", ["dr-okafor"])
    okafor_feed = create_feed(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor")
    assert create_feed(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-who").code == "unknown_resource"
    with live_server(frozen=True) as server:
        shown = events(server, okafor_feed)
        assert [e["description"].split()[1] for e in shown.values()] == [okafor.code]
        assert patel.code not in str(shown)
        assert httpx2.get(f"{server.url}/ics/not-a-token.ics").status_code == 404


def test_a_customer_gets_their_own_booking_as_ics_through_the_signed_link_and_nothing_else(
        service, make_business, live_server):
    clinic = make_business("clinic")
    booking = book(service, clinic, TUESDAY_9, "+447911123601", ["dr-patel"])
    links = Links("ics-link-secret", "http://unused")
    token = links.token("manage", clinic, booking.code, TUESDAY_9)
    with live_server(frozen=True, settings=Settings(secret_key="ics-link-secret")) as server:
        response = httpx2.get(f"{server.url}/ics/booking/{token}.ics")
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
        [event] = Calendar.from_ical(response.content).walk("VEVENT")
        assert event.decoded("dtstart") == TUESDAY_9 and booking.code in str(event["description"])
        assert httpx2.get(f"{server.url}/ics/booking/{token[:-2]}xx.ics").status_code == 404
        other = links.token("manage", clinic + 1000, booking.code, TUESDAY_9)  # a real code, another business
        assert httpx2.get(f"{server.url}/ics/booking/{other}.ics").status_code == 404
