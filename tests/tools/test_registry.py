"""Every tool through `execute`, in-process: the one path all exports share."""
from __future__ import annotations

import pytest

from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, execute


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def ctx(service, clinic) -> ToolContext:
    return ToolContext(service=service, business_id=clinic, channel="test")


def call(ctx: ToolContext, name: str, **args):
    return execute(name, args, ctx)


def test_smoke_every_tool(ctx):
    for name in ("list_services", "get_business_info"):
        reply = call(ctx, name)
        assert reply.ok, reply.data
        print(reply.say)
    slots = call(ctx, "find_available_slots", service="consultation", date="2026-11-24")
    assert slots.ok, slots.data
    print(slots.data)
    first = slots.data["slots"][0]
    booked = call(ctx, "book_appointment", service="consultation", starts_at=first["starts_at"],
                  customer_name="Ann Lee", phone="07911 123456")
    print(booked.data)
    assert booked.ok
    again = call(ctx, "book_appointment", service="consultation", starts_at=first["starts_at"],
                 customer_name="Bob Lee", phone="07911 123457", staff="Dr Patel")
    print(again.data)
    code = booked.data["appointment"]["code"]
    print(call(ctx, "find_appointments", phone="07911123456").data)
    print(call(ctx, "find_appointments", phone="07911123456", code=code[:-1] + ("A" if code[-1] != "A" else "C")).data)
    print(call(ctx, "reschedule_appointment", code=code, new_starts_at=slots.data["slots"][2]["starts_at"]).data)
    print(call(ctx, "confirm_appointment", code=code).data)
    print(call(ctx, "cancel_appointment", code=code).data)
    print(call(ctx, "hold_slot", service="consultation", starts_at=first["starts_at"]).data)
    print(call(ctx, "join_waitlist", service="scan", customer_name="C", phone="07911123458",
               earliest_date="2026-11-25", latest_date="2026-11-28").data)
    print(call(ctx, "join_waitlist", service="ultrasound", customer_name="C", phone="07911123458",
               earliest_date="2026-11-25", latest_date="2026-11-28", earliest_time="09:00").data)
    print(call(ctx, "book_appointment", service="consultation", starts_at="2026-11-24T10:00", customer_name="x").data)
    print(call(ctx, "book_appointment", servce="consultation", starts_at="tomorrow", customer_name=3).data)
    print(execute("book", "{bad json", ctx).data)
