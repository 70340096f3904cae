"""Finding a customer's bookings from what a caller can say: a phone number, an email or a code."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from nextslot.core.booking.codes import ALPHABET, normalize_code
from nextslot.core.customers.contacts import normalize_email, normalize_phone
from nextslot.core.results import Rejected
from nextslot.schemas.commands import BookingSearch
from nextslot.storage.tables import Booking, Customer
from nextslot.storage.uow import SqlAlchemyUnitOfWork


def near_codes(wanted: str, candidates: list[str]) -> list[str]:
    """Codes one mistyped or misheard symbol away from `wanted` (same length)."""
    return [c for c in candidates if len(c) == len(wanted) and sum(a != b for a, b in zip(c, wanted)) == 1]


def code_hint(code: str) -> str:
    odd = sorted({ch for ch in code if ch not in ALPHABET})
    if odd:
        return (f" Booking codes never contain {', '.join(odd)}: ask the caller to spell it again,"
                " or look the booking up by their phone number.")
    return " Ask the caller to spell it again, or look the booking up by their phone number or email."


def find_bookings(uow: SqlAlchemyUnitOfWork, business_id: int, region: str, search: BookingSearch,
                  now: datetime) -> tuple[list[Booking], list[str]] | Rejected:
    """The matching bookings, soonest first, and any codes close to a code that matched nothing.

    Close codes are only offered among the same customer's bookings (phone or email given too),
    so a typo never reveals someone else's appointment.
    """
    if not (search.phone or search.email or search.code):
        return Rejected("identifier_required", "Give the caller's phone number, email address or booking code.")
    customer_ids: list[int] | None = None
    if search.phone or search.email:
        conditions = []
        if search.phone:
            phone = normalize_phone(search.phone, region)
            if isinstance(phone, Rejected):
                return Rejected(phone.code, phone.message, "phone")
            conditions.append(Customer.phone == phone)
        if search.email:
            email = normalize_email(search.email)
            if isinstance(email, Rejected):
                return Rejected(email.code, email.message, "email")
            conditions.append(func.lower(Customer.email) == email.lower())
        customer_ids = list(uow.session.scalars(
            select(Customer.id).where(Customer.business_id == business_id, *conditions)
        ))
    query = select(Booking).where(Booking.business_id == business_id).order_by(Booking.starts_at)
    if customer_ids is not None:
        query = query.where(Booking.customer_id.in_(customer_ids))
    if not search.include_past:
        query = query.where(Booking.ends_at > now)
    if search.code:
        code = normalize_code(search.code)
        exact = [b for b in uow.session.scalars(query.where(Booking.code == code)).unique()]
        if exact or customer_ids is None:
            if not exact:
                return Rejected("unknown_booking", f"No booking with code '{search.code}'." + code_hint(code),
                                "code")
            return exact, []
        theirs = list(uow.session.scalars(query.limit(search.limit)).unique())
        return theirs, near_codes(code, [b.code for b in theirs])
    return list(uow.session.scalars(query.limit(search.limit)).unique()), []
