"""The book_series tool: a recurring series in one request, and a sentence that says what was and was not booked."""
from __future__ import annotations

from nextslot.core.results import Rejected
from nextslot.schemas.commands import CustomerIn, SeriesCreate, SeriesRule
from nextslot.schemas.times import spoken_time
from nextslot.schemas.tool_results import OccurrenceLine, SeriesOut, ToolProblem
from nextslot.schemas.tools import BookSeriesIn
from nextslot.tools.context import ToolContext
from nextslot.tools.handlers import ACTOR, key_for, staff_keys, told
from nextslot.tools.render import problem, time_slot, zone_of


def book_series(ctx: ToolContext, args: BookSeriesIn) -> SeriesOut | ToolProblem:
    resources = staff_keys(ctx, args.staff)
    if isinstance(resources, Rejected):
        return problem(resources)
    phone = args.phone or (None if args.email else ctx.caller_phone)
    result = ctx.service.book_series(ctx.business_id, SeriesCreate(
        service=args.service, starts_at=args.first_starts_at, timezone=args.timezone, resources=resources,
        customer=CustomerIn(name=args.customer_name, phone=phone, email=args.email, timezone=args.caller_timezone),
        repeat=SeriesRule(every=args.every, interval=args.interval or 1, count=args.count), mode=args.mode,
        notes=args.notes or "", party_size=args.party_size or 1, location=args.location, source=ctx.channel,
        actor=ACTOR,
        idempotency_key=key_for(ctx, args.idempotency_key)))
    if isinstance(result, Rejected):
        return problem(result)
    view, zone = result.series, args.caller_timezone
    lines = [OccurrenceLine(
        requested=spoken_time(o.requested.utc, zone_of(o.requested, zone)), outcome=o.outcome,  # type: ignore[arg-type]
        appointment=told(ctx, o.booking, args.language, zone) if o.booking else None,
        alternatives=[time_slot(a, zone, args.language) for a in o.alternatives][:3], problem=o.problem)
        for o in view.occurrences]
    made = [line for line in lines if line.appointment]
    missed = [line.requested for line in lines if line.outcome in ("taken", "refused")]
    if view.series_id is None:
        which = join_and(missed) if len(missed) <= 3 else f"{len(missed)} of the dates"
        say = (f"I couldn't book the series: {which} {'is' if len(missed) == 1 else 'are'} not free, so nothing "
               "was booked. Shall I book the free dates only, or take the nearest free time instead?")
        outcome = "not_booked"
    else:
        first = made[0].appointment
        assert first is not None
        say = f"You're booked for {len(made)} {first.service_name} appointments, starting {first.spoken}."
        moved = [line for line in lines if line.outcome == "moved" and line.appointment]
        if moved:
            say += " " + "; ".join(f"{m.requested} was taken, so that one is {m.appointment.spoken}"
                                   for m in moved if m.appointment) + "."
        if missed:
            say += f" {join_and(missed)} {'was' if len(missed) == 1 else 'were'} not free and not booked."
        say += f" Your first code is {first.code_spoken}."
        outcome = "booked" if view.complete else "partly_booked"
    return SeriesOut(outcome=outcome, series_id=view.series_id, occurrences=lines, replayed=result.replayed,  # type: ignore[arg-type]
                     say=say)


def join_and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
