"""Bookings through /v1: every write through the BookingService, with history, races, retries and search."""
from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from nextslot.core.accounts.api_keys import create_api_key
from nextslot.reminders.channels.base import OutgoingMessage, SendResult
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.inbound import handle_reply
from nextslot.reminders.receipts import record_receipt
from nextslot.storage.tables import Booking, Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.staff_api.conftest import TUESDAY, at, phone


def book(http: TestClient, start: str, n: int, staff: str = "dr-patel", headers: dict | None = None, **customer):
    return http.post("/v1/bookings", headers=headers or {}, json={
        "service": "consultation", "starts_at": start, "resources": [staff],
        "customer": {"name": "Ann Lee", "phone": phone(n), **customer}})


def test_book_reschedule_confirm_and_cancel_each_leave_history_under_the_keys_name(app, clinic, session_factory):
    key = create_api_key(SqlAlchemyUnitOfWork(session_factory), clinic, "front desk")
    http = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    made = book(http, at("09:00"), 1)
    assert made.status_code == 201
    booking = made.json()
    assert booking["status"] == "booked" and booking["source"] == "staff" and booking["payment"] is None
    code = booking["code"]
    assert http.get(f"/v1/bookings/{code.lower()}").json() == booking
    moved = http.post(f"/v1/bookings/{code}/reschedule", json={"starts_at": at("10:00")})
    assert moved.status_code == 200 and moved.json()["starts_at"]["utc"] == "2026-11-24T10:00:00Z"
    assert http.post(f"/v1/bookings/{code}/confirm").json()["status"] == "confirmed"
    cancelled = http.post(f"/v1/bookings/{code}/cancel", json={"reason": "Customer phoned"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert http.post(f"/v1/bookings/{code}/cancel").json()["status"] == "cancelled"  # again: the same answer
    refused = http.post(f"/v1/bookings/{code}/confirm")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "booking_not_active"

    entries = http.get(f"/v1/bookings/{code}/history").json()["entries"]
    assert [e["action"] for e in entries] == ["created", "rescheduled", "confirmed", "cancelled"]
    assert {(e["actor"], e["channel"]) for e in entries} == {("front desk", "staff")}
    assert entries[1]["before"]["starts_at"] == "2026-11-24T09:00:00+00:00"
    assert entries[1]["after"]["starts_at"] == "2026-11-24T10:00:00+00:00"
    assert entries[3]["note"] == "Customer phoned"


def test_a_no_show_is_refused_before_the_start_and_counted_after_it(api, clinic, clock):
    http = api(clinic)
    code = book(http, at("09:00"), 2).json()["code"]
    early = http.post(f"/v1/bookings/{code}/no-show")
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_started"
    clock.now = datetime(2026, 11, 24, 9, 10, tzinfo=UTC)
    marked = http.post(f"/v1/bookings/{code}/no-show", json={"reason": "Did not come"})
    assert marked.status_code == 200
    assert marked.json()["status"] == "no_show" and marked.json()["customer"]["no_show_count"] == 1
    assert http.get(f"/v1/bookings/{code}/history").json()["entries"][-1]["action"] == "no_show"


def test_a_lost_race_answers_409_with_the_nearest_openings_and_changes_nothing(api, clinic):
    http = api(clinic)
    first = book(http, at("09:00"), 3).json()
    lost = book(http, at("09:00"), 4)
    assert lost.status_code == 409
    body = lost.json()
    assert body["error"]["code"] == "slot_taken" and body["requested"] == "2026-11-24T09:00:00+00:00"
    starts = [a["starts_at"]["utc"] for a in body["alternatives"]]
    assert len(starts) == 3 and "2026-11-24T09:00:00Z" not in starts
    assert all(a["resources"][0]["key"] == "dr-patel" for a in body["alternatives"])

    other = book(http, at("11:00"), 4).json()
    moved = http.post(f"/v1/bookings/{other['code']}/reschedule",
                      json={"starts_at": at("09:00"), "resources": ["dr-patel"]})
    assert moved.status_code == 409 and moved.json()["alternatives"]
    assert http.get(f"/v1/bookings/{other['code']}").json()["starts_at"] == other["starts_at"]  # untouched
    assert http.get(f"/v1/bookings/{first['code']}").json()["status"] == "booked"


def test_a_retry_with_the_same_idempotency_key_replays_the_first_booking(api, clinic, session_factory):
    http = api(clinic)
    retry = {"Idempotency-Key": "desk-7f3a"}
    first = book(http, at("09:30"), 5, headers=retry)
    again = book(http, at("09:30"), 5, headers=retry)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    with session_factory() as s:
        assert s.scalars(select(Booking.id).where(Booking.business_id == clinic)).all() == [first.json()["id"]]
    other = book(http, at("10:30"), 5, headers=retry)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_search_filters_by_day_status_resource_service_and_customer_soonest_first(api, clinic):
    http = api(clinic)
    eleven = book(http, at("11:00"), 6).json()
    wednesday = book(http, at("10:00", "2026-11-25"), 7, staff="dr-okafor").json()
    nine = book(http, at("09:00"), 6, email="ann.lee@example.com").json()
    http.post(f"/v1/bookings/{eleven['code']}/cancel")

    def codes(**query) -> list[str]:
        page = http.get("/v1/bookings", params=query)
        assert page.status_code == 200, page.text
        return [b["code"] for b in page.json()["bookings"]]

    assert codes() == [nine["code"], eleven["code"], wednesday["code"]]
    assert codes(date_from=TUESDAY, date_to=TUESDAY) == [nine["code"], eleven["code"]]
    assert codes(status=["booked", "confirmed"]) == [nine["code"], wednesday["code"]]
    assert codes(resource="dr-okafor") == [wednesday["code"]]
    assert codes(resource="dr-patel", status="cancelled") == [eleven["code"]]
    assert codes(phone="07900 900006") == [nine["code"], eleven["code"]]  # local format, read in the UK
    assert codes(email="Ann.Lee@example.com", status="booked") == [nine["code"]]
    assert codes(code=wednesday["code"].lower(), service="consultation") == [wednesday["code"]]
    assert codes(service="ultrasound") == []
    page = http.get("/v1/bookings", params={"limit": 2}).json()
    assert page["total"] == 3 and page["next_offset"] == 2
    last = http.get("/v1/bookings", params={"limit": 2, "offset": 2}).json()
    assert [b["code"] for b in last["bookings"]] == [wednesday["code"]] and last["next_offset"] is None
    wrong = http.get("/v1/bookings", params={"phone": "12", "date_from": "2026-11-25", "date_to": TUESDAY})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "window_reversed"


def test_a_deposit_shows_on_the_booking(api, make_business):
    garage = make_business("garage")
    made = api(garage).post("/v1/bookings", json={
        "service": "mobile-repair", "starts_at": "2026-11-24T10:00:00-05:00",
        "customer": {"name": "Ada", "phone": "+12125550171"},
        "intake": {"address": "12 Elm St", "problem": "Won't start"}})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending_payment"
    assert made.json()["payment"]["status"] == "pending" and made.json()["payment"]["amount"]["display"] == "$25.00"


class FakeChannel:
    """Refuses every message (a permanent error), or takes it with the next provider id."""

    def __init__(self, name: str, refuse: bool = False):
        self.name, self.refuse, self.sent = name, refuse, 0

    def send(self, message: OutgoingMessage) -> SendResult:
        self.sent += 1
        if self.refuse:
            return SendResult(False, None, "failed", "63016", "Outside the allowed window")
        return SendResult(True, f"SM-staff-api-{self.name}-{self.sent}", "queued")


def test_the_notification_log_shows_each_attempt_and_the_customers_reply(api, clinic, service, session_factory,
                                                                         clock):
    http = api(clinic)
    code = book(http, at("09:00"), 8).json()["code"]
    with session_factory() as s:  # the database is shared by the whole run: only this booking's messages go out
        s.execute(update(Notification).where(Notification.status == "pending", Notification.due_at <= clock.now)
                  .values(status="void"))
        s.execute(update(Notification).where(Notification.booking_id == Booking.id, Booking.code == code,
                                             Booking.business_id == clinic, Notification.kind == "confirmation")
                  .values(status="pending"))
        s.commit()
    dispatcher = Dispatcher(session_factory, {"whatsapp": FakeChannel("whatsapp", refuse=True),
                                              "sms": FakeChannel("sms")}, clock=clock)
    assert dispatcher.dispatch_due() == 1
    assert record_receipt(session_factory, clock(), "SM-staff-api-sms-1", "delivered")
    handle_reply(service, "sms", phone(8), "C")

    log = http.get(f"/v1/bookings/{code}/notifications").json()
    confirmation = next(n for n in log["notifications"] if n["kind"] == "confirmation")
    assert confirmation["status"] == "delivered" and confirmation["audience"] == "customer"
    assert confirmation["gave_up_on"] == ["whatsapp"]
    whatsapp, sms = confirmation["attempts"]
    assert (whatsapp["channel"], whatsapp["status"], whatsapp["error_code"]) == ("whatsapp", "failed", "63016")
    assert whatsapp["recipient"] == sms["recipient"] == "+44*******008"
    assert sms["provider_id"] == "SM-staff-api-sms-1"
    assert [h["status"] for h in sms["history"]] == ["queued", "delivered"]
    reminders = [n for n in log["notifications"] if n["kind"] == "reminder"]
    assert reminders and all(n["status"] == "pending" and n["attempts"] == [] for n in reminders)
    [reply] = log["inbound"]
    assert (reply["intent"], reply["outcome"], reply["sender"]) == ("confirm", "confirmed", "+44*******008")
    assert http.get(f"/v1/bookings/{code}").json()["status"] == "confirmed"
