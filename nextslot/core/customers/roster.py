"""The staff's view of their customers and waitlist: who they are, how often they missed, who must pay first.

"Deposit required" is worked out exactly as a booking would (the no-show policy over its window), so what
the console shows is what the next booking on any channel will ask.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import String, cast, func, or_, select

from nextslot.core.customers.history import history_for
from nextslot.core.planning import BusinessInfo
from nextslot.core.views import customer_view
from nextslot.core.waitlist.entries import clock_text
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.views import CustomerHistory, CustomerView
from nextslot.storage import queries
from nextslot.storage.tables import Booking, Customer, Service, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork


@dataclass(frozen=True)
class CustomerRow:
    customer: CustomerView
    bookings: int
    no_shows: int  # ever
    recent_no_shows: int  # within the policy's window (all time without a policy)
    deposit_required: bool  # the next booking asks a deposit because of missed appointments
    last_visit: date | None


@dataclass(frozen=True)
class WaitingRow:
    id: int
    customer: CustomerView
    service_name: str
    window: str  # "02 Dec – 09 Dec, 09:00–12:00"
    status: str
    source: str
    joined_at: datetime
    party_size: int = 1  # people the wish seats at once


def customer_roster(uow: SqlAlchemyUnitOfWork, business_id: int, now: datetime, text: str = "",
                    customer_id: int | None = None, limit: int = 100) -> list[CustomerRow]:
    """Customers whose name, phone or email contains the text (all when empty), the most missed first."""
    business = BusinessInfo.of(queries.known_business(uow.session, business_id))
    query = select(Customer).where(Customer.business_id == business_id)
    if customer_id is not None:
        query = query.where(Customer.id == customer_id)
    if text.strip():
        like = f"%{text.strip().lower()}%"
        query = query.where(or_(func.lower(Customer.name).like(like), cast(Customer.phone, String).like(like),
                                func.lower(Customer.email).like(like)))
    customers = list(uow.session.scalars(query.order_by(Customer.no_show_count.desc(), Customer.name).limit(limit)))
    ids = [c.id for c in customers]
    counts = dict(uow.session.execute(select(Booking.customer_id, func.count()).where(
        Booking.customer_id.in_(ids)).group_by(Booking.customer_id)).all())
    last = dict(uow.session.execute(select(Booking.customer_id, func.max(Booking.starts_at)).where(
        Booking.customer_id.in_(ids), Booking.starts_at <= now).group_by(Booking.customer_id)).all())
    policy = business.no_show_policy
    since = now - timedelta(days=policy.within_days) if policy else datetime.min.replace(tzinfo=now.tzinfo)
    # as deposits.recent_no_shows counts
    recent = dict(uow.session.execute(select(Booking.customer_id, func.count()).where(
        Booking.customer_id.in_(ids), Booking.status == BookingStatus.NO_SHOW, Booking.starts_at >= since)
        .group_by(Booking.customer_id)).all())
    return [CustomerRow(customer_view(c), counts.get(c.id, 0), c.no_show_count, recent.get(c.id, 0),
                        policy is not None and recent.get(c.id, 0) >= policy.after,
                        last[c.id].astimezone(business.zone).date() if c.id in last else None)
            for c in customers]


@dataclass(frozen=True)
class CustomerPage:
    history: CustomerHistory
    waiting: list[WaitingRow]
    row: CustomerRow
    erased: bool


def customer_page_view(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int,
                       now: datetime) -> CustomerPage | None:
    """Everything the console shows of one customer, read in one transaction; None if not this business's."""
    customer = customer_of(uow, business_id, customer_id)
    if customer is None:
        return None
    return CustomerPage(history_for(uow, business_id, customer),
                        waiting_list(uow, business_id, customer.id, live_only=False),
                        customer_roster(uow, business_id, now, customer_id=customer.id)[0],
                        customer.erased_at is not None)


def customer_of(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int) -> Customer | None:
    customer = uow.session.get(Customer, customer_id)
    return customer if customer is not None and customer.business_id == business_id else None


def waiting_list(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int | None = None,
                 live_only: bool = True) -> list[WaitingRow]:
    """Waitlist entries, first come first served (the order offers go out in)."""
    query = (select(WaitlistEntry, Customer, Service.name)
             .join(Customer, Customer.id == WaitlistEntry.customer_id)
             .join(Service, Service.id == WaitlistEntry.service_id)
             .where(WaitlistEntry.business_id == business_id).order_by(WaitlistEntry.created_at, WaitlistEntry.id))
    if customer_id is not None:
        query = query.where(WaitlistEntry.customer_id == customer_id)
    if live_only:
        query = query.where(WaitlistEntry.status.in_(("waiting", "offered")))
    return [WaitingRow(e.id, customer_view(c), service_name, window_text(e), e.status, e.source, e.created_at,
                       e.party_size)
            for e, c, service_name in uow.session.execute(query.limit(500))]


def window_text(e: WaitlistEntry) -> str:
    days = e.earliest_date.strftime("%d %b")
    if e.latest_date != e.earliest_date:
        days += f" – {e.latest_date:%d %b}"
    if (e.day_start_minute, e.day_end_minute) != (0, 1440):
        days += f", {clock_text(e.day_start_minute)}–{clock_text(e.day_end_minute)}"
    return days
