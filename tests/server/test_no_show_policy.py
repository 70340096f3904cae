"""The no-show policy on every channel: after two missed appointments the next booking needs a deposit,
whether it comes from an agent, the staff API or the booking page, and an agent on the customer's own number is
told why."""
from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from nextslot.tools.voice_callers import execute_for_caller
from tests.server.test_booking_page import slug_of

PHONE = "+447911126000"
POLICY = {"after": 2, "within_days": 180, "deposit": {"amount": "15.00", "currency": "GBP"}}


def test_two_no_shows_make_the_next_booking_on_every_channel_wait_for_a_deposit(
        service, make_business, api_key, clock):
    clinic = make_business("clinic", no_show_policy=POLICY)
    with TestClient(create_app(Settings(secret_key="no-show-test"), service=service),
                    headers={"Authorization": f"Bearer {api_key(clinic)}"}) as http:
        for hour in (9, 10):
            made = http.post("/v1/bookings", json={"service": "consultation",
                                                   "starts_at": f"2026-11-24T{hour:02d}:00:00+00:00",
                                                   "customer": {"name": "Ned", "phone": PHONE}})
            assert made.status_code == 201 and made.json()["payment"] is None
        clock.now += timedelta(days=1, hours=4)  # Tuesday noon: both were missed
        for booking in http.get("/v1/bookings", params={"phone": PHONE, "from": "2026-11-24"}).json()["bookings"]:
            assert http.post(f"/v1/bookings/{booking['code']}/no-show", json={}).status_code == 200

        by_staff = http.post("/v1/bookings", json={"service": "consultation", "starts_at": "2026-11-26T09:00:00+00:00",
                                                   "customer": {"name": "Ned", "phone": PHONE}})
        assert by_staff.json()["status"] == "pending_payment"
        assert by_staff.json()["payment"]["reason"] == "no_shows"

        agent = execute_for_caller("book_appointment", {"service": "consultation", "customer_name": "Ned",
                                                        "starts_at": "2026-11-26T10:00:00+00:00"},
                                   ToolContext(service, clinic, "vapi", caller_phone=PHONE))  # Ned's own phone
        assert agent.data["appointment"]["deposit_reason"] == "no_shows"
        assert "Because of missed appointments before, it needs a £15.00 deposit" in agent.data["say"]

        slug = slug_of(service, clinic)
        at = "2026-11-26T11:00:00Z"
        form = http.get(f"/b/{slug}/consultation/book", params={"at": at, "tz": "Europe/London"})
        key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        on_page = http.post(f"/b/{slug}/consultation/book", follow_redirects=False, data={
            "at": at, "key": key, "tz": "Europe/London", "customer.name": "Ned", "customer.phone": PHONE})
        assert on_page.status_code == 303 and "/pay/" in on_page.headers["location"]

        someone_else = execute("book_appointment", {"service": "consultation", "customer_name": "Kay",
                                                    "starts_at": "2026-11-26T12:00:00+00:00"},
                               ToolContext(service, clinic, "vapi", caller_phone="+447911126001"))
        assert someone_else.data["appointment"]["status"] == "booked"
