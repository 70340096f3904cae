"""Recurring series: "every Tuesday at 10 for 6 weeks" in one request, and changes from one occurrence onwards.

Each occurrence is a normal booking (claims, history, reminders, events) carrying the series' id. All of a
series is made in one transaction: `all_or_none` keeps every occurrence or none; `skip_taken` and
`nearest_free` place each occurrence in a savepoint of its own, so a taken one is undone alone (and, for
`nearest_free`, the nearest free time within a day of it is tried instead). The claims decide races exactly
as for a single booking.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from nextslot.core import events, outbox
from nextslot.core.booking import idempotency
from nextslot.core.booking.alternatives import alternatives
from nextslot.core.booking.availability import Slot, SlotProblem, check_slot, on_their_grids
from nextslot.core.booking.changes import apply_cancel
from nextslot.core.booking.claiming import claim_start
from nextslot.core.booking.codes import new_code, normalize_code
from nextslot.core.booking.cutoffs import move_refusal
from nextslot.core.booking.grid import grid_starts
from nextslot.core.booking.history import record, snapshot
from nextslot.core.booking.intake import check_answers
from nextslot.core.booking.public_caps import PublicCaps, contact_refusal, series_limit
from nextslot.core.booking.refusals import not_active, slot_problem, unknown_booking
from nextslot.core.customers.contacts import find_or_create
from nextslot.core.deposits import rules as deposits
from nextslot.core.instants import resolve_instant, wall_exists, wall_to_utc
from nextslot.core.planning import BusinessInfo, Plan, load_business, load_plan, timelines
from nextslot.core.results import Rejected, SeriesBooked, SeriesChanged, SlotTaken
from nextslot.core.views import booking_view, branch_of, location_of, new_booking_view, plan_zone
from nextslot.schemas.commands import BookingChange, BookingReschedule, SeriesCreate, SeriesRule
from nextslot.schemas.statuses import ACTIVE, BookingStatus
from nextslot.schemas.times import TimeView
from nextslot.schemas.views import BookingView, OccurrenceView, SeriesView
from nextslot.storage.customers import StoredCustomer
from nextslot.storage.tables import Booking, BookingSeries
from nextslot.storage.uow import SqlAlchemyUnitOfWork

NEAREST_WITHIN = timedelta(days=1)  # nearest_free takes another time only this close to the asked one


def occurrence_starts(first: datetime, rule: SeriesRule, plan: Plan) -> list[tuple[datetime, Rejected | None]]:
    """The first start's local wall time on every day the rule names (a DST change keeps the wall time; see
    `grid_start` for one the clocks skip), each with why it cannot be placed, if so. The wall time is the branch's:
    "every Tuesday at 9" at a branch in another zone keeps its own 9 when the business's clocks change."""
    zone = plan_zone(plan)
    local = first.astimezone(zone)
    minute = local.hour * 60 + local.minute
    step = timedelta(days=rule.interval * (7 if rule.every == "week" else 1))
    return [(first, None)] + [grid_start(local.date() + step * i, minute, plan) for i in range(1, rule.count)]


def grid_start(day: date, minute: int, plan: Plan) -> tuple[datetime, Rejected | None]:
    """`minute` past local midnight on `day`, as a start the slot search would offer.

    A wall time the clocks skip becomes the day's first grid start after the jump (`grid_starts`, as the search
    lays it): the jump itself (02:30 at Lord Howe, 01:00 after a skipped midnight) is seldom on the grid, so
    it would be refused as off the step. A day with no start left after the jump is refused, at the jump.
    """
    zone = plan_zone(plan)
    start = wall_to_utc(day, minute, zone)
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    if wall_exists(wall, zone):
        return start, None
    later = grid_starts(plan.rules.step_minutes, plan.rules.zone, start, wall_to_utc(day, 1440, zone))
    if later:
        return later[0], None
    return start, Rejected("nonexistent_local_time", f"{wall:%Y-%m-%d %H:%M} does not exist in {zone.key}: the "
                                                     "clocks skip it, and no start time follows it that day.",
                           "starts_at")


def book_series(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: SeriesCreate, now: datetime,
                caps: PublicCaps | None = None) -> SeriesBooked | Rejected:
    """Book every occurrence of a series in one transaction, as `cmd.mode` says (from a public channel, as long a
    series and for as few of a contact's bookings as `caps` allow)."""
    first = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
    if isinstance(first, Rejected):
        return first
    with uow:
        s = uow.session
        plan = load_plan(uow, business_id, cmd.service, cmd.resources, cmd.location)
        if isinstance(plan, Rejected):
            return plan
        plan = first_starts_branch(uow, business_id, plan, cmd, first, now)
        if cmd.idempotency_key and (first_result := idempotency.reserve(uow, business_id, cmd.idempotency_key,
                                                                        "series", cmd)):
            if isinstance(first_result, Rejected):
                return first_result
            return SeriesBooked(SeriesView.model_validate(first_result["view"]), replayed=True)
        most = series_limit(caps, cmd.source, plan.series_max)
        if problem := plan.party_problem(cmd.party_size) or series_problem(plan, cmd.repeat, most):
            return problem
        answers = check_answers(list(plan.intake_questions), cmd.intake)
        if isinstance(answers, Rejected):
            return answers
        customer = find_or_create(uow, business_id, plan.business.country, cmd.customer, cmd.source)
        if isinstance(customer, Rejected):
            return customer
        if refused := contact_refusal(uow, caps, business_id, customer.id, cmd.source, now):
            return refused
        if deposits.asked(uow, plan, customer, now):
            return Rejected("series_needs_deposit", f"{plan.service_name} needs a deposit for each booking; book "
                                                    "the occurrences one at a time.", "service")
        uow.claims.lock_resources(plan.resources)  # its occurrences claim one after another: all locks first
        series = BookingSeries(business_id=business_id, service_id=plan.service_id, customer_id=customer.id,
                               rule={**cmd.repeat.model_dump(), "mode": cmd.mode}, source=cmd.source)
        s.add(series)
        s.flush()
        outcomes = [place_occurrence(uow, plan, cmd, customer, answers, series.id, start, now, unplaced)
                    for start, unplaced in occurrence_starts(first, cmd.repeat, plan)]
        booked = [o for o in outcomes if o.booking is not None]
        if cmd.mode == "all_or_none" and len(booked) < len(outcomes):
            uow.rollback()  # one occurrence could not be booked: none is
            outcomes = [o if o.booking is None else OccurrenceView(requested=o.requested, outcome="not_booked")
                        for o in outcomes]
            return SeriesBooked(SeriesView(series_id=None, mode=cmd.mode, complete=False, occurrences=outcomes))
        if not booked:
            uow.rollback()
            return SeriesBooked(SeriesView(series_id=None, mode=cmd.mode, complete=False, occurrences=outcomes))
        first_view = booked[0].booking
        assert first_view is not None
        first_booked = s.get(Booking, first_view.id)
        assert first_booked is not None
        outbox.announce(uow, first_booked, "confirmation", now, series=len(booked))  # one message for the series
        view = SeriesView(series_id=series.id, mode=cmd.mode, complete=len(booked) == len(outcomes),
                          occurrences=outcomes)
        if cmd.idempotency_key:
            uow.idempotency.remember(business_id, cmd.idempotency_key, first_booked.id,
                                     {"kind": "series", "view": view.model_dump(mode="json")})
        uow.commit()
    return SeriesBooked(view)


def first_starts_branch(uow: SqlAlchemyUnitOfWork, business_id: int, plan: Plan, cmd: SeriesCreate,
                        first: datetime, now: datetime) -> Plan:
    """A plan over branches in several zones narrowed to the branch its first start is booked at (else the first
    open there), whose wall time every occurrence keeps: "every Tuesday at 10" in Pune stays Pune's 10 when New
    York's clocks change, not New York's 23:30 become Pune's 9."""
    if not plan.rules.also_on_grid:
        return plan
    groups = on_their_grids(timelines(uow, plan, (first, first), now, party=cmd.party_size), first,
                            plan.rules.step_minutes)
    checked = check_slot(plan.rules, groups, first, now)
    members = checked.resource_ids if isinstance(checked, Slot) else \
        [r.id for group in groups for r in group if r.is_open(*plan.rules.occupied(first))]
    place = location_of(plan.resources[rid] for rid in members)
    narrowed = load_plan(uow, business_id, cmd.service, cmd.resources, place.key) if place else plan
    return narrowed if isinstance(narrowed, Plan) else plan


def series_problem(plan: Plan, rule: SeriesRule, most: int | None = None) -> Rejected | None:
    """The service's own limit on series: none at all, or at most so many occurrences (`most`: this channel's,
    when lower)."""
    most = plan.series_max if most is None else most
    if plan.series_max == 0:
        return Rejected("series_not_allowed", f"{plan.service_name} cannot be booked as a recurring series; book "
                                              "each appointment on its own.", "repeat")
    if rule.count > most:
        here = " booked this way" if most < plan.series_max else ""
        return Rejected("series_too_long", f"A series of {plan.service_name} has at most {most} appointments{here}; "
                                           f"{rule.count} asked.", "repeat.count", details=(("max", str(most)),))
    return None


def place_occurrence(uow: SqlAlchemyUnitOfWork, plan: Plan, cmd: SeriesCreate, customer: StoredCustomer,
                     answers: dict[str, Any], series_id: int, start: datetime, now: datetime,
                     unplaced: Rejected | None = None) -> OccurrenceView:
    """Book one occurrence in a savepoint of its own; on a taken time, the nearest free one if asked. An
    `unplaced` one (no start that day) is reported refused like any other start the rules refuse."""
    requested = TimeView.of(start, plan.business.zone, place_zone=plan_zone(plan))
    made = unplaced if unplaced is not None else try_start(uow, plan, cmd, customer, answers, series_id, start, now)
    if isinstance(made, BookingView):
        return OccurrenceView(requested=requested, outcome="booked", booking=made)
    if made is not SlotProblem.TAKEN:
        refused = made if isinstance(made, Rejected) else slot_problem(made, plan, start)
        return OccurrenceView(requested=requested, outcome="refused", problem_code=refused.code,
                              problem=refused.message)
    nearby = alternatives(uow, plan, start, now, cmd.customer.timezone, None, cmd.party_size)
    if cmd.mode == "nearest_free":
        for slot in sorted(nearby, key=lambda a: (abs(a.starts_at.utc - start), a.starts_at.utc < start)):  # later wins a tie
            if abs(slot.starts_at.utc - start) > NEAREST_WITHIN:
                break
            moved = try_start(uow, plan, cmd, customer, answers, series_id, slot.starts_at.utc, now)
            if isinstance(moved, BookingView):
                return OccurrenceView(requested=requested, outcome="moved", booking=moved, alternatives=nearby)
    return OccurrenceView(requested=requested, outcome="taken", alternatives=nearby)


def try_start(uow: SqlAlchemyUnitOfWork, plan: Plan, cmd: SeriesCreate, customer: StoredCustomer,
              answers: dict[str, Any], series_id: int, start: datetime, now: datetime) -> BookingView | SlotProblem:
    s = uow.session
    party = cmd.party_size
    checked = check_slot(plan.rules, timelines(uow, plan, (start, start), now, party=party, decides=True),
                         start, now)
    if isinstance(checked, SlotProblem):
        return checked
    savepoint = s.begin_nested()
    booking = Booking(business_id=plan.business.id, code="", service_id=plan.service_id, customer_id=customer.id,
                      status=BookingStatus.BOOKED, starts_at=start, ends_at=start + plan.rules.duration,
                      source=cmd.source, intake=answers, notes=cmd.notes, updated_at=now, party_size=party,
                      series_id=series_id, contact_name=cmd.customer.name)
    uow.bookings.add_with_code(booking, new_code)
    resource_ids = claim_start(uow, plan, start, now, checked.resource_ids, booking_id=booking.id, party=party)
    if resource_ids is None:
        savepoint.rollback()  # this occurrence only
        return SlotProblem.TAKEN
    savepoint.commit()
    record(uow, booking, "created", cmd, now, after=snapshot(booking))
    outbox.schedule_reminders(uow, booking, now, plan.reminder_offsets)
    view = new_booking_view(booking, plan, customer, resource_ids)
    events.emit(uow, plan.business.id, "booking.created", view, now)
    return view


def later_occurrences(uow: SqlAlchemyUnitOfWork, business_id: int, code: str) -> list[Booking] | Rejected:
    """The occurrence with this code and every later live one of its series, locked, in time order."""
    booking = uow.bookings.by_code(business_id, normalize_code(code), for_update=True)
    if booking is None:
        return unknown_booking(code)
    if booking.series_id is None:
        return Rejected("not_a_series", f"Booking {booking.code} is not part of a recurring series.", "code")
    if booking.status not in ACTIVE:
        return not_active(booking)
    return list(uow.session.scalars(
        select(Booking).where(Booking.business_id == business_id, Booking.series_id == booking.series_id,
                              Booking.starts_at >= booking.starts_at, Booking.status.in_(list(ACTIVE)))
        .order_by(Booking.starts_at, Booking.id).with_for_update(of=Booking)))


def taken_in_series(uow: SqlAlchemyUnitOfWork, plan: Plan, start: datetime, now: datetime,
                    customer_zone: str | None, party: int) -> SlotTaken:
    uow.rollback()
    return SlotTaken(start, alternatives(uow, plan, start, now, customer_zone, None, party))


def replayed_change(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange | BookingReschedule,
                    operation: str) -> SeriesChanged | Rejected | None:
    if not cmd.idempotency_key:
        return None
    first = idempotency.reserve(uow, business_id, cmd.idempotency_key, operation, cmd)
    if first is None or isinstance(first, Rejected):
        return first
    return SeriesChanged([BookingView.model_validate(v) for v in first["views"]])


def remember_change(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange | BookingReschedule,
                    views: list[BookingView]) -> None:
    if cmd.idempotency_key:
        uow.idempotency.remember(business_id, cmd.idempotency_key, views[0].id,
                                 {"kind": "series_changed", "views": [v.model_dump(mode="json") for v in views]})


def cancel_series(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingChange,
                  now: datetime) -> SeriesChanged | Rejected:
    """Cancel the occurrence with `cmd.code` and every later one of its series, in one transaction. Each goes
    through the same cancel rules (cutoff and late terms apply to the ones that are late)."""
    with uow:
        if (replay := replayed_change(uow, business_id, cmd, "series_cancel")) is not None:
            return replay
        found = later_occurrences(uow, business_id, cmd.code)
        if isinstance(found, Rejected):
            return found
        business = load_business(uow, business_id)
        assert isinstance(business, BusinessInfo)
        views = []
        for booking in found:
            before = snapshot(booking)
            if (problem := apply_cancel(uow, booking, now, cmd, business)) is not None:
                uow.rollback()
                return problem
            booking.status, booking.updated_at = BookingStatus.CANCELLED, now
            uow.bookings.saved(booking)
            record(uow, booking, "cancelled", cmd, now, before=before, after=snapshot(booking))
            views.append(booking_view(uow, booking, business))
            events.emit(uow, business_id, "booking.cancelled", views[-1], now)
        remember_change(uow, business_id, cmd, views)
        uow.commit()
    return SeriesChanged(views)


def move_series(uow: SqlAlchemyUnitOfWork, business_id: int, cmd: BookingReschedule,
                now: datetime) -> SeriesChanged | SlotTaken | Rejected:
    """Move the occurrence with `cmd.code` to `cmd.starts_at`, and every later one of its series by the same
    change of local day and wall time, all or none: a taken one leaves the whole series as it was."""
    start = resolve_instant(cmd.starts_at, cmd.timezone, "starts_at")
    if isinstance(start, Rejected):
        return start
    with uow:
        if (replay := replayed_change(uow, business_id, cmd, "series_move")) is not None:
            return replay
        found = later_occurrences(uow, business_id, cmd.code)
        if isinstance(found, Rejected):
            return found
        plan = load_plan(uow, business_id, found[0].service.key, cmd.resources,
                         cmd.location or branch_of(uow, found[0].id))
        if isinstance(plan, Rejected):
            return plan
        if refused := move_refusal(found[0], plan.business, cmd.source, now):
            return refused
        zone = plan_zone(plan)  # the same change of the branch's own day and wall time
        old, new = found[0].starts_at.astimezone(zone), start.astimezone(zone)
        days, minute = new.date() - old.date(), new.hour * 60 + new.minute
        placed = [grid_start(b.starts_at.astimezone(zone).date() + days, minute, plan) for b in found[1:]]
        if unplaced := next((why for _, why in placed if why is not None), None):
            return unplaced
        targets = [start] + [target for target, _ in placed]
        befores = [snapshot(b) for b in found]
        uow.claims.lock_resources(plan.resources)  # as for booking a series: every lock its claims take, at once
        for booking in found:  # the series' own times never stand in its way
            uow.claims.release(booking_id=booking.id)
        customer_zone = found[0].customer.timezone
        for booking, target in zip(found, targets, strict=True):
            party = booking.party_size
            checked = check_slot(plan.rules, timelines(uow, plan, (target, target), now, booking.id, party,
                                                       decides=True), target, now)
            if checked is SlotProblem.TAKEN:
                return taken_in_series(uow, plan, target, now, customer_zone, party)
            if isinstance(checked, SlotProblem):
                uow.rollback()
                return slot_problem(checked, plan, target)
            if claim_start(uow, plan, target, now, checked.resource_ids, booking_id=booking.id, party=party) is None:
                return taken_in_series(uow, plan, target, now, customer_zone, party)
            booking.starts_at, booking.ends_at, booking.updated_at = target, target + plan.rules.duration, now
            uow.bookings.saved(booking)
        views = []
        for booking, before in zip(found, befores, strict=True):
            record(uow, booking, "rescheduled", cmd, now, before=before, after=snapshot(booking))
            outbox.void_pending(uow, booking.id)
            outbox.schedule_reminders(uow, booking, now, plan.reminder_offsets)
            views.append(booking_view(uow, booking, plan.business))
            events.emit(uow, business_id, "booking.rescheduled", views[-1], now,
                        previous_starts_at=datetime.fromisoformat(before["starts_at"]))
        outbox.announce(uow, found[0], "rescheduled", now, previous_starts_at=befores[0]["starts_at"],
                        series=len(found))  # one message for the series
        remember_change(uow, business_id, cmd, views)
        uow.commit()
    return SeriesChanged(views)
