"""The tools that look a customer up: their appointments (by phone, email or code) and their history with us."""
from __future__ import annotations

from nextslot.core.results import Rejected
from nextslot.schemas.commands import BookingSearch
from nextslot.schemas.statuses import ACTIVE
from nextslot.schemas.tool_results import AppointmentsOut, CustomerHistoryOut, HistoryLine, ToolProblem
from nextslot.schemas.tools import CustomerHistoryIn, FindAppointmentsIn
from nextslot.tools.context import ToolContext
from nextslot.tools.handlers import told
from nextslot.tools.render import problem

DEFAULT_HISTORY = 20


def find_appointments(ctx: ToolContext, args: FindAppointmentsIn) -> AppointmentsOut | ToolProblem:
    phone = args.phone or (None if (args.email or args.code) else ctx.caller_phone)
    found = ctx.service.find_bookings(ctx.business_id, BookingSearch(
        phone=phone, email=args.email, code=args.code, include_past=bool(args.include_past)))
    if isinstance(found, Rejected):
        return problem(found)
    views, near = found
    shown = [told(ctx, v, None) for v in views]
    live = [a for a in shown if a.status in ACTIVE]
    if args.code and near:
        say = f"I couldn't find code {args.code}, but this caller has {', '.join(near)}: is that the one?"
    elif not shown:
        say = "I can't find any upcoming appointments for those details."
    else:
        listed = "; ".join(f"{a.service_name} on {a.spoken}, code {a.code_spoken}" for a in (live or shown)[:3])
        count = len(live or shown)
        say = f"I found {count} appointment{'s' if count != 1 else ''}: {listed}."
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
