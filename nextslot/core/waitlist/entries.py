"""Joining the waitlist: a customer's wish for a service within a window of dates and times of day.

Offers (when freed capacity matches) are made by the scheduler; this module only records the wish.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from nextslot.core.booking.public_caps import PublicCaps, contact_refusal
from nextslot.core.customers.contacts import find_or_create
from nextslot.core.instants import wall_to_utc
from nextslot.core.planning import Plan, load_plan
from nextslot.core.results import Rejected
from nextslot.core.views import customer_view, plan_zone, resource_ref
from nextslot.schemas.commands import WaitlistJoin
from nextslot.schemas.views import WaitlistView
from nextslot.storage.customers import StoredCustomer
from nextslot.storage.tables import Resource, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork

MAX_WAIT = timedelta(days=366)


def minutes_of(t: time) -> int:
    return t.hour * 60 + t.minute


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_window(cmd: WaitlistJoin, plan: Plan, today: date) -> Rejected | None:
    if cmd.latest_date < cmd.earliest_date:
        return Rejected("window_reversed", "latest_date comes before earliest_date.", "latest_date")
    if cmd.latest_date < today:
        return Rejected("window_in_past", "That window is already over.", "latest_date")
    if cmd.latest_date - today > MAX_WAIT or cmd.latest_date - today > plan.rules.horizon + timedelta(days=1):
        return Rejected("beyond_horizon", f"Bookings open {plan.rules.horizon.days} days ahead; pick an earlier"
                                          " latest_date.", "latest_date")
    start, end = minutes_of(cmd.day_start), 1440 if cmd.day_end is None else minutes_of(cmd.day_end)
    if end < start:  # "22:00-02:00": the wish's times of day are read within each day
        return Rejected("window_reversed", "The latest time comes before the earliest: times of day are within one "
                                           "day (22:00 to 24:00, then 00:00 to 02:00 as a second wish).", "day_end")
    zone, first = plan_zone(plan), max(cmd.earliest_date, today)
    days = (first + timedelta(days=i) for i in range((cmd.latest_date - first).days + 1))
    # too short on every day: a night the clocks go back has a longer stretch between the same wall times
    if all(wall_to_utc(day, end, zone) - wall_to_utc(day, start, zone) < plan.rules.duration for day in days):
        return Rejected("window_too_short", f"{plan.service_name} takes {int(plan.rules.duration.total_seconds() // 60)}"
                                            " minutes; widen the times of day.", "day_end")
    return None


def join(uow: SqlAlchemyUnitOfWork, business_id: int, plan: Plan, cmd: WaitlistJoin,
         now: datetime, caps: PublicCaps | None = None) -> WaitlistView | Rejected:
    """Add (or, for the same customer, service and window, return) a waiting entry; a new one from a public channel
    only while the contact has room (`caps`)."""
    # the dates wished are the branch's, as its offers read them: over branches in several zones, the date at the one
    # furthest behind (Los Angeles is still on Monday evening when London's Tuesday has begun)
    today = min(now.astimezone(zone).date() for zone in plan.rules.also_on_grid or (plan_zone(plan),))
    problem = plan.party_problem(cmd.party_size) or party_room_problem(plan, cmd.party_size) \
        or check_window(cmd, plan, today)
    if problem:
        return problem
    customer = find_or_create(uow, business_id, plan.business.country, cmd.customer, cmd.source)
    if isinstance(customer, Rejected):
        return customer
    preferred = sorted({r.id for group in plan.groups for r in group if r.key in cmd.resources})
    values = dict(
        business_id=business_id, service_id=plan.service_id, customer_id=customer.id,
        earliest_date=max(cmd.earliest_date, today), latest_date=cmd.latest_date,
        day_start_minute=minutes_of(cmd.day_start), day_end_minute=1440 if cmd.day_end is None else minutes_of(cmd.day_end),
    )
    entry = uow.session.scalars(
        select(WaitlistEntry).where(*(getattr(WaitlistEntry, k) == v for k, v in values.items()),
                                    WaitlistEntry.status.in_(("waiting", "offered")))
    ).first()
    if entry is None:
        if refused := contact_refusal(uow, caps, business_id, customer.id, cmd.source, now):
            return refused
        entry = WaitlistEntry(**values, preferred_resource_ids=preferred, status="waiting", source=cmd.source,
                              party_size=cmd.party_size, created_at=now)
        uow.session.add(entry)
        uow.session.flush()
    else:  # the same wish again: the party said last is the one to seat (an offer is booked for it, or refused)
        entry.party_size = cmd.party_size
    return waitlist_view(uow, entry, plan, customer)


def party_room_problem(plan: Plan, party: int) -> Rejected | None:
    """A party the service could never seat at once (more than its largest class holds, or than it has staff for one
    each) would wait for nothing: refused now, as `party_too_large`, not left waiting."""
    rooms = [max((r.capacity for r in group if r.capacity > 1), default=len(group))
             for i, group in enumerate(plan.groups) if i < len(plan.per_person) and plan.per_person[i]]
    if party == 1 or not rooms or party <= min(rooms):
        return None
    return Rejected("party_too_large", f"{plan.service_name} has room for at most {min(rooms)} people at once; "
                                       f"{party} asked.", "party_size")


def waitlist_view(uow: SqlAlchemyUnitOfWork, entry: WaitlistEntry, plan: Plan,
                  customer: StoredCustomer) -> WaitlistView:
    preferred = [resource_ref(r) for r in uow.session.scalars(
        select(Resource).where(Resource.id.in_(entry.preferred_resource_ids or [])).order_by(Resource.id))]
    return WaitlistView(
        id=entry.id, status=entry.status, service=plan.service_key, service_name=plan.service_name,
        earliest_date=entry.earliest_date.isoformat(), latest_date=entry.latest_date.isoformat(),
        day_start=clock_text(entry.day_start_minute), day_end=clock_text(entry.day_end_minute),
        preferred=preferred, customer=customer_view(customer), party_size=entry.party_size,
    )


def join_waitlist(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: WaitlistJoin, now: datetime,
                  caps: PublicCaps | None = None) -> WaitlistView | Rejected:
    """Put a customer on the waitlist for a service within a window (the same wish twice is one entry)."""
    with uow:
        plan = load_plan(uow, business_id, cmd.service, cmd.resources)
        if isinstance(plan, Rejected):
            return plan
        view = join(uow, business_id, plan, cmd, now, caps)
        if not isinstance(view, Rejected):
            uow.commit()
        return view
