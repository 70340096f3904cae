"""Core results as tool results: times in the caller's zone, short sentences an agent can say."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from nextslot.core.instants import load_zone
from nextslot.core.results import Rejected
from nextslot.schemas.times import TimeView, spoken_time
from nextslot.schemas.tools import Appointment, TimeSlot, ToolProblem
from nextslot.schemas.views import BookingView, FeeView, SlotView


def zone_of(time: TimeView, caller_zone: str | None) -> ZoneInfo:
    """The caller's zone when known and valid, else the business's."""
    return load_zone(caller_zone) or ZoneInfo(time.business_timezone)


def time_slot(slot: SlotView, caller_zone: str | None) -> TimeSlot:
    zone = zone_of(slot.starts_at, caller_zone)
    return TimeSlot(
        starts_at=slot.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=slot.ends_at.astimezone(zone).isoformat(),
        timezone=zone.key,
        spoken=spoken_time(slot.starts_at.utc, zone),
        with_=[r.name for r in slot.resources],
        resources=[r.key for r in slot.resources],
        seats_left=slot.seats_left,
        location=slot.location.name if slot.location else None,
    )


def appointment(view: BookingView) -> Appointment:
    zone = zone_of(view.starts_at, view.customer.timezone)
    return Appointment(
        code=view.code, code_spoken=view.code_spoken, status=view.status, service=view.service,
        service_name=view.service_name, starts_at=view.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=view.ends_at.astimezone(zone).isoformat(), timezone=zone.key,
        spoken=spoken_time(view.starts_at.utc, zone), with_=[r.name for r in view.resources],
        customer_name=view.customer.name, location=view.location.name if view.location else None,
        deposit_due=view.payment.amount.display if view.payment and view.payment.status == "pending" else None,
        pay_by=spoken_time(view.payment.expires_at, zone) if view.payment and view.payment.status == "pending"
        else None,
        deposit_reason=view.payment.reason if view.payment else None,  # type: ignore[arg-type]
    )


def problem(rejected: Rejected) -> ToolProblem:
    return ToolProblem(code=rejected.code, message=rejected.message, field=rejected.field,
                       suggestions=list(rejected.suggestions))


def spoken_choices(slots: list[TimeSlot]) -> str:
    """'Tuesday 25 November at 9 am or 9:30 am, or Wednesday 26 November at 10 am'."""
    days: dict[str, list[str]] = {}
    for slot in slots:
        day, _, clock = slot.spoken.partition(" at ")
        if slot.location:  # several branches: where is part of the offer
            clock += f" at {slot.location}"
        if slot.seats_left is not None:  # a class: how many places are left is part of the offer
            clock += f" ({slot.seats_left} place{'s' if slot.seats_left != 1 else ''} left)"
        days.setdefault(day, []).append(clock)
    parts = [f"{day} at {join_or(clocks)}" for day, clocks in days.items()]
    return ", or ".join(parts)


def join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def with_whom(names: list[str]) -> str:
    return f" with {' and '.join(names)}" if names else ""


def booked_sentence(a: Appointment, verb: str = "booked") -> str:
    where = f" at {a.location}" if a.location else ""
    return (f"You're {verb} for {a.service_name}{with_whom(a.with_[:1])}{where} on {a.spoken}. "
            f"Your booking code is {a.code_spoken}.")


def deposit_sentence(a: Appointment) -> str:
    needs = "Because of missed appointments before, it needs" if a.deposit_reason == "no_shows" else "It needs"
    return (f"I've reserved {a.service_name}{with_whom(a.with_[:1])} on {a.spoken}. {needs} a {a.deposit_due} "
            f"deposit to be confirmed: I've sent you a payment link. Please pay by {a.pay_by}, or the time is "
            f"released. Your booking code is {a.code_spoken}.")


def taken_sentence(alternatives: list[TimeSlot]) -> str:
    if not alternatives:
        return "Sorry, that time has just been taken and I can't see another opening nearby."
    return f"Sorry, that time has just been taken. The nearest openings are {spoken_choices(alternatives)}."


def fee_phrase(fee: FeeView) -> str:
    """'the $20.00 deposit is kept', 'a $20.00 late-cancellation fee is charged to your card'."""
    if fee.status == "deposit_kept":
        return f"the {fee.amount.display} deposit is kept"
    what = "late-cancellation" if fee.kind == "late_cancel" else "missed-appointment"
    if fee.status == "no_payment_method":
        return f"a {fee.amount.display} {what} fee is due"
    return f"a {fee.amount.display} {what} fee is charged to your card"
