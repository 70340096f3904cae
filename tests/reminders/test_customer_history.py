"""A customer's whole history with the business, in order, through the agent tool and the core."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.inbound import handle_reply
from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn, WaitlistJoin
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute
from tests.reminders.test_dispatcher import ScriptedChannel

PHONE = "+447911125000"


def test_bookings_changes_messages_replies_and_waitlist_come_back_in_order_and_only_for_this_business(
        service, make_business, session_factory, clock):
    clinic, other = make_business("clinic"), make_business("clinic")
    booking = service.book(clinic, BookingCreate(
        service="consultation", starts_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
        customer=CustomerIn(name="Ann Lee", phone=PHONE))).booking
    service.book(other, BookingCreate(service="consultation", starts_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
                                      customer=CustomerIn(name="Ann Lee", phone=PHONE)))
    clock.now += timedelta(minutes=1)
    Dispatcher(session_factory, {"sms": ScriptedChannel("sms")}, clock=clock).dispatch_due()
    clock.now += timedelta(minutes=1)
    handle_reply(service, "sms", PHONE, f"C {booking.code}", "SMhist1")
    clock.now += timedelta(minutes=1)
    service.reschedule(clinic, BookingReschedule(code=booking.code, starts_at=datetime(2026, 11, 24, 10, tzinfo=UTC),
                                                 source="staff", actor="front desk"))
    clock.now += timedelta(minutes=1)
    service.join_waitlist(clinic, WaitlistJoin(service="consultation", customer=CustomerIn(name="Ann Lee", phone=PHONE),
                                               earliest_date=date(2026, 11, 30), latest_date=date(2026, 12, 4)))

    reply = execute("customer_history", {}, ToolContext(service, clinic, "test", caller_phone=PHONE))
    assert reply.ok, reply.data
    data = reply.data
    assert (data["customer_name"], data["bookings"], data["no_shows"]) == ("Ann Lee", 1, 0)
    kinds = [e["kind"] for e in data["events"]]
    assert kinds[0] == "booking.created"
    assert kinds.index("message") < kinds.index("reply") < kinds.index("booking.rescheduled")
    assert "booking.confirmed" in kinds and kinds[-1] == "waitlist.joined"
    moved = next(e for e in data["events"] if e["kind"] == "booking.rescheduled")
    assert moved["what"] == "Moved GP consultation on Tue 24 Nov 2026 10:00 (from Tue 24 Nov 2026 09:00)"
    assert moved["code"] == booking.code
    assert any(e["what"].startswith("confirmation by sms") for e in data["events"])
    assert "Ann Lee has 1 booking with us." in data["say"]
    unknown = execute("customer_history", {"phone": "+447911125999"}, ToolContext(service, clinic, "test"))
    assert not unknown.ok and unknown.data["error"]["code"] == "unknown_customer"
