"""The booking statuses, named once: the values stored in `bookings.status` and shown in every view."""
from __future__ import annotations

from enum import StrEnum


class BookingStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"  # held until the deposit is paid by its deadline
    BOOKED = "booked"
    CONFIRMED = "confirmed"  # the customer said they will come
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    COMPLETED = "completed"
    EXPIRED = "expired"  # the deposit was not paid in time


# a booking that will happen: it can be moved, confirmed, reminded of, put in a calendar
ACTIVE = (BookingStatus.BOOKED, BookingStatus.CONFIRMED)
# one that still holds its time, paid for or not: it can be cancelled
LIVE = (*ACTIVE, BookingStatus.PENDING_PAYMENT)
