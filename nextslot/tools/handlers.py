"""One function per agent tool: parse the tool input into a core command, call the core, render the answer."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nextslot.core.instants import load_zone
from nextslot.core.results import Booked, Changed, Held, Rejected, SeriesChanged, SlotTaken
from nextslot.schemas.commands import (
    BookingChange,
    BookingCreate,
    BookingReschedule,
    CustomerIn,
    HoldCreate,
    SlotQuery,
    WaitlistJoin,
)
from nextslot.schemas.spoken import language_of
from nextslot.schemas.tool_results import (
    Appointment,
    BookingOut,
    BusinessInfoOut,
    ChangeOut,
    ClosureSummary,
    DayHours,
    HoldOut,
    QuestionSummary,
    ServicesOut,
    ServiceSummary,
    SlotsOut,
    TimeSlot,
    ToolProblem,
    WaitlistOut,
)
from nextslot.schemas.tools import (
    BookIn,
    BusinessInfoIn,
    CancelIn,
    ConfirmIn,
    FindSlotsIn,
    HoldSlotIn,
    JoinWaitlistIn,
    ListServicesIn,
    RescheduleIn,
)
from nextslot.schemas.views import BookingView, ServiceView, SlotView
from nextslot.tools.context import ToolContext
from nextslot.tools.phrases import cost_phrase, phrase
from nextslot.tools.render import (
    appointment,
    booked_sentence,
    deposit_sentence,
    fee_phrase,
    join_or,
    problem,
    spoken_choices,
    taken_sentence,
    time_slot,
)

DEFAULT_SLOTS = 5
NEXT_OPENINGS = 3  # offered when the asked window has none
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
    fields: dict[str, Any] = {"timezone": args.timezone, "resources": resources, "source": ctx.channel,
                              "idempotency_key": key_for(ctx, args.idempotency_key), "actor": ACTOR}
    if not isinstance(args, RescheduleIn):
        fields["party_size"], fields["holder"] = args.party_size or 1, ctx.holder
    fields["location"] = args.location
    return fields


def list_services(ctx: ToolContext, _: ListServicesIn) -> ServicesOut:
    services = ctx.service.list_services(ctx.business_id)
    names = join_or([s.name for s in services]) if services else "nothing bookable yet"
    return ServicesOut(services=[service_summary(s) for s in services], say=f"We offer {names}.")


def service_summary(s: ServiceView) -> ServiceSummary:
    return ServiceSummary(
        key=s.key, name=s.name, description=s.description, duration_minutes=s.duration_minutes, needs=s.needs,
        staff=s.staff, deposit=s.deposit.display if s.deposit else None,
        questions=[QuestionSummary(key=q.key, question=q.label, required=q.required, type=q.type, options=q.options)
                   for q in s.intake],
    )


def get_business_info(ctx: ToolContext, _: BusinessInfoIn) -> BusinessInfoOut | ToolProblem:
    profile = ctx.service.business_profile(ctx.business_id)
    if isinstance(profile, Rejected):
        return problem(profile)
    open_days = [f"{d.day} {', '.join(h.replace('-', ' to ') for h in d.hours)}" for d in profile.opening_hours
                 if d.hours]
    say = f"{profile.name}" + (f", {profile.address}" if profile.address else "") + "."
    if len(profile.locations) > 1:
        say += " Branches: " + "; ".join(p.name + (f", {p.address}" if p.address else "")
                                          for p in profile.locations) + "."
    if open_days:
        say += f" Open {'; '.join(open_days)}."
    local = ctx.service.now().astimezone(ZoneInfo(profile.timezone))  # a +14 zone's date is a day ahead of UTC's
    return BusinessInfoOut(
        name=profile.name, timezone=profile.timezone, now=local.isoformat(timespec="seconds"),
        today=f"{local:%A} {local.day} {local:%B %Y}", address=profile.address, phone=profile.phone,
        policies=profile.policies, opening_hours=[DayHours(day=d.day, hours=d.hours) for d in profile.opening_hours],
        closures=[ClosureSummary(starts_at=c.starts_at.isoformat(), ends_at=c.ends_at.isoformat(), reason=c.reason)
                  for c in profile.closures],
        services=[s.name for s in profile.services], say=say,
        locations=[p.name for p in profile.locations],
    )


def find_available_slots(ctx: ToolContext, args: FindSlotsIn) -> SlotsOut | ToolProblem:
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return problem(resources)
    limit = args.limit or DEFAULT_SLOTS
    filtered = args.earliest_time is not None or args.latest_time is not None
    # a date is a whole local day (in `timezone`, else the branch's or the business's zone: the core reads it so)
    starts_from: date | datetime = args.date or ctx.service.now()
    until = starts_from + timedelta(days=args.days or (1 if args.date else 7))
    query = SlotQuery(service=args.service, starts_from=starts_from, until=until, timezone=args.timezone,
                      customer_timezone=args.caller_timezone, resources=resources, limit=1000 if filtered else limit,
                      party_size=args.party_size or 1, location=args.location)
    found = ctx.service.find_slots(ctx.business_id, query)
    if isinstance(found, Rejected):
        return problem(found)
    lang = args.language
    shown = [time_slot(s, args.caller_timezone, lang) for s in found.slots if in_day_window(s, args)][:limit]
    later: list[TimeSlot] = []
    if not shown:  # nothing in the asked window: the first openings in the month after it
        after = ctx.service.find_slots(ctx.business_id, query.model_copy(update={
            "starts_from": until, "until": until + timedelta(days=31), "limit": 1000 if filtered else NEXT_OPENINGS}))
        if not isinstance(after, Rejected):
            later = [time_slot(s, args.caller_timezone, lang) for s in after.slots
                     if in_day_window(s, args)][:NEXT_OPENINGS]
    return SlotsOut(service=args.service, slots=shown, next_openings=later,
                    say=slots_sentence(shown, later, lang))


def in_day_window(slot: SlotView, args: FindSlotsIn) -> bool:
    """Whether the slot starts within the asked times of day (in `timezone`, else the zone of the slot's branch:
    "mornings" at a branch are its own mornings)."""
    if args.earliest_time is None and args.latest_time is None:
        return True
    zone = load_zone(args.timezone) or slot.starts_at.place_zone
    local = slot.starts_at.utc.astimezone(zone).time()
    return (args.earliest_time is None or local >= args.earliest_time) and (
        args.latest_time is None or local <= args.latest_time)


def slots_sentence(shown: list[TimeSlot], later: list[TimeSlot], language: str | None = None) -> str:
    if shown:
        return phrase("offer", language, choices=spoken_choices(shown[:3], language))
    if later:
        return phrase("offer_later", language, choices=spoken_choices(later, language))
    return phrase("offer_none", language)


def hold_slot(ctx: ToolContext, args: HoldSlotIn) -> HoldOut | ToolProblem:
    fields = write_fields(ctx, args)
    if isinstance(fields, Rejected):
        return problem(fields)
    result = ctx.service.hold(ctx.business_id, HoldCreate(service=args.service, starts_at=args.starts_at, **fields))
    match result:
        case Held(hold):
            seconds = max(0, int((hold.expires_at - ctx.service.now()).total_seconds()))
            slot = time_slot(SlotView(starts_at=hold.starts_at, ends_at=hold.ends_at, resources=hold.resources),
                             args.caller_timezone)
            return HoldOut(outcome="held", hold_id=hold.id, expires_at=hold.expires_at.isoformat(),
                           expires_in_seconds=seconds, slot=slot,
                           say=f"I'm holding {slot.spoken} for you while we finish.")
        case SlotTaken(_, alternatives):
            shown = [time_slot(s, args.caller_timezone, args.language) for s in alternatives]
            return HoldOut(outcome="slot_taken", alternatives=shown, say=taken_sentence(shown, args.language))
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
                            language=args.language or "en"),
        hold_id=args.hold_id, notes=args.notes or "", intake={a.question: a.answer for a in args.answers or ()},
        **fields,
    ))
    return booking_out(ctx, result, "booked", args.caller_timezone, args.language)


def reschedule_appointment(ctx: ToolContext, args: RescheduleIn) -> BookingOut | ToolProblem:
    fields = write_fields(ctx, args)
    if isinstance(fields, Rejected):
        return problem(fields)
    cmd = BookingReschedule(code=args.code, starts_at=args.new_starts_at, **fields)
    if args.and_later:
        moved = ctx.service.move_series(ctx.business_id, cmd)
        if not isinstance(moved, SeriesChanged):
            return booking_out(ctx, moved, "rescheduled", args.timezone, args.language)
        first, *later = (told(ctx, v, args.language, args.timezone) for v in moved.bookings)
        tail = f" and the {len(later)} after it" if later else ""
        return BookingOut(outcome="rescheduled", appointment=first, later=later,
                          say=f"Done: your {first.service_name} is now on {first.spoken}{tail}, at the same time "
                              f"each {'time' if not later else 'occurrence'}. Your first code is {first.code_spoken}.")
    # the zone the caller said the new time in is theirs: the answer comes in it (ToolContext.zone_for)
    return booking_out(ctx, ctx.service.reschedule(ctx.business_id, cmd), "rescheduled", args.timezone,
                       args.language)


def told(ctx: ToolContext, view: BookingView, stated: str | None, zone: str | None = None) -> Appointment:
    """The booking as this caller is told it: in the language and zone they named, else (ToolContext.language_for,
    .zone_for) the customer's own only if they are proved to be her, else the business's language and the branch's
    zone; why a deposit is asked likewise."""
    return appointment(view, ctx.language_for(stated, view.customer), her_own=ctx.answers_her(view.customer),
                       zone_name=ctx.zone_for(zone, view.customer))


def booking_out(ctx: ToolContext, result: Booked | SlotTaken | Rejected, verb: str, caller_zone: str | None,
                language: str | None = None) -> BookingOut | ToolProblem:
    match result:
        case Booked(view, replayed):
            lang = ctx.language_for(language, view.customer)
            a = told(ctx, view, lang, caller_zone)
            say = (deposit_sentence(a) if a.deposit_due
                   else booked_sentence(a, "booked" if verb == "booked" else "now booked", lang))
            return BookingOut(outcome=verb, appointment=a, replayed=replayed, say=say)  # type: ignore[arg-type]
        case SlotTaken(_, alternatives):
            shown = [time_slot(s, caller_zone, language) for s in alternatives]
            return BookingOut(outcome="slot_taken", alternatives=shown, say=taken_sentence(shown, language))
        case Rejected() as rejected:
            return problem(rejected, language)
    raise AssertionError(result)


def cancel_appointment(ctx: ToolContext, args: CancelIn) -> ChangeOut | ToolProblem:
    cmd = BookingChange(code=args.code, reason=args.reason or "", source=ctx.channel, actor=ACTOR,
                        late_terms="accept" if args.accept_late_terms else None)
    if args.and_later:
        series = ctx.service.cancel_series(ctx.business_id, cmd)
        if isinstance(series, SeriesChanged):
            first, *later = (told(ctx, v, args.language) for v in series.bookings)
            tail = f" and the {len(later)} after it are" if later else " is"
            return ChangeOut(outcome="cancelled", appointment=first, later=later,
                             say=f"Your {first.service_name} on {first.spoken}{tail} cancelled.")
        result: Changed | Rejected = series
    else:
        result = ctx.service.cancel(ctx.business_id, cmd)
    if isinstance(result, Rejected) and result.code == "late_terms_not_accepted":  # a question for the caller
        return ChangeOut(outcome="needs_agreement", reason_code=result.code, acknowledge_with="accept_late_terms",
                         say=late_terms_sentence(ctx, args, result))
    return change_out(ctx, result, "cancelled", args.language)


def late_terms_sentence(ctx: ToolContext, args: CancelIn, asked: Rejected) -> str:
    """The core's question, in the caller's language (else the customer's own, to her: ToolContext.language_for)."""
    language = args.language or ctx.language
    if language is None:
        booking = ctx.service.get_booking(ctx.business_id, args.code)
        language = ctx.language_for(None, booking.customer) if not isinstance(booking, Rejected) else "en"
    facts = dict(asked.details)
    if language_of(language) == "en" or not facts:
        return asked.message
    return phrase("late_terms", language, hours=facts["hours"],
                  cost=cost_phrase(facts["cost"], facts["amount"], facts["kind"], language))


def confirm_appointment(ctx: ToolContext, args: ConfirmIn) -> ChangeOut | ToolProblem:
    result = ctx.service.confirm(ctx.business_id, BookingChange(code=args.code, source=ctx.channel, actor=ACTOR))
    return change_out(ctx, result, "confirmed", args.language)


def change_out(ctx: ToolContext, result: Changed | Rejected, verb: str,
               language: str | None = None) -> ChangeOut | ToolProblem:
    if isinstance(result, Rejected):
        return problem(result, language)
    lang = ctx.language_for(language, result.booking.customer)
    a = told(ctx, result.booking, lang)
    key = verb if verb == "cancelled" or not result.replayed else "already_confirmed"
    say = phrase(key, lang, service=a.service_name, when=a.spoken)
    cost = fee_phrase(result.booking.fees[-1], lang) if result.booking.fees else None
    if cost and verb == "cancelled":
        say += phrase("late_after", lang, cost=cost)
    return ChangeOut(outcome=verb, appointment=a, already=result.replayed, say=say, fee=cost)  # type: ignore[arg-type]


def spoken_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%A} {day.day} {day:%B}"


def join_waitlist(ctx: ToolContext, args: JoinWaitlistIn) -> WaitlistOut | ToolProblem:
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return problem(resources)
    phone = args.phone or (None if args.email else ctx.caller_phone)
    result = ctx.service.join_waitlist(ctx.business_id, WaitlistJoin(
        service=args.service, customer=CustomerIn(name=args.customer_name, phone=phone, email=args.email),
        earliest_date=args.earliest_date, latest_date=args.latest_date, day_start=args.earliest_time or time(0),
        day_end=args.latest_time, resources=resources, party_size=args.party_size or 1, source=ctx.channel,
        actor=ACTOR,
    ))
    if isinstance(result, Rejected):
        return problem(result)
    first, last = (spoken_date(d) for d in (result.earliest_date, result.latest_date))
    window = f"between {first} and {last}" if first != last else f"on {first}"
    party = f" for {result.party_size} people" if result.party_size > 1 else ""
    room = " with room for all of you" if result.party_size > 1 else ""
    return WaitlistOut(
        outcome="waitlisted", waitlist_id=result.id, service=result.service, earliest_date=result.earliest_date,
        latest_date=result.latest_date, earliest_time=result.day_start, latest_time=result.day_end,
        party_size=result.party_size,
        say=f"You're on the waitlist for {result.service_name}{party} {window}. "
            f"We'll message you as soon as a time{room} opens up.",
    )
