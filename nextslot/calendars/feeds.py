"""Private ICS feeds (RFC 5545, via `icalendar`) that Google, Outlook and Apple calendars subscribe to.

Each booking is one event with a stable UID; its SEQUENCE counts the changes in its history, so a
moved or cancelled booking updates the subscriber's copy instead of adding a second one.
"""
from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nextslot.calendars.ics_events import FeedEvent, calendar_with
from nextslot.core import audit
from nextslot.core.results import Rejected
from nextslot.schemas.statuses import BookingStatus
from nextslot.storage.tables import (
    Booking,
    BookingHistory,
    Business,
    CalendarFeed,
    Claim,
    Resource,
)
from nextslot.storage.uow import SqlAlchemyUnitOfWork

PAST = timedelta(days=30)  # recent history stays visible; older events drop off the feed
AHEAD = timedelta(days=366)
# an unpaid booking may lapse, and one that lapsed no longer holds its time (someone else may have it): a firm
# appointment in a subscriber's calendar is only a booked or confirmed one (or one that happened)
FEED_STATUS = {BookingStatus.PENDING_PAYMENT: "TENTATIVE", BookingStatus.CANCELLED: "CANCELLED",
               BookingStatus.EXPIRED: "CANCELLED"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_feed(uow: SqlAlchemyUnitOfWork, business_id: int, resource_key: str | None = None) -> str | Rejected:
    """A new feed token (shown once) for the whole business or one resource."""
    token = secrets.token_urlsafe(32)
    with uow:
        resource_id = None
        if resource_key:
            resource_id = uow.session.scalar(select(Resource.id).where(Resource.business_id == business_id,
                                                                       Resource.key == resource_key))
            if resource_id is None:
                return Rejected("unknown_resource", f"No resource called {resource_key} here.", "resource")
        feed = CalendarFeed(business_id=business_id, resource_id=resource_id, token_hash=token_hash(token))
        uow.session.add(feed)
        uow.session.flush()
        audit.record(uow, business_id, "ics_feed.created", f"feed {feed.id}", {"resource": [None, resource_key]})
        uow.commit()
    return token


@dataclass(frozen=True)
class FeedState:
    id: int
    resource: str | None  # the resource's key; None: the whole business
    created_at: datetime
    revoked_at: datetime | None


def list_feeds(uow: SqlAlchemyUnitOfWork, business_id: int) -> list[FeedState]:
    """The business's feeds (never their tokens, which only the subscriber holds), so one can be revoked."""
    with uow:
        rows = uow.session.execute(select(CalendarFeed, Resource.key).outerjoin(
            Resource, Resource.id == CalendarFeed.resource_id).where(CalendarFeed.business_id == business_id)
            .order_by(CalendarFeed.id)).all()
        return [FeedState(f.id, key, f.created_at, f.revoked_at) for f, key in rows]


def revoke_feed(uow: SqlAlchemyUnitOfWork, business_id: int, feed_id: int, now: datetime) -> FeedState | Rejected:
    """End a feed: its URL answers 404 from now on (a subscribed calendar keeps what it last fetched). A shared or
    leaked URL otherwise serves every customer's name and notes a year ahead for as long as the feed exists."""
    with uow:
        feed = uow.session.scalars(select(CalendarFeed).where(
            CalendarFeed.id == feed_id, CalendarFeed.business_id == business_id).with_for_update()).one_or_none()
        if feed is None:
            return Rejected("unknown_feed", f"No calendar feed {feed_id} here.", "feed_id")
        if feed.revoked_at is None or feed.revoked_at > now:
            audit.record(uow, business_id, "ics_feed.revoked", f"feed {feed.id}")
            feed.revoked_at = now
        uow.commit()
    return next(f for f in list_feeds(uow, business_id) if f.id == feed_id)


def feed_ics(uow: SqlAlchemyUnitOfWork, token: str, now: datetime) -> bytes | None:
    """The feed's calendar, or None for an unknown or revoked token."""
    with uow:
        s = uow.session
        feed = s.scalars(select(CalendarFeed).where(CalendarFeed.token_hash == token_hash(token))).one_or_none()
        if feed is None or (feed.revoked_at is not None and feed.revoked_at <= now):
            return None
        business = s.get(Business, feed.business_id)
        bookings = list(s.scalars(select(Booking).where(
            Booking.business_id == business.id, Booking.starts_at >= now - PAST, Booking.starts_at < now + AHEAD)
            .order_by(Booking.starts_at)).unique())
        resources = current_resources(s, [b.id for b in bookings])
        if feed.resource_id is not None:
            bookings = [b for b in bookings if feed.resource_id in {r.id for r in resources[b.id]}]
        changes = dict(s.execute(select(BookingHistory.booking_id, func.count()).where(
            BookingHistory.booking_id.in_([b.id for b in bookings])).group_by(BookingHistory.booking_id)).all())
        title = business.name if feed.resource_id is None else f"{s.get(Resource, feed.resource_id).name} - " \
                                                               f"{business.name}"
        return calendar(title, business, bookings, resources, changes, now)


def booking_ics(s: Session, business: Business, booking: Booking, now: datetime) -> bytes:
    """The booking as a one-event calendar for its customer, with the same UID and SEQUENCE as in the business's
    feeds. It names the booking as it was booked: its link is the manage link's, which whoever booked holds."""
    changes = s.scalar(select(func.count()).select_from(BookingHistory).where(BookingHistory.booking_id == booking.id))
    resources = current_resources(s, [booking.id])
    return calendar(business.name, business, [booking], resources, {booking.id: changes or 1}, now,
                    as_booked=True)


def one_booking_ics(uow: SqlAlchemyUnitOfWork, business_id: int, code: str, now: datetime) -> bytes | None:
    """The customer's own booking as an .ics (the link in SMS and WhatsApp confirmations)."""
    with uow:
        booking = uow.session.scalars(select(Booking).where(Booking.business_id == business_id,
                                                            Booking.code == code)).unique().one_or_none()
        if booking is None:
            return None
        return booking_ics(uow.session, uow.session.get(Business, business_id), booking, now)


def current_resources(s: Session, booking_ids: list[int]) -> dict[int, list[Resource]]:
    """Each booking's resources from its latest claims (a moved booking's old resources no longer count)."""
    rows = s.execute(select(Claim.booking_id, Claim.created_at, Resource).join(Resource, Resource.id == Claim.resource_id)
                     .where(Claim.booking_id.in_(booking_ids))).all()
    latest: dict[int, datetime] = {}
    for booking_id, created, _ in rows:
        latest[booking_id] = max(latest.get(booking_id, created), created)
    out: dict[int, list[Resource]] = defaultdict(list)
    for booking_id, created, resource in rows:
        if created == latest[booking_id]:
            out[booking_id].append(resource)
    return out


def calendar(title: str, business: Business, bookings: list[Booking], resources: dict[int, list[Resource]],
             changes: dict[int, int], now: datetime, as_booked: bool = False) -> bytes:
    """The bookings as events: named by their customers' names (the business's feeds), or `as_booked` by the name
    given for each (a customer's copy: a stranger may have booked with her phone)."""
    cal = Calendar()
    cal.add("prodid", "-//nextslot//bookings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", " ".join(title.split()))  # an X- property is written unescaped: one line or no calendar
    cal.add("x-wr-timezone", business.timezone)
    events = []
    for b in bookings:
        name = (b.contact_name if as_booked else b.customer.name) or "customer"
        with_whom = ", ".join(r.name for r in resources.get(b.id, []))
        branch = next((r.location for r in resources.get(b.id, []) if r.location is not None), None)
        address = (branch.address if branch else None) or (business.details or {}).get("address")  # where she goes
        events.append(FeedEvent(
            uid=f"booking-{b.id}-{b.code}@nextslot", sequence=max(changes.get(b.id, 1) - 1, 0), stamp=now,
            modified=b.updated_at, starts_at=b.starts_at, ends_at=b.ends_at, summary=f"{b.service.name}: {name}",
            description=f"Booking {b.code}" + (f" with {with_whom}" if with_whom else "") +
                        (f"\nNotes: {b.notes}" if b.notes else ""),
            location=address or None, status=FEED_STATUS.get(BookingStatus(b.status), "CONFIRMED")))
    return calendar_with(cal, events)
