"""Booking codes: a code already taken in the business is drawn again, in the same transaction."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.storage.tables import Booking

MON_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_taken_code_is_drawn_again_and_the_booking_holds_what_was_written(make_business, service, uow):
    clinic = make_business("clinic")
    first = service.book(clinic, BookingCreate(service="consultation", starts_at=MON_10,
                                               customer=CustomerIn(name="Ann Lee", phone="+447911123401")))
    assert isinstance(first, Booked)
    taken = first.booking.code
    draws = iter([taken, taken, "XYZ347"])
    with uow:
        original = uow.session.scalars(select(Booking).where(Booking.code == taken,
                                                             Booking.business_id == clinic)).one()
        again = Booking(business_id=clinic, code="", service_id=original.service_id,
                        customer_id=original.customer_id, starts_at=MON_10 + timedelta(days=1),
                        ends_at=MON_10 + timedelta(days=1, minutes=20), source="test", intake={}, notes="",
                        updated_at=MON_10)
        uow.bookings.add_with_code(again, lambda: next(draws))
        assert again.id is not None and again.code == "XYZ347"
        assert again.status == "booked" and again.created_at is not None  # the row's defaults came back
        again.notes = "changed after the insert"  # the object is the row: changes are written as usual
        uow.commit()
    with uow:
        stored = uow.session.get_one(Booking, again.id)
        assert (stored.code, stored.notes) == ("XYZ347", "changed after the insert")
        assert uow.session.get_one(Booking, original.id).code == taken  # the first booking kept its code
        uow.session.delete(stored)  # a booking with no claims breaks the books' invariants, which later tests check
        uow.commit()
