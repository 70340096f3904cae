"""The sentences a booking rule refuses with: a start the service cannot take, an unknown or finished booking."""
from __future__ import annotations

from datetime import datetime

from nextslot.core.booking.availability import SlotProblem
from nextslot.core.planning import Plan
from nextslot.core.results import Rejected
from nextslot.core.views import plan_zone
from nextslot.storage.tables import Booking

PROBLEMS = {
    SlotProblem.OFF_GRID: "{start} is not on this service's {step}-minute grid; pick one of the offered start times.",
    SlotProblem.IN_PAST: "{start} is in the past.",
    SlotProblem.TOO_SOON: "{start} is too soon: this service needs {notice} minutes' notice.",
    SlotProblem.BEYOND_HORIZON: "{start} is too far ahead: bookings open {horizon} days in advance.",
    SlotProblem.OUTSIDE_HOURS: "{start} is outside opening hours for this service (buffers included).",
}


def slot_problem(problem: SlotProblem, plan: Plan, start: datetime) -> Rejected:
    rules = plan.rules
    message = PROBLEMS[problem].format(
        start=start.astimezone(plan_zone(plan)).strftime("%Y-%m-%d %H:%M %Z"),  # as the branch's hours say it
        step=rules.step_minutes, notice=int(rules.min_notice.total_seconds() // 60), horizon=rules.horizon.days,
    )
    return Rejected(problem.value, message, "starts_at")


def unknown_booking(code: str) -> Rejected:
    return Rejected("unknown_booking", f"No booking with code '{code}'. Check the code and try again.", "code")


def not_active(booking: Booking) -> Rejected:
    return Rejected("booking_not_active", f"Booking {booking.code} is {booking.status.replace('_', ' ')}.", "code")
