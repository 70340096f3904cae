"""What the public ways in may book for one phone or email, and how long a series they may book.

Anyone can type or say a phone number on the booking page, to a customer's own assistant at /b/{slug}/mcp, on the
voice line or in the web chat, and every booking sends that number a confirmation and reminders: a stranger's
number would get as many as anyone cared to book, at the business's cost and in its name, and a made-up one
keeps a time from everyone. So one contact may have at most `per_contact` bookings (a series counts once) and
waitlist places from those channels that are still ahead or were made in the last 24 hours (cancelling one does
not make room for another the same day). Counted in the booking's own transaction after the customer's row is
locked (`find_or_create`), so two requests at once cannot both take the last place. The business's own people
(/v1, the console, its agents with a key) and a customer writing from her own number (SMS, WhatsApp: capped per
sender by the conversations) are not counted here. What one sender (an address, a calling number) may make a day,
whatever contacts it gives, is `per_sender` (core/booking/sender_budgets.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select

from nextslot.core.results import Rejected
from nextslot.schemas.statuses import LIVE
from nextslot.storage.tables import Booking, BookingHistory, WaitlistEntry
from nextslot.storage.uow import SqlAlchemyUnitOfWork

# the channels where a contact is only stated, never proved: the page, a customer's own assistant, the voice lines
# (a caller can say any number), the web chat
PUBLIC_SOURCES = frozenset({"page", "public_mcp", "vapi", "retell", "elevenlabs", "web_chat"})
RECENT = timedelta(days=1)
WAITING = ("waiting", "offered")


@dataclass(frozen=True)
class PublicCaps:
    per_contact: int  # bookings (a series once) and waitlist places of one contact, ahead or made in the last day
    series_max: int  # occurrences of a series booked from a public channel
    per_sender: int  # bookings (a series once) and waitlist places, and as many holds, one sender makes a UTC day


def contact_refusal(uow: SqlAlchemyUnitOfWork, caps: PublicCaps | None, business_id: int, customer_id: int,
                    source: str, now: datetime) -> Rejected | None:
    """`too_many_bookings` when this contact already has its public bookings and waitlist places, else None. The
    refusal names neither the cap nor the contact's count: the cap is as many as she may have, so saying it would
    tell a stranger how many bookings her number has."""
    if caps is None or source not in PUBLIC_SOURCES:
        return None
    if public_reach(uow, business_id, customer_id, now) < caps.per_contact:
        return None
    # says nothing of what the contact has (how many, or that it has any): whoever gives a number may be a stranger
    return Rejected("too_many_bookings", "No more bookings or waitlist places can be made for this phone number or "
                                         "email this way. Nothing was booked: the business's staff can book more.",
                    "customer", details=(("who", "contact"),))


def public_reach(uow: SqlAlchemyUnitOfWork, business_id: int, customer_id: int, now: datetime) -> int:
    """The contact's bookings from the public channels that are live and ahead or were made in the last day (the
    occurrences of a series as one), and its waitlist places from them that wait or were made in the last day."""
    s, since = uow.session, now - RECENT
    made_lately = exists().where(BookingHistory.business_id == Booking.business_id,
                                 BookingHistory.booking_id == Booking.id, BookingHistory.action == "created",
                                 BookingHistory.at > since)
    one_each = func.coalesce(Booking.series_id * 2, Booking.id * 2 + 1)  # a series once, each other booking once
    bookings = s.scalar(select(func.count(func.distinct(one_each))).where(
        Booking.business_id == business_id, Booking.customer_id == customer_id, Booking.source.in_(PUBLIC_SOURCES),
        or_(and_(Booking.status.in_(LIVE), Booking.starts_at > now), made_lately))) or 0
    places = s.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.business_id == business_id, WaitlistEntry.customer_id == customer_id,
        WaitlistEntry.source.in_(PUBLIC_SOURCES),
        or_(WaitlistEntry.status.in_(WAITING), WaitlistEntry.created_at > since))) or 0
    return bookings + places


def series_limit(caps: PublicCaps | None, source: str, service_max: int) -> int:
    """The most occurrences a series from this channel may have: the service's own limit, and from a public
    channel at most `caps.series_max` (52 weekly bookings in one request would be a year of one stranger's)."""
    if caps is None or source not in PUBLIC_SOURCES or service_max == 0:
        return service_max
    return min(service_max, caps.series_max)
