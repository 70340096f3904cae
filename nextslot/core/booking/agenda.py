"""A staff calendar of one or more local days: per resource, when it works and what takes its time.

Built from the same rows availability reads (weekly hours, exceptions, live claims, external busy
time), so what the calendar shows as taken is what booking sees as taken.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import Range

from nextslot.core.booking.availability import WeeklyHours, open_intervals
from nextslot.core.booking.intervals import Interval
from nextslot.core.instants import day_instants, load_zone
from nextslot.core.results import Rejected
from nextslot.schemas.api import CalendarBooking, CalendarHold, CalendarView, ResourceDay, Span, TimeOff
from nextslot.storage import queries
from nextslot.storage.tables import (
    AvailabilityException,
    Booking,
    Claim,
    ExternalBusy,
    Hold,
    Location,
    Resource,
    Service,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def agenda(uow: SqlAlchemyUnitOfWork, business_id: int, day: date, days: int, now: datetime,
           resource_key: str | None = None, location_key: str | None = None) -> CalendarView | Rejected:
    """The active resources' days (or one resource's, active or not; or one branch's with the shared ones), in the
    zone they work in (`Scope.zone`)."""
    business = queries.known_business(uow.session, business_id)
    scope = calendar_scope(uow, business_id, resource_key, location_key)
    if isinstance(scope, Rejected):
        return scope
    resources, zone, place = scope.resources, scope.zone, scope.place
    window = day_instants(day, zone, days)
    ids = [r.id for r in resources]
    hours = queries.hours_for(uow.session, ids)
    exceptions = exceptions_over(uow, business_id, ids, window)
    bookings, holds = claims_over(uow, ids, window, now, zone)
    busy = external_busy_over(uow, ids, window, zone)
    days_of = []
    for r in resources:
        own = r.own_timezone if r.own_timezone != business.timezone else None
        mine = [e for e in exceptions if e.applies_to(r.id, own)]
        opened = open_intervals([WeeklyHours(h.weekday, h.start_minute, h.end_minute) for h in hours.get(r.id, ())],
                                ZoneInfo(own or business.timezone), window,
                                extra_open=[(e.starts_at, e.ends_at) for e in mine if e.kind == "open"],
                                closed=[(e.starts_at, e.ends_at) for e in mine if e.kind == "closed"])
        days_of.append(ResourceDay(
            key=r.key, name=r.name, kind=r.kind, capacity=r.capacity, active=r.active,
            working=[span(s, e, zone) for s, e in clipped(opened, window)],
            time_off=[TimeOff(**dict(span(e.starts_at, e.ends_at, zone)), reason=e.reason,
                              business_wide=e.resource_id is None) for e in mine if e.kind == "closed"],
            bookings=bookings[r.id], holds=holds[r.id], external_busy=busy[r.id],
        ))
    return CalendarView(date=day, days=days, timezone=zone.key, location=place.key if place else None,
                        resources=days_of)


@dataclass(frozen=True)
class Scope:
    resources: list[Resource]
    place: Location | None
    zone: ZoneInfo


def calendar_scope(uow: SqlAlchemyUnitOfWork, business_id: int, resource_key: str | None = None,
                   location_key: str | None = None) -> Scope | Rejected:
    """Whose days a calendar shows and in which zone: a branch's (its resources and the shared ones) in its zone,
    one resource in its own (a stylist at a branch in another zone works its days there), else everyone in the
    business's. Staff read their day as they live it."""
    business = queries.known_business(uow.session, business_id)
    zone = ZoneInfo(business.timezone)
    place = None
    if location_key:
        place = uow.session.scalars(select(Location).where(
            Location.business_id == business_id, Location.key == location_key, Location.active)).one_or_none()
        if place is None:
            return Rejected("unknown_location", f"No branch called {location_key} here.", "location")
    query = select(Resource).where(Resource.business_id == business_id).order_by(Resource.id)
    query = query.where(Resource.key == resource_key) if resource_key else query.where(Resource.active)
    if place is not None:
        query = query.where(or_(Resource.location_id == place.id, Resource.location_id.is_(None)))
    resources = list(uow.session.scalars(query))
    if resource_key and not resources:
        where = f" at {place.name}" if place is not None else ""
        return Rejected("unknown_resource", f"No resource called {resource_key}{where} here.", "resource")
    if place is not None:
        zone = load_zone(place.timezone) or zone
    elif resource_key:
        zone = load_zone(resources[0].own_timezone) or zone
    return Scope(resources, place, zone)


def calendar_zone(uow: SqlAlchemyUnitOfWork, business_id: int, resource_key: str | None = None,
                  location_key: str | None = None) -> ZoneInfo | Rejected:
    """The zone `agenda` reads these days in (the console's "today" is that zone's)."""
    scope = calendar_scope(uow, business_id, resource_key, location_key)
    return scope if isinstance(scope, Rejected) else scope.zone


def span(start: datetime, end: datetime, zone: ZoneInfo) -> Span:
    return Span(starts_at=start.astimezone(zone), ends_at=end.astimezone(zone))


def clipped(intervals: list[Interval], window: Interval) -> list[Interval]:
    return [(max(s, window[0]), min(e, window[1])) for s, e in intervals if s < window[1] and e > window[0]]


def exceptions_over(uow: SqlAlchemyUnitOfWork, business_id: int, ids: list[int],
                    window: Interval) -> list[queries.DatedException]:
    return [queries.DatedException(e.resource_id, e.kind, e.starts_at, e.ends_at, e.local, e.zone, e.reason or "")
            for e in uow.session.scalars(select(AvailabilityException).where(
        AvailabilityException.business_id == business_id,
        or_(AvailabilityException.resource_id.in_(ids), AvailabilityException.resource_id.is_(None)),
        AvailabilityException.starts_at < window[1], AvailabilityException.ends_at > window[0],
    ).order_by(AvailabilityException.starts_at))]


def claims_over(uow: SqlAlchemyUnitOfWork, ids: list[int], window: Interval, now: datetime, zone: ZoneInfo
                ) -> tuple[dict[int, list[CalendarBooking]], dict[int, list[CalendarHold]]]:
    """Bookings and live holds taking each resource's time: the claims availability counts as busy."""
    live = (Claim.resource_id.in_(ids), Claim.active, Claim.during.overlaps(Range(*window)),
            or_(Claim.expires_at.is_(None), Claim.expires_at > now))
    start, end = func.lower(Claim.during), func.upper(Claim.during)
    bookings: dict[int, list[CalendarBooking]] = defaultdict(list)
    for rid, lower, upper, b in uow.session.execute(
            select(Claim.resource_id, start, end, Booking).join(Booking, Booking.id == Claim.booking_id)
            .where(*live).order_by(start)):
        bookings[rid].append(CalendarBooking(
            **dict(span(b.starts_at, b.ends_at, zone)), code=b.code, status=b.status, service=b.service.key,
            service_name=b.service.name, customer_name=b.customer.name, occupied=span(lower, upper, zone)))
    holds: dict[int, list[CalendarHold]] = defaultdict(list)
    for rid, lower, upper, h, service_key in uow.session.execute(
            select(Claim.resource_id, start, end, Hold, Service.key).join(Hold, Hold.id == Claim.hold_id)
            .join(Service, Service.id == Hold.service_id)
            .where(*live, Claim.booking_id.is_(None), Hold.status == "active").order_by(start)):
        holds[rid].append(CalendarHold(**dict(span(h.starts_at, h.ends_at, zone)), id=h.id, service=service_key,
                                       expires_at=h.expires_at.astimezone(zone), occupied=span(lower, upper, zone)))
    return bookings, holds


def external_busy_over(uow: SqlAlchemyUnitOfWork, ids: list[int], window: Interval,
                       zone: ZoneInfo) -> dict[int, list[Span]]:
    busy: dict[int, list[Span]] = defaultdict(list)
    start, end = func.lower(ExternalBusy.during), func.upper(ExternalBusy.during)
    for rid, lower, upper in uow.session.execute(
            select(ExternalBusy.resource_id, start, end)
            .where(ExternalBusy.resource_id.in_(ids), ExternalBusy.during.overlaps(Range(*window))).order_by(start)):
        busy[rid].append(span(lower, upper, zone))
    return busy
