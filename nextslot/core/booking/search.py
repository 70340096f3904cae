"""Staff search over a business's bookings: by days, status, resource, service, customer or code, soonest first."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import aliased

from nextslot.core.booking.codes import normalize_code
from nextslot.core.customers.contacts import normalize_email, normalize_phone
from nextslot.core.instants import day_start, load_zone
from nextslot.core.planning import BusinessInfo, load_business
from nextslot.core.results import Rejected
from nextslot.core.views import booking_view
from nextslot.schemas.api import BookingFilter, BookingPage
from nextslot.storage.tables import Booking, Claim, Customer, Location, Resource, Service
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def search_bookings(uow: SqlAlchemyUnitOfWork, business_id: int, wanted: BookingFilter) -> BookingPage | Rejected:
    """One page of the bookings matching every filter given."""
    business = load_business(uow, business_id)
    if isinstance(business, Rejected):
        return business
    query = matching(business, wanted, place_zone(uow, business, wanted.location))
    if isinstance(query, Rejected):
        return query
    total = uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = uow.session.scalars(query.order_by(Booking.starts_at, Booking.id).offset(wanted.offset).limit(wanted.limit))
    bookings = [booking_view(uow, b, business) for b in page.unique()]
    after = wanted.offset + len(bookings)
    return BookingPage(bookings=bookings, total=total, next_offset=after if after < total else None)


def place_zone(uow: SqlAlchemyUnitOfWork, business: BusinessInfo, location_key: str | None) -> ZoneInfo:
    """The zone the asked days are read in: the branch's, when one is named, else the business's (an unknown
    branch, like an unknown resource, matches no booking)."""
    if not location_key:
        return business.zone
    found = uow.session.scalar(select(Location.timezone).where(
        Location.business_id == business.id, Location.key == location_key, Location.active))
    return load_zone(found) or business.zone


def matching(business: BusinessInfo, wanted: BookingFilter, zone: ZoneInfo) -> Select[Any] | Rejected:
    query = select(Booking).where(Booking.business_id == business.id)
    if wanted.date_from and wanted.date_to and wanted.date_to < wanted.date_from:
        return Rejected("window_reversed", "date_to comes before date_from.", "date_to")
    if wanted.date_from:
        query = query.where(Booking.starts_at >= day_start(wanted.date_from, zone))
    if wanted.date_to:
        query = query.where(Booking.starts_at < day_start(wanted.date_to + timedelta(days=1), zone))
    if wanted.status:
        query = query.where(Booking.status.in_(wanted.status))
    if wanted.code:
        query = query.where(Booking.code == normalize_code(wanted.code))
    if wanted.service:
        query = query.where(Booking.service_id.in_(
            select(Service.id).where(Service.business_id == business.id, Service.key == wanted.service)))
    if wanted.resource:
        query = query.where(Booking.id.in_(last_claimed_on(business.id, Resource.key == wanted.resource)))
    if wanted.location:
        query = query.where(Booking.id.in_(last_claimed_on(business.id, Resource.location_id.in_(
            select(Location.id).where(Location.business_id == business.id, Location.key == wanted.location)))))
    if wanted.phone:
        phone = normalize_phone(wanted.phone, business.country)
        if isinstance(phone, Rejected):
            return Rejected(phone.code, phone.message, "phone")
        query = query.where(Booking.customer_id.in_(customers(business.id, Customer.phone == phone)))
    if wanted.email:
        email = normalize_email(wanted.email)
        if isinstance(email, Rejected):
            return Rejected(email.code, email.message, "email")
        query = query.where(Booking.customer_id.in_(
            customers(business.id, func.lower(Customer.email) == email.lower())))
    return query


def customers(business_id: int, condition: ColumnElement[bool]) -> Select[Any]:
    return select(Customer.id).where(Customer.business_id == business_id, condition)


def last_claimed_on(business_id: int, resource: ColumnElement[bool]) -> Select[Any]:
    """Bookings whose latest claims (still listed after a cancel) include such a resource, as `booked_resources`."""
    latest = aliased(Claim)
    newest = select(func.max(latest.created_at)).where(latest.booking_id == Claim.booking_id).scalar_subquery()
    return (select(Claim.booking_id).join(Resource, Resource.id == Claim.resource_id)
            .where(Resource.business_id == business_id, resource,
                   Claim.booking_id.is_not(None), Claim.created_at == newest))
