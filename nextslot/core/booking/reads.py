"""Reading the calendar: open slots in a window, one booking by its code, a customer's bookings."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nextslot.core.booking import lookups
from nextslot.core.booking.availability import Slot, find_open_slots
from nextslot.core.booking.codes import normalize_code
from nextslot.core.booking.refusals import unknown_booking
from nextslot.core.instants import load_zone, resolve_instant, unknown_zone
from nextslot.core.planning import Plan, business_info, load_business, load_plan, timelines
from nextslot.core.results import Opening, Rejected, Slots
from nextslot.core.views import booking_view, plan_zone, slot_view
from nextslot.schemas.commands import BookingSearch, SlotQuery
from nextslot.schemas.views import BookingView
from nextslot.storage.uow import SqlAlchemyUnitOfWork

MAX_WINDOW = timedelta(days=31)
FIRST_PIECE = timedelta(days=7)  # a week or less (a day, a page of days) is read at once


def find_slots(uow: SqlAlchemyUnitOfWork, business_id: int, query: SlotQuery, now: datetime) -> Slots | Rejected:
    """Open start times for a service in a window, with the resources each would take."""
    found = open_slots(uow, business_id, query, now)
    if isinstance(found, Rejected):
        return found
    return Slots([slot_view(s, one, query.customer_timezone) for s, one in found])


def find_openings(uow: SqlAlchemyUnitOfWork, business_id: int, query: SlotQuery,
                  now: datetime) -> list[Opening] | Rejected:
    """The same open start times as bare instants: a page's grid shows no more, and each slot's full view (its
    time in three zones and in words, its resources) cost more than the search itself (a page shows ~100)."""
    found = open_slots(uow, business_id, query, now)
    if isinstance(found, Rejected):
        return found
    return [Opening(s.starts_at, s.seats_left) for s, _ in found]


def open_slots(uow: SqlAlchemyUnitOfWork, business_id: int, query: SlotQuery,
               now: datetime) -> list[tuple[Slot, Plan]] | Rejected:
    """The search itself: each open slot with the plan (the branch's) it was found in, at most `query.limit`."""
    if query.customer_timezone and load_zone(query.customer_timezone) is None:
        return unknown_zone(query.customer_timezone, "customer_timezone")
    with uow:
        plan = load_plan(uow, business_id, query.service, query.resources, query.location)
        if isinstance(plan, Rejected):
            return plan
        if problem := plan.party_problem(query.party_size):
            return problem
        window = slot_window(query, plan, now)
        if isinstance(window, Rejected):
            return window
        plans, windows = [plan], [window]
        if query.location is None and len(plan.locations) > 1:  # every branch's openings, not one per start
            plans = [p for place in plan.locations
                     if isinstance(p := load_plan(uow, business_id, query.service, query.resources, place),
                                   Plan)]
            branch_windows = [slot_window(query, p, now) for p in plans]  # a date is each branch's own day
            if refused := next((w for w in branch_windows if isinstance(w, Rejected)), None):
                return refused
            windows = [w for w in branch_windows if not isinstance(w, Rejected)]
        found: list[tuple[Slot, Plan]] = []
        seen: set[tuple[datetime, tuple[int, ...]]] = set()  # a shared resource is in every branch's plan: once
        for piece in pieces(min(w[0] for w in windows), max(w[1] for w in windows)):
            for one, (lo, hi) in zip(plans, windows, strict=True):
                if (part := (max(piece[0], lo), min(piece[1], hi)))[0] < part[1]:
                    groups = timelines(uow, one, part, now, party=query.party_size)
                    for s in find_open_slots(one.rules, groups, part, now, query.limit):
                        if (s.starts_at, s.resource_ids) not in seen:
                            seen.add((s.starts_at, s.resource_ids))
                            found.append((s, one))
            if len(found) >= query.limit:
                break
        found.sort(key=lambda pair: pair[0].starts_at)  # stable: branches in listed order at one start
        return found[:query.limit]


def pieces(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window in pieces of 7, 14, 28 days, searched in turn until enough openings are found: "the next
    openings" in a month usually lie in its first week, and a piece costs what its days cost (their claims
    read, their grid checked). The pieces' openings together are the window's, in the same order."""
    size = FIRST_PIECE
    while start < end:
        yield start, min(start + size, end)
        start, size = start + size, size * 2


def slot_window(query: SlotQuery, plan: Plan, now: datetime) -> tuple[datetime, datetime] | Rejected:
    """The search window in UTC; window times without an offset or zone are read in the plan's place: a branch's
    zone (its customers' dates and times of day), else the business's."""
    zone = query.timezone or plan_zone(plan).key
    start = resolve_instant(query.starts_from, zone, "starts_from") if query.starts_from else now
    if isinstance(start, Rejected):
        return start
    end = resolve_instant(query.until, zone, "until") if query.until else start + timedelta(days=7)
    if isinstance(end, Rejected):
        return end
    if end <= start:
        return Rejected("window_reversed", "The window ends before it starts.", "until")
    if too_long(start, end, load_zone(zone)):
        return Rejected("window_too_large", f"Ask for at most {MAX_WINDOW.days} days at a time.", "until")
    return start, end


def too_long(start: datetime, end: datetime, zone: ZoneInfo | None) -> bool:
    """Longer than MAX_WINDOW in real time and on the zone's clocks: 31 local days across a night the clocks go
    back are 31 days and an hour, and still the 31 days a caller may ask for."""
    walls = end.astimezone(zone).replace(tzinfo=None) - start.astimezone(zone).replace(tzinfo=None) if zone else None
    return end - start > MAX_WINDOW and (walls is None or walls > MAX_WINDOW)


def get_booking(uow: SqlAlchemyUnitOfWork, business_id: int, code: str) -> BookingView | Rejected:
    with uow:
        booking = uow.bookings.by_code(business_id, normalize_code(code))
        if booking is None:
            return unknown_booking(code)
        business = business_info(uow, business_id)
        return booking_view(uow, booking, business)


def find_bookings(
    uow: SqlAlchemyUnitOfWork, business_id: int, search: BookingSearch, now: datetime,
) -> tuple[list[BookingView], list[str]] | Rejected:
    """A customer's bookings (soonest first), plus codes close to a code that matched none of theirs."""
    with uow:
        business = load_business(uow, business_id)
        if isinstance(business, Rejected):
            return business
        found = lookups.find_bookings(uow, business_id, business.country, search, now)
        if isinstance(found, Rejected):
            return found
        bookings, near = found
        return [booking_view(uow, b, business) for b in bookings], near
