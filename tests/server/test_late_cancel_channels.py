"""Late cancels on every channel: an agent tool and a text reply ask first and act on the caller's yes, the manage
page asks and takes a second tap, the staff API and console apply the cost only when told, and a fee is charged
off-session through Stripe (the real `stripe` library against a local fake of its API)."""
from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx2 as httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.core.links import Links
from nextslot.payments.base import DepositCheckout
from nextslot.payments.fees import charge_due_fees
from nextslot.payments.stripe_checkout import StripeCheckout
from nextslot.reminders.inbound import handle_reply
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.views import Money
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Payment
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.conftest import LiveServer
from tests.core.test_cutoffs import book_oil, book_van, garage_with, pay
from tests.server.test_payments import FakeStripe

SECRET = "late-cancel-secret"
LATE_NOW = datetime.fromisoformat("2026-11-23T18:00:00+00:00")  # 21 hours before the van on Tuesday


@pytest.fixture
def garage(make_business):
    return make_business(garage_with({"cutoff_hours": 24, "no_show_fee": {"amount": 30, "currency": "USD"}}))


def test_an_agent_hears_the_cost_asks_and_cancels_only_with_the_callers_yes(service, garage, session_factory, clock):
    booking = book_van(service, garage, "+12125550601")
    pay(service, session_factory, booking)
    clock.now = LATE_NOW
    ctx = ToolContext(service=service, business_id=garage, channel="vapi")
    asked = execute("cancel_appointment", {"code": booking.code}, ctx)
    assert asked.ok and asked.data["outcome"] == "needs_agreement"
    assert asked.data["reason_code"] == "late_terms_not_accepted"
    assert asked.data["acknowledge_with"] == "accept_late_terms"
    assert asked.data["say"] == ("It's within 24 hours of the appointment, so the $25.00 deposit is kept. "
                                    "Shall I still cancel?")
    assert service.get_booking(garage, booking.code).status == "booked"
    done = execute("cancel_appointment", {"code": booking.code, "accept_late_terms": True}, ctx)
    assert done.ok and done.data["outcome"] == "cancelled"
    assert done.data["fee"] == "the $25.00 deposit is kept"
    assert done.data["say"].endswith("As it was late, the $25.00 deposit is kept.")
    bad = execute("cancel_appointment", {"code": booking.code, "accept_late_terms": "maybe"}, ctx)
    assert not bad.ok and bad.data["error"]["code"] == "invalid_arguments"


def test_a_text_reply_is_told_the_cost_and_a_second_cancel_within_the_hour_accepts_it(
        service, garage, session_factory, clock):
    booking = book_van(service, garage, "+12125550602")
    pay(service, session_factory, booking)
    clock.now = LATE_NOW
    first = handle_reply(service, "sms", "+12125550602", "X", f"SM{uuid.uuid4().hex}")
    assert "the $25.00 deposit is kept" in first and "Reply X again within the hour" in first
    assert service.get_booking(garage, booking.code).status == "booked"
    clock.now += timedelta(minutes=5)
    second = handle_reply(service, "sms", "+12125550602", "X", f"SM{uuid.uuid4().hex}")  # as the answer asks
    assert "is cancelled" in second
    view = service.get_booking(garage, booking.code)
    assert view.status == "cancelled" and view.payment.status == "kept"


def test_the_manage_page_asks_again_with_the_cost_and_a_second_tap_cancels(
        live_server, service, garage, session_factory, clock):
    booking = book_van(service, garage, "+12125550603")
    pay(service, session_factory, booking)
    clock.now = LATE_NOW
    links = Links(SECRET, "https://book.example.com")
    path = "/" + links.manage_url(garage, booking.code, booking.starts_at.utc).split("/", 3)[3]
    settings = Settings(secret_key=SECRET, public_url="https://book.example.com")
    with live_server(frozen=True, settings=settings) as server, httpx.Client(base_url=server.url) as http:
        asked = http.post(f"{path}/cancel", data={})
        assert asked.status_code == 409 and "the $25.00 deposit is kept" in asked.text
        assert 'name="late_terms" value="accept"' in asked.text and "Yes, cancel anyway" in asked.text
        assert service.get_booking(garage, booking.code).status == "booked"
        done = http.post(f"{path}/cancel", data={"late_terms": "accept"})
        assert done.status_code == 303 and done.headers["location"].endswith("done=cancelled")
    assert service.get_booking(garage, booking.code).payment.status == "kept"


def test_staff_cancel_late_freely_and_charge_or_waive_only_on_purpose(service, garage, api_key, clock,
                                                                       session_factory):
    free, charged, missed = (book_van(service, garage, "+12125550604"), book_oil(service, garage, "+12125550605"),
                             book_van(service, garage, "+12125550606", "2026-11-24T12:30:00-05:00"))
    for booking in (free, missed):
        pay(service, session_factory, booking)
    clock.now = LATE_NOW
    app = create_app(Settings(secret_key=SECRET), service=service)
    with TestClient(app, headers={"Authorization": f"Bearer {api_key(garage)}"}) as http:
        plain = http.post(f"/v1/bookings/{free.code}/cancel", json={"reason": "we are closed"})
        assert plain.status_code == 200 and plain.json()["fees"] == []
        assert plain.json()["payment"]["status"] == "refund_due"
        wrong = http.post(f"/v1/bookings/{charged.code}/cancel", json={"late_terms": "sure"})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_request"
        accepted = http.post(f"/v1/bookings/{charged.code}/cancel", json={"late_terms": "accept"})
        assert accepted.status_code == 200 and accepted.json()["fees"] == []  # no fee set for a late cancel
        clock.now = datetime.fromisoformat("2026-11-24T13:00:00-05:00")
        no_show = http.post(f"/v1/bookings/{missed.code}/no-show", json={})
        assert no_show.json()["payment"]["status"] == "kept"
        assert no_show.json()["fees"][0] == {"kind": "no_show", "status": "deposit_kept", "amount": {
            "amount_minor": 2500, "currency": "USD", "display": "$25.00"}}
        history = http.get(f"/v1/bookings/{missed.code}/history").json()["entries"]
        assert [e["action"] for e in history][-2:] == ["deposit_kept", "no_show"]


class FakeStripePayments:
    """Stripe's PaymentIntents as an off-session fee meets them: the deposit's intent read back, a new one
    confirmed off-session; one card declines. Requests with a seen Idempotency-Key get the first answer."""

    def __init__(self):
        self.app = FastAPI()
        self.created: list[dict] = []
        self.answers: dict[str, JSONResponse] = {}
        self.lock = threading.Lock()

        @self.app.get("/v1/payment_intents/{intent}")
        async def retrieve(intent: str, request: Request):
            assert request.headers["authorization"] == "Bearer sk_test_fake"
            method = "pm_card_chargeDeclined" if intent.endswith("declines") else "pm_card_visa"
            return {"id": intent, "object": "payment_intent", "status": "succeeded", "payment_method": method}

        @self.app.post("/v1/payment_intents")
        async def create(request: Request):
            key = request.headers.get("idempotency-key")
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            with self.lock:
                if key in self.answers:
                    return self.answers[key]
                self.created.append({"key": key, **form})
                if form["payment_method"] == "pm_card_chargeDeclined":
                    answer = JSONResponse({"error": {"type": "card_error", "code": "card_declined",
                                                     "message": "Your card was declined."}}, status_code=402)
                else:
                    answer = JSONResponse({"id": f"pi_fee_{len(self.created)}", "object": "payment_intent",
                                           "status": "succeeded", "amount": int(form["amount"])})
                self.answers[key] = answer
                return answer


def test_a_fee_is_charged_off_session_through_stripe_once_and_a_decline_is_recorded(
        service, make_business, session_factory, clock):
    garage = make_business(garage_with({"cutoff_hours": 48, "keep_deposit": False,
                                        "late_fee": {"amount": 12.5, "currency": "USD"}}))
    ok, declined = (book_van(service, garage, "+12125550607"),
                    book_van(service, garage, "+12125550608", "2026-11-24T12:30:00-05:00"))
    for booking, card in ((ok, "ok"), (declined, "declines")):
        with session_factory() as s:
            payment = s.scalars(select(Payment).where(Payment.booking_id == booking.id)).one()
        ref = f"cs_test_{uuid.uuid4().hex}"
        service.record_checkout(garage, payment.id, "stripe", ref, "https://checkout.stripe.test/x")
        service.settle_deposit("stripe", ref, 2500, "USD", {"event": "paid"}, "cus_ada", f"pi_{uuid.uuid4().hex[:8]}_{card}")
        result = service.cancel(garage, BookingChange(code=booking.code, source="page", late_terms="accept"))
        assert [f.status for f in result.booking.fees] == ["due"]
    fake = FakeStripePayments()
    with LiveServer(fake.app) as stripe_api:
        provider = StripeCheckout("sk_test_fake", "whsec_test", stripe_api.url)
        assert charge_due_fees(service, provider) == 1
        assert charge_due_fees(service, provider) == 0  # nothing due any more
    ours = [c for c in fake.created if c["metadata[booking_code]"] in (ok.code, declined.code)]
    assert len(ours) == 2
    charge = next(c for c in ours if c["metadata[booking_code]"] == ok.code)
    assert charge["amount"] == "1250" and charge["currency"] == "usd" and charge["customer"] == "cus_ada"
    assert charge["off_session"] == "true" and charge["confirm"] == "true"
    assert charge["payment_method"] == "pm_card_visa" and charge["key"].startswith("nextslot-fee-")
    assert [f.status for f in service.get_booking(garage, ok.code).fees] == ["charged"]
    assert [f.status for f in service.get_booking(garage, declined.code).fees] == ["failed"]


def test_a_checkout_for_a_policy_with_fees_saves_the_card_for_later(service, make_business):
    fake = FakeStripe()
    with LiveServer(fake.app) as stripe_api:
        provider = StripeCheckout("sk_test_fake", "whsec_test", stripe_api.url)
        for save in (True, False):
            provider.start_checkout(DepositCheckout(
                business_id=1, code="ABC123", description="Deposit", pay_by=datetime.now(UTC) + timedelta(hours=1),
                amount=Money(amount_minor=2500, currency="USD", display="$25.00"), success_url="https://x.example/ok",
                cancel_url="https://x.example/no", save_card=save))
    saved, plain = fake.sessions[-2:]
    assert saved["payment_intent_data[setup_future_usage]"] == "off_session" and saved["customer_creation"] == "always"
    assert "payment_intent_data[setup_future_usage]" not in plain and "customer_creation" not in plain


def test_a_spanish_customer_is_told_the_late_cost_in_spanish_by_text(service, garage, session_factory, clock):
    from nextslot.core.results import Booked
    from nextslot.schemas.commands import BookingCreate, CustomerIn
    made = service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
        customer=CustomerIn(name="Ana", phone="+12125550609", language="es"),
        intake={"address": "12 Elm St", "problem": "Won't start"}))
    assert isinstance(made, Booked)
    pay(service, session_factory, made.booking)
    clock.now = LATE_NOW
    asked = handle_reply(service, "sms", "+12125550609", "X", f"SM{uuid.uuid4().hex}")
    assert asked.startswith("Faltan menos de 24 horas para la cita, así que se retiene el depósito de $25.00.")
    assert "Responde X de nuevo" in asked
