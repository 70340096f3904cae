"""Another business's ids in every console route and every /v1 route that takes one: staff of business A,
signed in or holding A's key, can neither read nor change B's bookings, customers, conversations, calendars,
closures, time off or webhook endpoints; what they get looks exactly like an id that does not exist."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from nextslot.calendars.connections import add_calendar
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import (
    AvailabilityException,
    Booking,
    Conversation,
    ConversationMessage,
    Customer,
    ExternalCalendar,
    WebhookEndpoint,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.webhooks.endpoints import add_endpoint
from tests.server.test_console import clients, console, csrf_of, slug_of  # noqa: F401 - the signed-in console

SECRET_NAME, SECRET_PHONE, SECRET_TEXT = "Zebedee Quartermain", "+447900977123", "my door code is 4471"


class Theirs:
    """Business B with one of everything an id can name."""

    def __init__(self, service, session_factory, make_business, api_key):
        self.id = make_business("clinic")
        self.slug = slug_of(session_factory, self.id)
        booked = service.book(self.id, BookingCreate(service="consultation", starts_at="2026-11-24T09:00:00Z",
                                                     customer=CustomerIn(name=SECRET_NAME, phone=SECRET_PHONE)))
        assert isinstance(booked, Booked)
        self.code = booked.booking.code
        with session_factory() as s:
            self.customer_id = s.scalar(select(Booking.customer_id).where(Booking.code == self.code))
            talk = Conversation(business_id=self.id, channel="sms", phone=SECRET_PHONE, status="open",
                                last_message_at=datetime.now(UTC), handoff_at=datetime.now(UTC))
            s.add(talk)
            s.flush()
            s.add(ConversationMessage(business_id=self.id, conversation_id=talk.id, direction="in", body=SECRET_TEXT,
                                      created_at=datetime.now(UTC), processed_at=datetime.now(UTC)))
            s.commit()
            self.conversation_id = talk.id
        self.calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), self.id, "dr-okafor",
                                        "http://127.0.0.1:9/cal/", allow_private=True)
        self.endpoint_id = add_endpoint(SqlAlchemyUnitOfWork(session_factory), self.id, "https://b.example/hook").id
        self.key = api_key(self.id)

    def state(self, session_factory) -> tuple:
        """Everything an attack could change; compared before and after."""
        with session_factory() as s:
            booking = s.scalar(select(Booking).where(Booking.code == self.code))
            customer = s.get(Customer, self.customer_id)
            return (booking.status, booking.starts_at, customer.name, customer.phone,
                    s.get(Conversation, self.conversation_id).handoff_at,
                    s.scalar(select(func.count()).select_from(ConversationMessage)
                             .where(ConversationMessage.conversation_id == self.conversation_id)),
                    s.get(ExternalCalendar, self.calendar_id) is not None,
                    s.get(WebhookEndpoint, self.endpoint_id).active,
                    s.scalar(select(func.count()).select_from(AvailabilityException)
                             .where(AvailabilityException.business_id == self.id)))


@pytest.fixture
def theirs(service, session_factory, make_business, api_key) -> Theirs:
    return Theirs(service, session_factory, make_business, api_key)


def reveals(text: str) -> bool:
    return any(secret in text for secret in (SECRET_NAME, SECRET_PHONE, SECRET_TEXT))


def test_console_staff_of_a_cannot_read_or_act_on_b_by_id(console, make_business, theirs, session_factory):  # noqa: F811
    client, mine = console(make_business("clinic"))
    before = theirs.state(session_factory)
    reads = [f"/bookings/{theirs.code}", f"/bookings/{theirs.code}/move", f"/customers/{theirs.customer_id}",
             f"/customers/{theirs.customer_id}/export", f"/inbox/{theirs.conversation_id}"]
    for path in reads:
        answer = client.get(f"/console/{mine}{path}")
        assert answer.status_code == 404, (path, answer.status_code)
        assert not reveals(answer.text), path
    csrf = csrf_of(client.get(f"/console/{mine}/calendars").text)
    writes = {f"/bookings/{theirs.code}/{action}": {} for action in ("confirm", "cancel", "no-show")}
    writes |= {f"/bookings/{theirs.code}/move": {"starts_at": "2026-11-24T10:00:00Z"},
               f"/customers/{theirs.customer_id}/erase": {"confirm": "ERASE", "cancel_upcoming": "yes"},
               f"/inbox/{theirs.conversation_id}/reply": {"text": "hello from A"},
               f"/inbox/{theirs.conversation_id}/hand-back": {},
               f"/calendars/{theirs.calendar_id}/disconnect": {}}
    for path, form in writes.items():
        answer = client.post(f"/console/{mine}{path}", data={"csrf": csrf, **form})
        assert answer.status_code in (404, 409, 422), (path, answer.status_code)
        assert not reveals(answer.text), path
    assert theirs.state(session_factory) == before


def test_a_console_session_of_a_is_no_session_at_b(console, make_business, theirs, session_factory):  # noqa: F811
    client, mine = console(make_business("clinic"))
    client.cookies.set("nextslot_console", client.cookies.get("nextslot_console"), path=f"/console/{theirs.slug}")
    before = theirs.state(session_factory)
    for path in ("", f"/bookings/{theirs.code}", f"/customers/{theirs.customer_id}", "/customers",
                 f"/inbox/{theirs.conversation_id}", "/inbox", "/settings", "/audit", "/calendars", "/waitlist"):
        answer = client.get(f"/console/{theirs.slug}{path}")
        assert answer.status_code == 303 and "/login" in answer.headers["location"], path
    answer = client.post(f"/console/{theirs.slug}/bookings/{theirs.code}/cancel", data={"csrf": "x"})
    assert answer.status_code == 401 and not reveals(answer.text)
    assert theirs.state(session_factory) == before


def test_staff_api_with_a_key_of_a_cannot_reach_b_by_id(api, make_business, theirs, session_factory):
    mine = make_business("clinic")
    client = api(mine)
    # exception ids are derived from their content: one only B has (the clinics share Christmas, each its own)
    closed = api(theirs.id).post("/v1/closures", json={"kind": "closed", "date": "2026-12-01", "reason": "B only"})
    [closure] = [e for e in closed.json()["exceptions"] if e["reason"] == "B only"]
    time_off = api(theirs.id).post("/v1/resources/dr-okafor/exceptions",
                                   json={"kind": "closed", "date": "2026-11-25", "reason": "leave"})
    assert time_off.status_code == 201, time_off.text
    [time_off] = [e for e in time_off.json()["exceptions"] if e["reason"] == "leave"]
    before = theirs.state(session_factory)
    code = theirs.code
    calls = [("get", f"/v1/bookings/{code}", None), ("get", f"/v1/bookings/{code}/history", None),
             ("get", f"/v1/bookings/{code}/notifications", None), ("post", f"/v1/bookings/{code}/cancel", {}),
             ("post", f"/v1/bookings/{code}/cancel-series", {}), ("post", f"/v1/bookings/{code}/confirm", {}),
             ("post", f"/v1/bookings/{code}/no-show", {}),
             ("post", f"/v1/bookings/{code}/reschedule", {"starts_at": "2026-11-24T10:00:00Z"}),
             ("post", f"/v1/bookings/{code}/reschedule-series", {"starts_at": "2026-11-24T10:00:00Z"}),
             ("delete", f"/v1/closures/{closure['id']}", None),
             ("delete", f"/v1/resources/dr-okafor/exceptions/{time_off['id']}", None),
             ("delete", f"/v1/calendars/{theirs.calendar_id}", None),
             ("put", f"/v1/webhooks/{theirs.endpoint_id}", {"active": False})]
    for method, path, body in calls:
        answer = client.request(method.upper(), path, json=body)
        assert answer.status_code in (404, 422), (path, answer.status_code, answer.text)
        assert not reveals(answer.text), path
    for path in (f"/v1/customers/history?phone={SECRET_PHONE}", f"/v1/customers/export?phone={SECRET_PHONE}",
                 "/v1/bookings?phone=" + SECRET_PHONE, "/v1/webhooks", "/v1/calendars", "/v1/closures",
                 "/v1/audit-log"):
        answer = client.get(path)
        assert not reveals(answer.text), path
    assert theirs.endpoint_id not in [e["id"] for e in client.get("/v1/webhooks").json()]
    assert theirs.calendar_id not in [c["id"] for c in client.get("/v1/calendars").json()]
    erased = client.post("/v1/customers/erase", json={"phone": SECRET_PHONE, "cancel_upcoming": True})
    assert not reveals(erased.text)
    assert theirs.state(session_factory) == before
