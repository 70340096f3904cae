"""A stranger who knows a customer's phone number must not reach that customer's bookings.

A booking from the public page or a customer's own assistant proves nothing about the contact it gives. Before,
such a booking with Ann's phone and the stranger's email wrote the stranger's email onto Ann's customer record;
the stranger then proved *their own* email with a one-time code (public MCP, web chat) and was bound to every
customer with that email: Ann's bookings were theirs to list, move and cancel. Driven over HTTP with the SDK's
real client against the running app; codes are read from the outbox as the stranger's mailbox would show them."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from nextslot.storage.tables import Booking, Customer
from tests.server.test_public_mcp_proofs import book, call, codes_sent, public_client, slug_of

pytestmark = pytest.mark.anyio
TUESDAY, WEDNESDAY = "2026-11-24", "2026-11-25"
ANN, ANN_EMAIL, MALLORY_EMAIL = "+447911223344", "ann@example.com", "mallory@evil.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def customer_by_phone(session_factory, business_id: int, phone: str) -> Customer:
    with session_factory() as s:
        return s.scalars(select(Customer).where(Customer.business_id == business_id, Customer.phone == phone)).one()


@pytest.mark.parametrize("ann_gave_email", [True, False], ids=["ann-has-an-email", "ann-gave-only-her-phone"])
async def test_a_strangers_booking_with_a_customers_phone_does_not_open_her_bookings_to_the_strangers_email(
        live_server, make_business, session_factory, ann_gave_email):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as ann:
            contact = {"phone": ANN, **({"email": ANN_EMAIL} if ann_gave_email else {})}
            hers = await book(ann, TUESDAY, "Ann Lee", **contact)
        async with public_client(server.url, slug) as stranger:
            await book(stranger, WEDNESDAY, "Ann Lee", phone=ANN, email=MALLORY_EMAIL)
            ok, sent = await call(stranger, "request_code", contact=MALLORY_EMAIL)
            assert ok and sent["outcome"] == "code_sent", sent
            for code in codes_sent(session_factory, clinic, MALLORY_EMAIL):  # what the stranger's mailbox shows
                ok, proved = await call(stranger, "verify_code", challenge=sent["challenge"], code=code)
                assert ok, proved
                ok, found = await call(stranger, "find_appointments", proof=proved["proof"])
                assert hers["code"] not in [a["code"] for a in found.get("appointments", [])], found
                ok, cancelled = await call(stranger, "cancel_appointment", proof=proved["proof"], code=hers["code"])
                assert not ok and cancelled["error"]["code"] == "unknown_booking", cancelled
    assert customer_by_phone(session_factory, clinic, ANN).email == (ANN_EMAIL if ann_gave_email else None)
    with session_factory() as s:
        assert s.scalar(select(Booking.status).where(Booking.code == hers["code"])) == "booked"


def test_the_business_own_staff_still_correct_a_customers_email(api, clinic, session_factory):
    """The staff's word is not a stranger's: a booking through /v1 with a known phone and a new email updates it."""
    first = api(clinic).post("/v1/bookings", json={
        "service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
        "customer": {"name": "Ann Lee", "phone": ANN, "email": ANN_EMAIL}})
    assert first.status_code == 201, first.text
    second = api(clinic).post("/v1/bookings", json={
        "service": "consultation", "starts_at": "2026-11-25T09:00:00+00:00",
        "customer": {"name": "Ann Lee", "phone": ANN, "email": "ann.lee@example.org"}})
    assert second.status_code == 201, second.text
    assert customer_by_phone(session_factory, clinic, ANN).email == "ann.lee@example.org"


async def test_a_strangers_booking_with_a_customers_phone_does_not_move_the_clock_of_her_reminders(
        live_server, make_business, session_factory):
    """Messages tell times in the customer's own zone, without naming it ("Tuesday 24 November at 9 am"). A
    stranger's booking with Ann's phone and another zone rewrote hers: every reminder of her own appointments then
    named another hour (11 pm from Kiritimati), and a missed appointment can cost a late fee."""
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    with live_server(frozen=True) as server:
        async with public_client(server.url, slug) as ann:
            await book(ann, TUESDAY, "Ann Lee", phone=ANN, caller_timezone="Europe/London")
        async with public_client(server.url, slug) as stranger:
            await book(stranger, WEDNESDAY, "Ann Lee", phone=ANN, caller_timezone="Pacific/Kiritimati")
    assert customer_by_phone(session_factory, clinic, ANN).timezone == "Europe/London"
