"""Deposits over HTTP: pay link -> provider checkout -> signed webhook -> the booking is confirmed.

Both providers run for real: the built-in local checkout, and Stripe Checkout through the `stripe`
library talking to a local fake of Stripe's API, with webhooks signed the way Stripe signs them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import httpx2 as httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select

from nextslot.core.links import Links
from nextslot.core.results import Booked
from nextslot.payments.providers import takes_no_money_in_public
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.settings import Settings
from nextslot.storage.tables import Payment
from tests.conftest import LiveServer

SECRET = "test-secret-for-links"
ANSWERS = {"address": "12 Elm St", "problem": "Won't start"}


@pytest.fixture
def garage(make_business):
    return make_business("garage")


def book_van(service, garage, phone="+12125550150"):
    result = service.book(garage, BookingCreate(
        service="mobile-repair", starts_at=datetime.fromisoformat("2026-11-24T10:00:00-05:00"),
        customer=CustomerIn(name="Ada", phone=phone), intake=ANSWERS))
    assert isinstance(result, Booked) and result.booking.status == "pending_payment"
    return result.booking


def settings_for(**extra) -> Settings:
    return Settings(secret_key=SECRET, **extra)


def pay_link(booking, garage) -> str:
    links = Links(SECRET, "http://unused")
    return "/pay/" + links.token("pay", garage, booking.code, booking.payment.expires_at)


def test_local_checkout_confirms_the_booking_through_a_signed_webhook(live_server, service, garage):
    booking = book_van(service, garage)
    with live_server(frozen=True, settings=settings_for()) as server, httpx.Client(base_url=server.url) as http:
        to_checkout = http.get(pay_link(booking, garage))
        assert to_checkout.status_code == 303
        checkout_path = httpx.URL(to_checkout.headers["location"]).path
        assert checkout_path.startswith("/pay/local/")
        assert http.get(pay_link(booking, garage)).headers["location"] == to_checkout.headers["location"]  # reused
        page = http.get(checkout_path)
        assert page.status_code == 200 and "$25.00" in page.text and booking.code in page.text
        paid = http.post(checkout_path)
        assert paid.status_code == 303 and "/m/" in paid.headers["location"]
        confirmed = service.get_booking(garage, booking.code)
        assert confirmed.status == "booked" and confirmed.payment.status == "paid"
        after = http.get(pay_link(booking, garage))  # paying again is not possible: straight to the booking
        assert after.status_code == 303 and "/m/" in after.headers["location"]


def test_forged_webhooks_and_altered_links_change_nothing(live_server, service, garage, clock):
    booking = book_van(service, garage, phone="+12125550151")
    with live_server(frozen=True, settings=settings_for()) as server, httpx.Client(base_url=server.url) as http:
        http.get(pay_link(booking, garage))
        with service.uow() as uow:
            ref = uow.session.scalars(select(Payment.provider_ref).where(Payment.booking_id == booking.id)).one()
        body = json.dumps({"id": "evt_x", "type": "payment.succeeded", "ref": ref, "amount_minor": 2500,
                           "currency": "USD"})
        forged = http.post("/webhooks/payments/local", content=body,
                           headers={"local-signature": f"t={int(time.time())},v1={'0' * 64}"})
        assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_webhook"
        unsigned = http.post("/webhooks/payments/local", content=body)
        assert unsigned.status_code == 400
        assert http.post("/webhooks/payments/stripe", content=body).status_code == 404  # not this server's provider
        assert service.get_booking(garage, booking.code).status == "pending_payment"

        altered = pay_link(booking, garage)[:-3] + "abc"
        assert http.get(altered).status_code == 403
        assert http.get(httpx.URL(http.get(pay_link(booking, garage)).headers["location"]).path + "x").status_code == 404
        clock.now += timedelta(minutes=31)
        assert http.get(pay_link(booking, garage)).status_code == 410  # the deadline passed: the link is dead


class FakeStripe:
    """The slice of Stripe's API that Checkout uses, answering like Stripe does."""

    def __init__(self):
        self.sessions: list[dict] = []
        self.app = FastAPI()

        @self.app.post("/v1/checkout/sessions")
        async def create(request: Request):
            assert request.headers["authorization"] == "Bearer sk_test_fake"
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            session_id = f"cs_test_{uuid.uuid4().hex}"
            self.sessions.append({"id": session_id, **form})
            return {"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.test/{session_id}",
                    "payment_status": "unpaid", "status": "open"}


def stripe_event(session_id: str, amount: int, payment_status: str = "paid") -> str:
    return json.dumps({
        "id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "checkout.session.completed",
        "api_version": "2025-01-27", "created": int(time.time()),
        "data": {"object": {"id": session_id, "object": "checkout.session", "amount_total": amount,
                            "currency": "usd", "payment_status": payment_status}},
    })


def stripe_signature(body: str, secret: str, at: int | None = None) -> str:
    at = at or int(time.time())
    digest = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def test_stripe_checkout_is_created_with_the_deposit_and_its_signed_webhook_confirms(live_server, service, garage):
    fake = FakeStripe()
    booking = book_van(service, garage, phone="+12125550152")
    with LiveServer(fake.app) as stripe_api:
        settings = settings_for(payment_provider="stripe", stripe_api_key="sk_test_fake",
                                stripe_webhook_secret="whsec_test", stripe_api_base=stripe_api.url)
        with live_server(frozen=True, settings=settings) as server, httpx.Client(base_url=server.url) as http:
            redirect = http.get(pay_link(booking, garage))
            assert redirect.status_code == 303
            assert redirect.headers["location"].startswith("https://checkout.stripe.test/cs_test_")
            sent = fake.sessions[-1]
            assert sent["mode"] == "payment" and sent["client_reference_id"] == booking.code
            assert sent["line_items[0][price_data][unit_amount]"] == "2500"
            assert sent["line_items[0][price_data][currency]"] == "usd"
            assert sent["metadata[booking_code]"] == booking.code
            session_id = sent["id"]

            unpaid = stripe_event(session_id, 2500, payment_status="unpaid")
            answer = http.post("/webhooks/payments/stripe", content=unpaid,
                               headers={"stripe-signature": stripe_signature(unpaid, "whsec_test")})
            assert answer.json()["outcome"] == "ignored"
            body = stripe_event(session_id, 2500)
            wrong = http.post("/webhooks/payments/stripe", content=body,
                              headers={"stripe-signature": stripe_signature(body, "whsec_other")})
            assert wrong.status_code == 400
            stale = http.post("/webhooks/payments/stripe", content=body,
                              headers={"stripe-signature": stripe_signature(body, "whsec_test", int(time.time()) - 3600)})
            assert stale.status_code == 400
            assert service.get_booking(garage, booking.code).status == "pending_payment"

            ok = http.post("/webhooks/payments/stripe", content=body,
                           headers={"stripe-signature": stripe_signature(body, "whsec_test")})
            assert ok.status_code == 200 and ok.json()["outcome"] == "paid"
            again = http.post("/webhooks/payments/stripe", content=body,
                              headers={"stripe-signature": stripe_signature(body, "whsec_test")})
            assert again.json()["outcome"] == "already_paid"  # Stripe retries: confirmed once
            assert service.get_booking(garage, booking.code).payment.status == "paid"


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:8000", True), ("http://localhost:8000", True), ("http://[::1]:8000", True),
    ("http://127.0.0.2", True), ("http://app.localhost", True),
    ("https://book.example.com", False), ("http://10.0.0.5:8000", False), ("http://127.0.0.1.nip.io", False),
    ("http://0.0.0.0:8000", False),
])
def test_only_a_loopback_public_url_counts_as_safe_for_local_payments(url, loopback):
    settings = Settings(public_url=url, payment_provider="local")
    assert takes_no_money_in_public(settings) is not loopback
    assert not takes_no_money_in_public(Settings(public_url=url, payment_provider="stripe"))
