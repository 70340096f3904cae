"""Build the public views of bookings, holds and slots from stored rows."""
from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from nextslot.core.booking.availability import Slot
from nextslot.core.booking.codes import spoken_code
from nextslot.core.instants import load_zone
from nextslot.core.money import money
from nextslot.core.planning import BusinessInfo, Plan, ResourceInfo, place_zones
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.times import TimeView
from nextslot.schemas.views import (
    BookingView,
    CustomerView,
    FeeView,
    HoldView,
    LocationRef,
    PaymentView,
    ResourceRef,
    SlotView,
)
from nextslot.storage.booking_writes import NewBooking
from nextslot.storage.customers import StoredCustomer
from nextslot.storage.tables import Booking, BookingFee, Claim, Customer, Hold, Payment, Resource
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def resource_ref(r: ResourceInfo | Resource) -> ResourceRef:
    return ResourceRef(id=r.id, key=r.key, name=r.name, kind=r.kind)


def slot_view(slot: Slot, plan: Plan, customer_zone: str | None = None) -> SlotView:
    resources = plan.resources
    zone = plan.business.zone
    # a plan at one place says its zone (`rules.zone`); only one over branches in several zones asks the slot's
    place = place_zone((resources[rid] for rid in slot.resource_ids), zone) if plan.rules.also_on_grid \
        else plan.rules.zone
    return SlotView(
        starts_at=TimeView.of(slot.starts_at, zone, load_zone(customer_zone), place),
        ends_at=slot.ends_at,
        resources=[resource_ref(resources[rid]) for rid in slot.resource_ids],
        seats_left=slot.seats_left,
        location=location_of(resources[rid] for rid in slot.resource_ids),
    )


def place_zone(resources: Iterable[ResourceInfo | Resource], business_zone: ZoneInfo) -> ZoneInfo:
    """The zone a booking of these resources happens in: the one zone of those at a branch or in a zone of their own
    (a branch's), else the business's. A shared resource (no branch, no zone) goes with any branch: it says nothing."""
    infos = [r if isinstance(r, ResourceInfo) else ResourceInfo.of(r, business_zone) for r in resources]
    zones = place_zones([infos], business_zone)
    return zones[0] if len(zones) == 1 else business_zone


def plan_zone(plan: Plan) -> ZoneInfo:
    """The zone of the place a plan books at: its branch's when all its resources keep one, else the business's."""
    return plan.rules.zone


def booking_zone(uow: SqlAlchemyUnitOfWork, booking_id: int, business_zone: ZoneInfo) -> ZoneInfo:
    """The zone a stored booking happens in (its branch's), for the messages and pages that say its time."""
    return place_zone(booked_resources(uow, booking_id), business_zone)


def resources_zone(uow: SqlAlchemyUnitOfWork, resource_ids: Iterable[int], business_zone: ZoneInfo) -> ZoneInfo:
    """The zone a time on these resources happens in (a waitlist offer's), as `place_zone`."""
    return place_zone(uow.session.scalars(select(Resource).where(Resource.id.in_(list(resource_ids)))), business_zone)


def location_of(resources: Iterable[ResourceInfo | Resource]) -> LocationRef | None:
    """The branch of a booking's resources (shared ones have none)."""
    for r in resources:
        if r.location is not None:
            return LocationRef(key=r.location.key, name=r.location.name, address=r.location.address)
    return None


def customer_view(c: Customer | StoredCustomer) -> CustomerView:
    return CustomerView(id=c.id, name=c.name, phone=c.phone, email=c.email, timezone=c.timezone,
                        no_show_count=c.no_show_count, language=c.language or "en")


def booked_resources(uow: SqlAlchemyUnitOfWork, booking_id: int) -> list[Resource]:
    """The resources of the booking's latest claims (still listed after a cancel)."""
    latest = select(func.max(Claim.id)).where(Claim.booking_id == booking_id).scalar_subquery()
    latest_time = select(Claim.created_at).where(Claim.id == latest).scalar_subquery()
    return list(uow.session.scalars(
        select(Resource).join(Claim, Claim.resource_id == Resource.id)
        .where(Claim.booking_id == booking_id, Claim.created_at == latest_time).order_by(Resource.id)
    ))


def branch_of(uow: SqlAlchemyUnitOfWork, booking_id: int) -> str | None:
    """The key of the branch a booking's resources are at (None: a business without branches)."""
    found = location_of(booked_resources(uow, booking_id))
    return found.key if found else None


def booking_view(uow: SqlAlchemyUnitOfWork, booking: Booking, business: BusinessInfo) -> BookingView:
    """The view of a stored booking (its resources looked up from its latest claims)."""
    booked = booked_resources(uow, booking.id)
    resources = [resource_ref(r) for r in booked]
    payment = uow.session.scalars(select(Payment).where(Payment.booking_id == booking.id)).one_or_none()
    fees = uow.session.scalars(select(BookingFee).where(BookingFee.booking_id == booking.id).order_by(BookingFee.id))
    view = assemble_booking_view(booking, booking.service.key, booking.service.name, booking.customer, resources,
                                 business, payment, place_zone(booked, business.zone))
    view.fees = [FeeView(kind=f.kind, amount=money(f.amount_minor, f.currency), status=f.status) for f in fees]
    view.location = location_of(booked)
    return view


def new_booking_view(booking: Booking | NewBooking, plan: Plan, customer: Customer | StoredCustomer, resource_ids: tuple[int, ...],
                     payment: Payment | None = None) -> BookingView:
    """The view of a booking just made, from what the transaction already knows: no extra queries."""
    known = plan.resources
    resources = [resource_ref(known[rid]) for rid in resource_ids]
    view = assemble_booking_view(booking, plan.service_key, plan.service_name, customer, resources, plan.business,
                                 payment, place_zone((known[rid] for rid in resource_ids), plan.business.zone))
    view.location = location_of(known[rid] for rid in resource_ids)
    return view


def payment_view(p: Payment) -> PaymentView:
    return PaymentView(status=p.status, reason=p.reason, amount=money(p.amount_minor, p.currency), provider=p.provider,
                       expires_at=p.expires_at, paid_at=p.paid_at)


def assemble_booking_view(booking: Booking | NewBooking, service_key: str, service_name: str,
                          customer: Customer | StoredCustomer,
                          resources: list[ResourceRef], business: BusinessInfo,
                          payment: Payment | None = None, zone: ZoneInfo | None = None) -> BookingView:
    return BookingView(
        id=booking.id,
        code=booking.code,
        code_spoken=spoken_code(booking.code),
        status=BookingStatus(booking.status),
        service=service_key,
        service_name=service_name,
        starts_at=TimeView.of(booking.starts_at, business.zone, load_zone(customer.timezone), zone),
        ends_at=booking.ends_at,
        customer=customer_view(customer),
        resources=resources,
        source=booking.source,
        intake=booking.intake,
        party_size=booking.party_size or 1,
        series_id=booking.series_id,
        payment=payment_view(payment) if payment is not None else None,
        contact_name=booking.contact_name,
    )


def hold_view(hold: Hold, plan: Plan, resource_ids: tuple[int, ...]) -> HoldView:
    resources = plan.resources
    return HoldView(
        id=hold.id,
        service=plan.service_key,
        starts_at=TimeView.of(hold.starts_at, plan.business.zone,
                              place_zone=place_zone((resources[rid] for rid in resource_ids), plan.business.zone)),
        ends_at=hold.ends_at,
        expires_at=hold.expires_at,
        resources=[resource_ref(resources[rid]) for rid in resource_ids],
    )
