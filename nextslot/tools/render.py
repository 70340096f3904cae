"""Core results as tool results: times in the caller's zone, short sentences an agent can say."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nextslot.core.booking.search_budget import retry_after
from nextslot.core.instants import load_zone
from nextslot.core.results import Rejected
from nextslot.languages import gettext, local_clock, local_day, local_when
from nextslot.schemas.spoken import language_of
from nextslot.schemas.times import TimeView, spoken_time
from nextslot.schemas.tool_results import Appointment, TimeSlot, ToolProblem
from nextslot.schemas.views import BookingView, FeeView, SlotView
from nextslot.tools.phrases import cost_phrase, phrase


def zone_of(time: TimeView, caller_zone: str | None) -> ZoneInfo:
    """The caller's zone when known and valid, else the place's: a branch's own zone, else the business's."""
    return load_zone(caller_zone) or time.place_zone


def time_slot(slot: SlotView, caller_zone: str | None, language: str | None = None) -> TimeSlot:
    zone = zone_of(slot.starts_at, caller_zone)
    return TimeSlot(
        starts_at=slot.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=slot.ends_at.astimezone(zone).isoformat(),
        timezone=zone.key,
        spoken=local_when(slot.starts_at.utc, zone, language_of(language)),
        with_=[r.name for r in slot.resources],
        resources=[r.key for r in slot.resources],
        seats_left=slot.seats_left,
        location=slot.location.name if slot.location else None,
    )


def appointment(view: BookingView, language: str | None, *, her_own: bool, zone_name: str | None) -> Appointment:
    """The booking for the caller: times in `zone_name` (ToolContext.zone_for: hers only to her) else the place's,
    spoken in `language` (ToolContext.language_for). Why a deposit is asked only when it is `her_own`
    (ToolContext.answers_her): "because of missed appointments" would tell anyone who booked with her number that
    she has missed some."""
    zone = zone_of(view.starts_at, zone_name)
    spoken_language = language_of(language)
    return Appointment(
        code=view.code, code_spoken=view.code_spoken, status=view.status, service=view.service,
        service_name=view.service_name, starts_at=view.starts_at.utc.astimezone(zone).isoformat(),
        ends_at=view.ends_at.astimezone(zone).isoformat(), timezone=zone.key,
        spoken=local_when(view.starts_at.utc, zone, spoken_language), with_=[r.name for r in view.resources],
        customer_name=view.name_given, location=view.location.name if view.location else None,
        deposit_due=view.payment.amount.display if view.payment and view.payment.status == "pending" else None,
        pay_by=spoken_time(view.payment.expires_at, zone) if view.payment and view.payment.status == "pending"
        else None,
        deposit_reason=view.payment.reason if view.payment and her_own else None,  # type: ignore[arg-type]
    )


CUTOFFS = ("move_cutoff", "cancel_cutoff")  # refusals an agent says to the customer as they are


def problem(rejected: Rejected, language: str | None = None) -> ToolProblem:
    """The refusal for the agent; a cutoff's sentence in the caller's language, ready to say."""
    message = rejected.message
    facts = dict(rejected.details)
    if rejected.code in CUTOFFS and language_of(language) != "en" and "hours" in facts:
        call = phrase("call_on", language, phone=facts["phone"]) if facts.get("phone") else ""
        message = phrase(rejected.code, language, hours=facts["hours"], call=call)
    return ToolProblem(code=rejected.code, message=message, field=rejected.field,
                       suggestions=list(rejected.suggestions), retry_after=retry_after(rejected),
                       say=cap_sentence(rejected, language))


def cap_sentence(rejected: Rejected, language: str | None) -> str | None:
    """What a voice agent says for a public channel's cap (a contact's bookings, a sender's day, a series' length);
    None for any other refusal."""
    facts = dict(rejected.details)
    if rejected.code == "too_many_bookings" and facts.get("who") in ("contact", "caller", "address"):
        return phrase(f"too_many_{facts['who']}", language)
    if rejected.code == "too_many_holds":
        return phrase("too_many_holds", language)
    if rejected.code == "series_too_long" and "max" in facts:
        return phrase("series_too_long", language, max=facts["max"])
    return None


def spoken_choices(slots: list[TimeSlot], language: str | None = None) -> str:
    """'Tuesday 25 November at 9 am or 9:30 am, or Wednesday 26 November at 10 am': days and times said the
    local way by the pages' own function (languages/local_times.py), grouped by day."""
    lang = language_of(language)
    days: dict[str, list[str]] = {}
    for slot in slots:
        local = datetime.fromisoformat(slot.starts_at).astimezone(ZoneInfo(slot.timezone))
        clock = local_clock(local, lang)
        if slot.location:  # several branches: where is part of the offer
            clock += phrase("at_place", lang, place=slot.location)
        if slot.seats_left is not None:  # a class: how many places are left is part of the offer
            left = phrase("place_left", lang) if slot.seats_left == 1 else phrase("places_left", lang,
                                                                                  n=slot.seats_left)
            clock += f" ({left})"
        days.setdefault(local_day(local.date(), lang), []).append(clock)
    parts = [gettext(lang, "%(day)s at %(time)s", day=day, time=join_or(clocks, lang)) for day, clocks in days.items()]
    return ("," + phrase("or", lang)).join(parts)


def join_or(items: list[str], language: str | None = None) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])}{phrase('or', language)}{items[-1]}"


def with_whom(names: list[str]) -> str:
    return f" with {' and '.join(names)}" if names else ""


def booked_sentence(a: Appointment, verb: str = "booked", language: str | None = None) -> str:
    """'You're booked for ... on .... Your booking code is K 7 M, 4 P X.' (verb 'now booked': a move)."""
    return phrase("moved" if verb == "now booked" else "booked", language, service=a.service_name,
                  with_=phrase("with", language, name=a.with_[0]) if a.with_ else "",
                  where=phrase("at_place", language, place=a.location) if a.location else "",
                  when=a.spoken, code=a.code_spoken)


def deposit_sentence(a: Appointment) -> str:
    """The deposit asked, its amount and deadline; why only when the appointment tells (its `deposit_reason`)."""
    needs = "Because of missed appointments before, it needs" if a.deposit_reason == "no_shows" else "It needs"
    return (f"I've reserved {a.service_name}{with_whom(a.with_[:1])} on {a.spoken}. {needs} a {a.deposit_due} "
            f"deposit to be confirmed: I've sent you a payment link. Please pay by {a.pay_by}, or the time is "
            f"released. Your booking code is {a.code_spoken}.")


def taken_sentence(alternatives: list[TimeSlot], language: str | None = None) -> str:
    if not alternatives:
        return phrase("taken_none", language)
    return phrase("taken", language, choices=spoken_choices(alternatives, language))


def fee_phrase(fee: FeeView, language: str | None = None) -> str:
    """'the $20.00 deposit is kept', 'a $20.00 late-cancellation fee applies' (no card on file), 'a $20.00
    late-cancellation fee is charged to the card used for the deposit'."""
    cost = {"deposit_kept": "deposit_kept", "no_payment_method": "fee_due"}.get(fee.status, "fee_charged")
    return cost_phrase(cost, fee.amount.display, fee.kind, language)
