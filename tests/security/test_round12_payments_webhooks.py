"""Round 12: deposits and the payment webhooks, attacked from outside.

Stripe Checkout through the real `stripe` library against a local fake of Stripe's API, webhooks signed as Stripe
signs them, the real app on loopback and the real database. Found: a pay link opened twice at once started two
checkouts and kept only the second, so money paid on the first was "a checkout we did not start" and the booking
lapsed; a payment of the wrong amount or currency was noted and then forgotten (the deposit ended "expired", nobody
told the money was there to give back); and a Checkout Session whose Adaptive Pricing showed the customer her own
currency (sessions of the API versions before 2025-03-31) was refused as a wrong currency. Held: forged, stale and
replayed signatures, a second "paid" of another amount, NaN, huge and negative amounts, ids that are not ids.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs

import httpx2 as httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select

from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import Payment
from tests.conftest import LiveServer
from tests.server.test_payments import ANSWERS, book_van, pay_link, settings_for, stripe_event, stripe_signature

WEBHOOK_SECRET = "whsec_round12"


@pytest.fixture
def garage(make_business):
    return make_business("garage")


class SlowStripe:
    """Stripe's Checkout API, answering a session's creation only once `together` creations are in flight: two
    customers' browsers (or a link scanner and the customer) opening the pay link at the same moment."""

    def __init__(self, together: int = 1):
        self.sessions: list[dict] = []
        self.app = FastAPI()
        self.together = together

        @self.app.post("/v1/checkout/sessions")
        async def create(request: Request):
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            session_id = f"cs_test_{uuid.uuid4().hex}"
            self.sessions.append({"id": session_id, **form})
            for _ in range(500):  # at most 10 s: a lone request is answered then, as before
                if len(self.sessions) >= self.together:
                    break
                await asyncio.sleep(0.02)
            return {"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.test/{session_id}",
                    "payment_status": "unpaid", "status": "open"}


def stripe_settings(stripe_api: LiveServer):
    return settings_for(payment_provider="stripe", stripe_api_key="sk_test_fake", stripe_webhook_secret=WEBHOOK_SECRET,
                        stripe_api_base=stripe_api.url)


def post_event(http: httpx.Client, body: str) -> httpx.Response:
    return http.post("/webhooks/payments/stripe", content=body,
                     headers={"stripe-signature": stripe_signature(body, WEBHOOK_SECRET)})


def payment_of(service, booking_id: int) -> Payment:
    with service.session_factory() as s:
        return s.scalars(select(Payment).where(Payment.booking_id == booking_id)).one()


def test_a_pay_link_opened_twice_at_once_sends_both_to_the_checkout_whose_payment_is_heard(
        live_server, service, garage):
    # Both requests found no checkout and started one; each then recorded its own, the second over the first. The
    # customer paid in the tab the first request opened: its webhook named a checkout the payment no longer knew
    # ("unknown_checkout"), the money was taken and the booking lapsed at its deadline.
    booking = book_van(service, garage, phone="+12125550181")
    fake = SlowStripe(together=2)
    with LiveServer(fake.app) as stripe_api, live_server(frozen=True, settings=stripe_settings(stripe_api)) as server:
        redirects: dict[int, str] = {}

        def open_link(tab: int) -> None:
            with httpx.Client(base_url=server.url) as http:
                answer = http.get(pay_link(booking, garage))
                assert answer.status_code == 303, answer.text
                redirects[tab] = answer.headers["location"]

        tabs = [threading.Thread(target=open_link, args=(tab,)) for tab in (1, 2)]
        for tab in tabs:
            tab.start()
        for tab in tabs:
            tab.join(30)
        assert len(fake.sessions) == 2 and len(redirects) == 2  # both checkouts were started at Stripe
        with httpx.Client(base_url=server.url) as http:
            for paid_in in sorted(set(redirects.values())):  # the customer pays in whichever tab she was sent to
                session_id = paid_in.rsplit("/", 1)[1]
                answer = post_event(http, stripe_event(session_id, 2500))
                assert answer.status_code == 200 and answer.json()["outcome"] in ("paid", "already_paid"), (
                    paid_in, answer.json())
    assert len(set(redirects.values())) == 1  # both tabs show the one checkout the deposit knows
    assert service.get_booking(garage, booking.code).status == "booked"


def test_a_wrong_amount_or_currency_is_kept_as_money_to_give_back_and_frees_the_time(
        live_server, service, make_business, clock):
    # A "paid" of another amount or currency confirmed nothing, rightly, and was then forgotten: the payment stayed
    # "pending", the deadline made it "expired", and nothing told staff that money had come in and was due back.
    # The checkout cannot be paid again, so the booking ends now, its time free, and the money is refund due.
    cases = [("+12125550182", 2000, "usd"), ("+12125550183", 2500, "eur")]
    fake = SlowStripe()
    with LiveServer(fake.app) as stripe_api, live_server(frozen=True, settings=stripe_settings(stripe_api)) as server, \
            httpx.Client(base_url=server.url) as http:
        garages = []
        for phone, amount, currency in cases:
            garage = make_business("garage")
            garages.append(garage)
            booking = book_van(service, garage, phone=phone)
            assert http.get(pay_link(booking, garage)).status_code == 303
            session_id = fake.sessions[-1]["id"]
            event = json.loads(stripe_event(session_id, amount))
            event["data"]["object"]["currency"] = currency
            answer = post_event(http, json.dumps(event))
            assert answer.status_code == 200 and answer.json()["outcome"] == "mismatch", answer.json()
            payment = payment_of(service, booking.id)
            assert (payment.status, payment.amount_minor, payment.currency) == ("refund_due", 2500, "USD")
            assert any(entry.get("amount_minor") == amount for entry in payment.log)  # what came in, for the refund
            assert service.get_booking(garage, booking.code).status == "expired"
            again = post_event(http, stripe_event(session_id, 2500))  # a replay of any amount changes nothing more
            assert again.json()["outcome"] == "already_paid"
            assert service.get_booking(garage, booking.code).status == "expired"
            taken = service.book(garage, BookingCreate(service="mobile-repair", starts_at=booking.starts_at.utc,
                                                       intake=ANSWERS, customer=CustomerIn(name="Next", phone=phone[:-1]
                                                                                           + "9")))
            assert type(taken).__name__ == "Booked", taken  # the time is free for the next customer
            clock.now += timedelta(minutes=1)
    clock.now += timedelta(minutes=40)
    service.expire_unpaid()
    with service.session_factory() as s:
        refunds = s.scalars(select(Payment.status).where(Payment.business_id.in_(garages),
                                                         Payment.provider_ref.is_not(None)))
        assert sorted(refunds) == ["refund_due", "refund_due"]  # the deadline did not turn them into "expired"


def test_a_checkout_whose_adaptive_pricing_showed_the_customer_her_currency_confirms_the_booking(
        live_server, service, garage):
    # Before API version 2025-03-31 a Checkout Session with Adaptive Pricing reports the customer's currency and
    # amount in `currency` and `amount_total`, and the business's under `currency_conversion`. A deposit of USD 25.00
    # paid as EUR 23.00 was a "mismatch": paid, and never confirmed.
    booking = book_van(service, garage, phone="+12125550184")
    fake = SlowStripe()
    with LiveServer(fake.app) as stripe_api, live_server(frozen=True, settings=stripe_settings(stripe_api)) as server, \
            httpx.Client(base_url=server.url) as http:
        http.get(pay_link(booking, garage))
        event = json.loads(stripe_event(fake.sessions[-1]["id"], 2300))
        event["api_version"] = "2024-06-20"
        event["data"]["object"] |= {"currency": "eur", "currency_conversion": {
            "amount_subtotal": 2500, "amount_total": 2500, "fx_rate": "0.92", "source_currency": "usd"}}
        answer = post_event(http, json.dumps(event))
        assert answer.json()["outcome"] == "paid", answer.json()
    assert service.get_booking(garage, booking.code).status == "booked"
    assert payment_of(service, booking.id).status == "paid"


IMPOSSIBLE = [
    {"amount_total": float("nan")}, {"amount_total": 10**30}, {"amount_total": -2500}, {"amount_total": True},
    {"amount_total": "2500"}, {"currency": "us dollars"}, {"currency": None}, {"id": "cs_../../x"},
    {"currency_conversion": {"amount_total": float("nan"), "source_currency": "usd"}},
    {"currency_conversion": {"amount_total": 2500, "source_currency": 7}}, {"currency_conversion": "usd"},
]


def test_a_signed_event_with_impossible_values_is_refused_and_changes_nothing(live_server, service, garage):
    booking = book_van(service, garage, phone="+12125550185")
    fake = SlowStripe()
    with LiveServer(fake.app) as stripe_api, live_server(frozen=True, settings=stripe_settings(stripe_api)) as server, \
            httpx.Client(base_url=server.url) as http:
        http.get(pay_link(booking, garage))
        for fields in IMPOSSIBLE:
            event = json.loads(stripe_event(fake.sessions[-1]["id"], 2500))
            event["data"]["object"] |= fields
            answer = post_event(http, json.dumps(event))  # signed with the right secret: only the values are wrong
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook", (fields,
                                                                                                      answer.text)
            assert "Traceback" not in answer.text and "nan" not in answer.text.lower()
    assert service.get_booking(garage, booking.code).status == "pending_payment"


def test_replays_forgeries_and_a_second_paid_of_another_amount_change_nothing_after_the_first(
        live_server, service, garage):
    booking = book_van(service, garage, phone="+12125550186")
    fake = SlowStripe()
    with LiveServer(fake.app) as stripe_api, live_server(frozen=True, settings=stripe_settings(stripe_api)) as server, \
            httpx.Client(base_url=server.url) as http:
        http.get(pay_link(booking, garage))
        session_id = fake.sessions[-1]["id"]
        body = stripe_event(session_id, 2500)
        stale = stripe_signature(body, WEBHOOK_SECRET, int(time.time()) - 301)  # just past Stripe's tolerance
        forged = {"stripe-signature": stripe_signature(body, "whsec_guess")}
        twice = {"stripe-signature": f"{stripe_signature(body, 'whsec_guess')},v1=" + "0" * 64}
        for headers in ({"stripe-signature": stale}, forged, twice, {"stripe-signature": "t=1,v1=ü".encode()}, {}):
            refused = http.post("/webhooks/payments/stripe", content=body, headers=headers)
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_webhook", refused.text
        assert service.get_booking(garage, booking.code).status == "pending_payment"
        assert post_event(http, body).json()["outcome"] == "paid"
        for amount, currency in ((1, "usd"), (999999, "usd"), (2500, "gbp")):
            other = json.loads(stripe_event(session_id, amount))
            other["data"]["object"]["currency"] = currency
            assert post_event(http, json.dumps(other)).json()["outcome"] == "already_paid"
        unknown = post_event(http, stripe_event(f"cs_test_{uuid.uuid4().hex}", 2500))  # another's, or no one's
        assert unknown.status_code == 200 and unknown.json()["outcome"] == "unknown_checkout"
    payment = payment_of(service, booking.id)
    assert (payment.status, service.get_booking(garage, booking.code).status) == ("paid", "booked")
