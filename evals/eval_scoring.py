"""Scoring an agent scenario from the database rows it left (never from the transcript)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nextslot.storage.tables import (
    Booking,
    BookingFee,
    Claim,
    Customer,
    Payment,
    Resource,
    Service,
    WaitlistEntry,
)


def check_state(session_factory: sessionmaker[Session], business_id: int, expect: dict[str, Any]) -> list[str]:
    """Compare the business's rows with the scenario's expected end state; one line per difference."""
    failures: list[str] = []
    with session_factory() as s:
        if "business_bookings" in expect:
            count = len(s.scalars(select(Booking.id).where(Booking.business_id == business_id)).all())
            if count != expect["business_bookings"]:
                failures.append(f"the business has {count} bookings, expected {expect['business_bookings']}")
        for phone, wanted in (expect.get("bookings_of") or {}).items():
            rows = bookings_of(s, business_id, phone)
            if len(rows) != len(wanted):
                failures.append(f"{phone} has {len(rows)} bookings ({rows}), expected {len(wanted)}")
                continue
            for i, (row, want) in enumerate(zip(rows, wanted)):
                failures += [f"{phone} booking {i + 1}: {key} is {row.get(key)!r}, expected {value!r}"
                             for key, value in want.items() if not same(key, row.get(key), value)]
        for phone, wanted in (expect.get("waitlist_of") or {}).items():
            rows = waitlist_of(s, business_id, phone)
            if len(rows) != len(wanted):
                failures.append(f"{phone} has {len(rows)} waitlist entries ({rows}), expected {len(wanted)}")
                continue
            for i, (row, want) in enumerate(zip(rows, wanted)):
                failures += [f"{phone} waitlist entry {i + 1}: {key} is {row.get(key)!r}, expected {value!r}"
                             for key, value in want.items() if row.get(key) != value]
    return failures


def same(key: str, got: Any, wanted: Any) -> bool:
    if key == "starts_at":
        return got is not None and got == datetime.fromisoformat(wanted)
    if key == "resources":
        return sorted(got or []) == sorted(wanted)
    return got == wanted


def customer_ids(s: Session, business_id: int, contact: str) -> list[int]:
    column = Customer.email if "@" in contact else Customer.phone
    return list(s.scalars(select(Customer.id).where(Customer.business_id == business_id, column == contact)))


def bookings_of(s: Session, business_id: int, contact: str) -> list[dict[str, Any]]:
    """The customer's bookings, oldest first, as plain values (what the scenario can name)."""
    ids = customer_ids(s, business_id, contact)
    rows = s.scalars(select(Booking).where(Booking.business_id == business_id, Booking.customer_id.in_(ids))
                     .order_by(Booking.created_at, Booking.id)).all()
    found = []
    for b in rows:
        payment = s.scalars(select(Payment).where(Payment.booking_id == b.id)).one_or_none()
        resources = s.scalars(select(Resource.key).join(Claim, Claim.resource_id == Resource.id)
                              .where(Claim.booking_id == b.id, Claim.active)).all()
        customer = s.get(Customer, b.customer_id)
        found.append({"code": b.code, "service": b.service.key, "starts_at": b.starts_at, "status": b.status,
                      "resources": sorted(resources), "intake": b.intake, "source": b.source,
                      "customer_name": customer.name, "customer_timezone": customer.timezone,
                      "customer_language": customer.language,
                      "payment": payment.status if payment else None,
                      "deposit_reason": payment.reason if payment else None, "party_size": b.party_size,
                      "series": b.series_id is not None,
                      "fees": [[f.kind, f.status] for f in s.scalars(
                          select(BookingFee).where(BookingFee.booking_id == b.id).order_by(BookingFee.id))]})
    return found


def waitlist_of(s: Session, business_id: int, contact: str) -> list[dict[str, Any]]:
    ids = customer_ids(s, business_id, contact)
    rows = s.scalars(select(WaitlistEntry).where(WaitlistEntry.business_id == business_id,
                                                 WaitlistEntry.customer_id.in_(ids)).order_by(WaitlistEntry.id))
    found = []
    for w in rows:
        keys = s.scalars(select(Resource.key).where(Resource.id.in_(w.preferred_resource_ids or []))).all()
        found.append({"service": service_of(s, w.service_id), "status": w.status,
                      "earliest_date": w.earliest_date.isoformat(), "latest_date": w.latest_date.isoformat(),
                      "staff": sorted(keys)})
    return found


def service_of(s: Session, service_id: int) -> str:
    return s.get(Service, service_id).key
