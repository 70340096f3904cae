"""Core results as tool results: times in the caller's zone, short sentences an agent can say."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.lists import format_list

from nextslot.core.instants import load_zone
from nextslot.core.results import Rejected
from nextslot.languages import choose, gettext, local_clock, local_day, local_when
from nextslot.schemas.times import TimeView
from nextslot.schemas.tools import Appointment, TimeSlot, ToolProblem
from nextslot.schemas.views import BookingView, FeeView, SlotView


def zone_of(time: TimeView, caller_zone: str | None) -> ZoneInfo:
    """The caller's zone when known and valid, else the business's."""
    return load_zone(caller_zone) or ZoneInfo(time.business_timezone)


def speaking(stated: str | None, customer: str | None = None) -> str:
    """The language of a tool's sentences: the caller's stated one, else the customer record's, else English."""
    return choose(stated, customer)


def time_slot(slot: SlotView, caller_zone: str | None, language: str = "en") -> TimeSlot:
    zone = zone_of(slot.starts_at, caller_zone)
    return TimeSlot(
        starts_at=slot.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=slot.ends_at.astimezone(zone).isoformat(),
        timezone=zone.key,
        spoken=local_when(slot.starts_at.utc, zone, language),
        with_=[r.name for r in slot.resources],
        resources=[r.key for r in slot.resources],
    )


def appointment(view: BookingView, language: str = "en") -> Appointment:
    zone = zone_of(view.starts_at, view.customer.timezone)
    return Appointment(
        code=view.code, code_spoken=view.code_spoken, status=view.status, service=view.service,
        service_name=view.service_name, starts_at=view.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=view.ends_at.astimezone(zone).isoformat(), timezone=zone.key,
        spoken=local_when(view.starts_at.utc, zone, language), with_=[r.name for r in view.resources],
        customer_name=view.customer.name,
        deposit_due=view.payment.amount.display if view.payment and view.payment.status == "pending" else None,
        pay_by=local_when(view.payment.expires_at, zone, language) if view.payment and view.payment.status == "pending"
        else None,
        deposit_reason=view.payment.reason if view.payment else None,  # type: ignore[arg-type]
    )


def problem(rejected: Rejected) -> ToolProblem:
    return ToolProblem(code=rejected.code, message=rejected.message, field=rejected.field,
                       suggestions=list(rejected.suggestions))


def spoken_choices(slots: list[TimeSlot], language: str = "en") -> str:
    """'Tuesday 25 November at 9 am or 9:30 am, or Wednesday 26 November at 10 am' (in the language)."""
    days: dict[str, list[str]] = {}
    for slot in slots:
        if language == "en":
            day, _, clock = slot.spoken.partition(" at ")
        else:
            local = datetime.fromisoformat(slot.starts_at)
            day, clock = local_day(local.date(), language), local_clock(local, language)
        days.setdefault(day, []).append(clock)
    if language == "en":
        return ", or ".join(f"{day} at {join_or(clocks)}" for day, clocks in days.items())
    parts = [gettext(language, "%(day)s at %(time)s", day=day, time=join_or(clocks, language))
             for day, clocks in days.items()]
    return join_or(parts, language)


def join_or(items: list[str], language: str = "en") -> str:
    if language != "en":
        return format_list(items, style="or", locale=language)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def join_and(items: list[str], language: str = "en") -> str:
    return " and ".join(items) if language == "en" else format_list(items, locale=language)


def with_whom(names: list[str], language: str = "en") -> str:
    if not names:
        return ""
    return gettext(language, " with %(names)s", names=join_and(names, language))


def booked_sentence(a: Appointment, verb: str = "booked", language: str = "en") -> str:
    values = {"service": a.service_name, "with": with_whom(a.with_[:1], language), "when": a.spoken,
              "code": a.code_spoken}
    if verb == "booked":
        return gettext(language, "You're booked for %(service)s%(with)s on %(when)s. Your booking code is %(code)s.",
                       **values)
    return gettext(language, "You're now booked for %(service)s%(with)s on %(when)s. Your booking code is "
                             "%(code)s.", **values)


def deposit_sentence(a: Appointment, language: str = "en") -> str:
    values = {"service": a.service_name, "with": with_whom(a.with_[:1], language), "when": a.spoken,
              "deposit": a.deposit_due, "pay_by": a.pay_by, "code": a.code_spoken}
    if a.deposit_reason == "no_shows":
        return gettext(language, "I've reserved %(service)s%(with)s on %(when)s. Because of missed appointments "
                                 "before, it needs a %(deposit)s deposit to be confirmed: I've sent you a payment "
                                 "link. Please pay by %(pay_by)s, or the time is released. Your booking code is "
                                 "%(code)s.", **values)
    return gettext(language, "I've reserved %(service)s%(with)s on %(when)s. It needs a %(deposit)s deposit to be "
                             "confirmed: I've sent you a payment link. Please pay by %(pay_by)s, or the time is "
                             "released. Your booking code is %(code)s.", **values)


def taken_sentence(alternatives: list[TimeSlot], language: str = "en") -> str:
    if not alternatives:
        return gettext(language, "Sorry, that time has just been taken and I can't see another opening nearby.")
    return gettext(language, "Sorry, that time has just been taken. The nearest openings are %(choices)s.",
                   choices=spoken_choices(alternatives, language))


def fee_phrase(fee: FeeView, language: str = "en") -> str:
    """'the $20.00 deposit is kept', 'a $20.00 late-cancellation fee is charged to your card'."""
    amount = fee.amount.display
    if fee.status == "deposit_kept":
        return gettext(language, "the %(amount)s deposit is kept", amount=amount)
    due = fee.status == "no_payment_method"
    if fee.kind == "late_cancel":
        return (gettext(language, "a %(amount)s late-cancellation fee is due", amount=amount) if due
                else gettext(language, "a %(amount)s late-cancellation fee is charged to your card", amount=amount))
    return (gettext(language, "a %(amount)s missed-appointment fee is due", amount=amount) if due
            else gettext(language, "a %(amount)s missed-appointment fee is charged to your card", amount=amount))
