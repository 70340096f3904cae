"""One function per agent tool: parse the tool input into a core command, call the core, render the answer."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import get_day_names

from nextslot.core.instants import load_zone
from nextslot.core.results import Booked, Changed, Held, Rejected, SlotTaken
from nextslot.languages import gettext, known, local_day, ngettext
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    BookingSearch,
    CustomerIn,
    HoldCreate,
    SlotQuery,
    WaitlistJoin,
)
from nextslot.schemas.statuses import ACTIVE
from nextslot.schemas.tools import (
    AppointmentsOut,
    BookIn,
    BookingOut,
    BusinessInfoIn,
    BusinessInfoOut,
    CancelIn,
    ChangeOut,
    ClosureSummary,
    ConfirmIn,
    CustomerHistoryIn,
    CustomerHistoryOut,
    DayHours,
    FindAppointmentsIn,
    FindSlotsIn,
    HistoryLine,
    HoldOut,
    HoldSlotIn,
    JoinWaitlistIn,
    ListServicesIn,
    QuestionSummary,
    RescheduleIn,
    ServicesOut,
    ServiceSummary,
    SlotsOut,
    TimeSlot,
    ToolProblem,
    WaitlistOut,
)
from nextslot.schemas.views import ServiceView, SlotView
from nextslot.tools.context import ToolContext
from nextslot.tools.render import (
    appointment,
    booked_sentence,
    deposit_sentence,
    fee_phrase,
    join_and,
    join_or,
    problem,
    speaking,
    spoken_choices,
    taken_sentence,
    time_slot,
)

DEFAULT_SLOTS = 5
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # CLDR: 0 is Monday
DEFAULT_HISTORY = 20
ACTOR = "agent"


def staff_keys(ctx: ToolContext, staff: str | None) -> list[str] | Rejected:
    if not staff:
        return []
    key = ctx.service.resource_key(ctx.business_id, staff)
    return key if isinstance(key, Rejected) else [key]


def key_for(ctx: ToolContext, given: str | None) -> str | None:
    return given or ctx.idempotency_key


def write_fields(ctx: ToolContext, args: HoldSlotIn | BookIn | RescheduleIn) -> dict[str, Any] | Rejected:
    """What every write command carries: the named staff member as a resource, the zone of the times, the
    idempotency key (the tool's, else the request's), the channel and the actor."""
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return resources
    return {"timezone": args.timezone, "resources": resources, "idempotency_key": key_for(ctx, args.idempotency_key),
            "source": ctx.channel, "actor": ACTOR}


def list_services(ctx: ToolContext, args: ListServicesIn) -> ServicesOut:
    services = ctx.service.list_services(ctx.business_id)
    language = speaking(args.language)
    say = (gettext(language, "We offer %(names)s.", names=join_or([s.name for s in services], language)) if services
           else gettext(language, "We offer nothing bookable yet."))
    return ServicesOut(services=[service_summary(s) for s in services], say=say)


def service_summary(s: ServiceView) -> ServiceSummary:
    return ServiceSummary(
        key=s.key, name=s.name, description=s.description, duration_minutes=s.duration_minutes, needs=s.needs,
        staff=s.staff, deposit=s.deposit.display if s.deposit else None,
        questions=[QuestionSummary(key=q.key, question=q.label, required=q.required, type=q.type, options=q.options)
                   for q in s.intake],
    )


def get_business_info(ctx: ToolContext, args: BusinessInfoIn) -> BusinessInfoOut | ToolProblem:
    profile = ctx.service.business_profile(ctx.business_id)
    if isinstance(profile, Rejected):
        return problem(profile)
    language = speaking(args.language)
    open_days = [f"{day_name(d.day, language)} "
                 + join_and([span(h, language) for h in d.hours], language) for d in profile.opening_hours if d.hours]
    say = f"{profile.name}" + (f", {profile.address}" if profile.address else "") + "."
    if open_days:
        say += " " + gettext(language, "Open %(days)s.", days="; ".join(open_days))
    return BusinessInfoOut(
        name=profile.name, timezone=profile.timezone, address=profile.address, phone=profile.phone,
        policies=profile.policies, opening_hours=[DayHours(day=d.day, hours=d.hours) for d in profile.opening_hours],
        closures=[ClosureSummary(starts_at=c.starts_at.isoformat(), ends_at=c.ends_at.isoformat(), reason=c.reason)
                  for c in profile.closures],
        services=[s.name for s in profile.services], say=say,
    )


def find_available_slots(ctx: ToolContext, args: FindSlotsIn) -> SlotsOut | ToolProblem:
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return problem(resources)
    limit = args.limit or DEFAULT_SLOTS
    filtered = args.earliest_time is not None or args.latest_time is not None
    # a date is a whole local day (in `timezone`, else the business's zone: the core reads it so)
    starts_from: date | datetime = args.date or ctx.service.now()
    until = starts_from + timedelta(days=args.days or (1 if args.date else 7))
    query = SlotQuery(service=args.service, starts_from=starts_from, until=until, timezone=args.timezone,
                      customer_timezone=args.caller_timezone, resources=resources, limit=1000 if filtered else limit)
    found = ctx.service.find_slots(ctx.business_id, query)
    if isinstance(found, Rejected):
        return problem(found)
    language = speaking(args.language)
    shown = [time_slot(s, args.caller_timezone, language) for s in found.slots if in_day_window(s, args)][:limit]
    later: list[TimeSlot] = []
    if not shown:  # nothing in the asked window: the first openings in the month after it
        after = ctx.service.find_slots(ctx.business_id, query.model_copy(
            update={"starts_from": until, "until": until + timedelta(days=31)}))
        if not isinstance(after, Rejected):
            later = [time_slot(s, args.caller_timezone, language) for s in after.slots if in_day_window(s, args)][:3]
    return SlotsOut(service=args.service, slots=shown, next_openings=later,
                    say=slots_sentence(shown, later, language))


def day_name(english: str, language: str) -> str:
    """'Monday' (the core's day names) in the language, from CLDR."""
    if language == "en" or english not in DAY_NAMES:
        return english
    return str(get_day_names("wide", locale=language)[DAY_NAMES.index(english)])


def span(hours: str, language: str) -> str:
    """'09:00-17:00' as said: '09:00 to 17:00', 'de 09:00 a 17:00'."""
    start, _, end = hours.partition("-")
    return gettext(language, "%(start)s to %(end)s", start=start, end=end)


def in_day_window(slot: SlotView, args: FindSlotsIn) -> bool:
    """Whether the slot starts within the asked times of day (in `timezone`, else the business's zone)."""
    if args.earliest_time is None and args.latest_time is None:
        return True
    zone = load_zone(args.timezone) or ZoneInfo(slot.starts_at.business_timezone)
    local = slot.starts_at.utc.astimezone(zone).time()
    return (args.earliest_time is None or local >= args.earliest_time) and (
        args.latest_time is None or local <= args.latest_time)


def slots_sentence(shown: list[TimeSlot], later: list[TimeSlot], language: str = "en") -> str:
    if shown:
        return gettext(language, "I can offer %(choices)s.", choices=spoken_choices(shown[:3], language))
    if later:
        return gettext(language, "Nothing is free then. The next openings are %(choices)s.",
                       choices=spoken_choices(later, language))
    return gettext(language, "Nothing is free then, nor in the month after.")


def hold_slot(ctx: ToolContext, args: HoldSlotIn) -> HoldOut | ToolProblem:
    fields = write_fields(ctx, args)
    if isinstance(fields, Rejected):
        return problem(fields)
    result = ctx.service.hold(ctx.business_id, HoldCreate(service=args.service, starts_at=args.starts_at, **fields))
    language = speaking(args.language)
    match result:
        case Held(hold):
            seconds = max(0, int((hold.expires_at - ctx.service.now()).total_seconds()))
            slot = time_slot(SlotView(starts_at=hold.starts_at, ends_at=hold.ends_at, resources=hold.resources),
                             args.caller_timezone, language)
            return HoldOut(outcome="held", hold_id=hold.id, expires_at=hold.expires_at.isoformat(),
                           expires_in_seconds=seconds, slot=slot,
                           say=gettext(language, "I'm holding %(when)s for you while we finish.", when=slot.spoken))
        case SlotTaken(_, alternatives):
            shown = [time_slot(s, args.caller_timezone, language) for s in alternatives]
            return HoldOut(outcome="slot_taken", alternatives=shown, say=taken_sentence(shown, language))
        case Rejected() as rejected:
            return problem(rejected)
    raise AssertionError(result)


def book_appointment(ctx: ToolContext, args: BookIn) -> BookingOut | ToolProblem:
    fields = write_fields(ctx, args)
    if isinstance(fields, Rejected):
        return problem(fields)
    phone = args.phone or (None if args.email else ctx.caller_phone)
    result = ctx.service.book(ctx.business_id, BookingCreate(
        service=args.service, starts_at=args.starts_at,
        customer=CustomerIn(name=args.customer_name, phone=phone, email=args.email, timezone=args.caller_timezone,
                            **language_of(args.language)),
        hold_id=args.hold_id, notes=args.notes or "", intake={a.question: a.answer for a in args.answers or ()},
        **fields,
    ))
    return booking_out(result, "booked", args.caller_timezone, args.language)


def reschedule_appointment(ctx: ToolContext, args: RescheduleIn) -> BookingOut | ToolProblem:
    fields = write_fields(ctx, args)
    if isinstance(fields, Rejected):
        return problem(fields)
    result = ctx.service.reschedule(ctx.business_id, BookingReschedule(code=args.code, starts_at=args.new_starts_at,
                                                                       **fields))
    return booking_out(result, "rescheduled", None, args.language)


def language_of(stated: str | None) -> dict[str, str]:
    """The customer record's language when the caller stated one of ours (else the record keeps its own)."""
    ours = known(stated)
    return {"language": ours} if ours else {}


def booking_out(result: Booked | SlotTaken | Rejected, verb: str, caller_zone: str | None,
                stated: str | None = None) -> BookingOut | ToolProblem:
    match result:
        case Booked(view, replayed):
            language = speaking(stated, view.customer.language)
            a = appointment(view, language)
            say = (deposit_sentence(a, language) if a.deposit_due
                   else booked_sentence(a, "booked" if verb == "booked" else "now booked", language))
            return BookingOut(outcome=verb, appointment=a, replayed=replayed, say=say)  # type: ignore[arg-type]
        case SlotTaken(_, alternatives):
            language = speaking(stated)
            shown = [time_slot(s, caller_zone, language) for s in alternatives]
            return BookingOut(outcome="slot_taken", alternatives=shown, say=taken_sentence(shown, language))
        case Rejected() as rejected:
            return problem(rejected)
    raise AssertionError(result)


def cancel_appointment(ctx: ToolContext, args: CancelIn) -> ChangeOut | ToolProblem:
    result = ctx.service.cancel(ctx.business_id, BookingChange(
        code=args.code, reason=args.reason or "", source=ctx.channel, actor=ACTOR,
        late_terms="accept" if args.accept_late_terms else None))
    if isinstance(result, Rejected) and result.code == "late_terms_not_accepted":  # a question for the caller
        return ChangeOut(outcome="needs_agreement", reason_code=result.code, acknowledge_with="accept_late_terms",
                         say=result.message)
    return change_out(result, "cancelled", args.language)


def confirm_appointment(ctx: ToolContext, args: ConfirmIn) -> ChangeOut | ToolProblem:
    result = ctx.service.confirm(ctx.business_id, BookingChange(code=args.code, source=ctx.channel, actor=ACTOR))
    return change_out(result, "confirmed", args.language)


def change_out(result: Changed | Rejected, verb: str, stated: str | None = None) -> ChangeOut | ToolProblem:
    if isinstance(result, Rejected):
        return problem(result)
    language = speaking(stated, result.booking.customer.language)
    a = appointment(result.booking, language)
    values = {"service": a.service_name, "when": a.spoken}
    if verb == "cancelled":
        say = gettext(language, "Your %(service)s on %(when)s is cancelled.", **values)
    elif result.replayed:
        say = gettext(language, "Your %(service)s on %(when)s is confirmed.", **values)
    else:
        say = gettext(language, "Thank you. Your %(service)s on %(when)s is confirmed. See you then.", **values)
    cost = fee_phrase(result.booking.fees[-1], language) if result.booking.fees else None
    if cost and verb == "cancelled":
        say += " " + gettext(language, "As it was late, %(cost)s.", cost=cost)
    return ChangeOut(outcome=verb, appointment=a, already=result.replayed, say=say, fee=cost)  # type: ignore[arg-type]


def find_appointments(ctx: ToolContext, args: FindAppointmentsIn) -> AppointmentsOut | ToolProblem:
    phone = args.phone or (None if (args.email or args.code) else ctx.caller_phone)
    found = ctx.service.find_bookings(ctx.business_id, BookingSearch(
        phone=phone, email=args.email, code=args.code, include_past=bool(args.include_past)))
    if isinstance(found, Rejected):
        return problem(found)
    views, near = found
    language = speaking(args.language, views[0].customer.language if views else None)
    shown = [appointment(v, language) for v in views]
    live = [a for a in shown if a.status in ACTIVE]
    if args.code and near:
        say = gettext(language, "I couldn't find code %(code)s, but this caller has %(near)s: is that the one?",
                      code=args.code, near=", ".join(near))
    elif not shown:
        say = gettext(language, "I can't find any upcoming appointments for those details.")
    else:
        listed = "; ".join(gettext(language, "%(service)s on %(when)s, code %(code)s", service=a.service_name,
                                   when=a.spoken, code=a.code_spoken) for a in (live or shown)[:3])
        say = ngettext(language, "I found %(num)d appointment: %(listed)s.", "I found %(num)d appointments: "
                       "%(listed)s.", len(live or shown), listed=listed)
    return AppointmentsOut(appointments=shown, near_codes=near, say=say)


def customer_history(ctx: ToolContext, args: CustomerHistoryIn) -> CustomerHistoryOut | ToolProblem:
    phone = args.phone or (None if args.email else ctx.caller_phone)
    history = ctx.service.customer_history(ctx.business_id, phone, args.email, args.limit or DEFAULT_HISTORY)
    if isinstance(history, Rejected):
        return problem(history)
    name = history.customer.name or "This customer"
    missed = f", {history.no_shows} missed" if history.no_shows else ""
    last = f" The latest: {history.events[-1].summary}." if history.events else ""
    return CustomerHistoryOut(
        customer_name=history.customer.name, bookings=history.bookings, no_shows=history.no_shows,
        events=[HistoryLine(at=e.at.isoformat(), what=e.summary, kind=e.kind, code=e.booking_code)
                for e in history.events],
        say=f"{name} has {history.bookings} booking{'s' if history.bookings != 1 else ''} with us{missed}.{last}",
    )


def spoken_date(iso: str, language: str = "en") -> str:
    return local_day(date.fromisoformat(iso), language)


def join_waitlist(ctx: ToolContext, args: JoinWaitlistIn) -> WaitlistOut | ToolProblem:
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return problem(resources)
    phone = args.phone or (None if args.email else ctx.caller_phone)
    result = ctx.service.join_waitlist(ctx.business_id, WaitlistJoin(
        service=args.service, customer=CustomerIn(name=args.customer_name, phone=phone, email=args.email,
                                                  **language_of(args.language)),
        earliest_date=args.earliest_date, latest_date=args.latest_date, day_start=args.earliest_time or time(0),
        day_end=args.latest_time, resources=resources, source=ctx.channel, actor=ACTOR,
    ))
    if isinstance(result, Rejected):
        return problem(result)
    language = speaking(args.language, result.customer.language)
    first, last = (spoken_date(d, language) for d in (result.earliest_date, result.latest_date))
    if first != last:
        say = gettext(language, "You're on the waitlist for %(service)s between %(first)s and %(last)s. We'll "
                                "message you as soon as a time opens up.", service=result.service_name,
                      first=first, last=last)
    else:
        say = gettext(language, "You're on the waitlist for %(service)s on %(first)s. We'll message you as soon "
                                "as a time opens up.", service=result.service_name, first=first)
    return WaitlistOut(
        outcome="waitlisted", waitlist_id=result.id, service=result.service, earliest_date=result.earliest_date,
        latest_date=result.latest_date, earliest_time=result.day_start, latest_time=result.day_end,
        say=say,
    )
