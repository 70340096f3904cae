"""What the core returns: bookings, holds and slots, ready to render or speak."""
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from nextslot.schemas.service_rules import IntakeQuestion
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.times import TimeView


class ResourceRef(BaseModel):
    id: int
    key: str
    name: str
    kind: str


class LocationRef(BaseModel):
    key: str
    name: str
    address: str | None = None


class Branch(LocationRef):
    """A branch where a service is offered, with the zone its days are read in."""

    timezone: str | None = None  # None: the business's


class SlotView(BaseModel):
    starts_at: TimeView
    ends_at: datetime
    resources: list[ResourceRef]
    seats_left: int | None = None  # a class (capacity > 1): places still free before this booking
    location: LocationRef | None = None  # the branch, for a business with several


class CustomerView(BaseModel):
    id: int
    name: str
    phone: str | None
    email: str | None
    timezone: str | None
    no_show_count: int
    language: str = "en"  # what they are spoken to in (messages, the tools' say)


class Money(BaseModel):
    amount_minor: int  # in the currency's smallest unit: 2000 = 20.00
    currency: str  # ISO 4217
    display: str  # "GBP 20.00"


class PaymentView(BaseModel):
    """A deposit: pending until paid; an unpaid one expires at `expires_at` and frees the slot."""

    status: str  # pending, paid, expired, refund_due, kept (a late cancel's or a no-show's cost)
    reason: str  # service: the service asks one; no_shows: the customer's missed appointments (no-show policy)
    amount: Money
    provider: str
    expires_at: datetime
    paid_at: datetime | None


class FeeView(BaseModel):
    """What a late cancel or a no-show cost: the deposit kept, or a fee charged to the card on file."""

    kind: str  # late_cancel, no_show
    amount: Money
    status: str  # deposit_kept; due, charging, charged, failed; no_payment_method (owed in person)


class BookingView(BaseModel):
    id: int
    code: str
    code_spoken: str
    status: BookingStatus
    service: str
    service_name: str
    starts_at: TimeView
    ends_at: datetime
    customer: CustomerView  # as stored: her own name and language, which her messages use (staff views show it)
    resources: list[ResourceRef]
    source: str
    intake: dict[str, Any]
    party_size: int = 1
    series_id: int | None = None  # an occurrence of a recurring series
    location: LocationRef | None = None  # the branch, for a business with several
    payment: PaymentView | None = None  # set when the booking needed a deposit
    fees: list[FeeView] = []  # a late cancel's or a no-show's cost, once one applied
    contact_name: str | None = None  # the name its caller gave for it; None: erased, or from before it was kept

    @property
    def name_given(self) -> str:
        """The name whoever holds the booking's code is shown (a tool's reply, the page, the manage link): the one
        given for it, never the customer's stored one, which anyone who knows her phone number could book with."""
        return self.contact_name or ""

    @property
    def booked_as(self) -> str | None:
        """For the staff: the name given for the booking, when it is not the customer's own."""
        given = self.contact_name
        return given if given and given != self.customer.name else None


class OccurrenceView(BaseModel):
    """One occurrence of a recurring series: booked as asked, booked at the nearest free time, or not."""

    requested: TimeView
    outcome: str  # booked, moved (booked at the nearest free time), taken, refused, not_booked (all-or-none)
    booking: BookingView | None = None
    alternatives: list[SlotView] = []  # taken: the nearest openings
    problem_code: str | None = None  # refused: why (outside_hours, too_soon, ...)
    problem: str | None = None


class SeriesView(BaseModel):
    series_id: int | None  # None: nothing was booked
    mode: str
    complete: bool  # every occurrence booked (some perhaps at the nearest free time)
    occurrences: list[OccurrenceView]


class HoldView(BaseModel):
    id: int
    service: str
    starts_at: TimeView
    ends_at: datetime
    expires_at: datetime
    resources: list[ResourceRef]


class ServiceView(BaseModel):
    model_config = ConfigDict(frozen=True)  # a process keeps them per configuration version (catalog.SERVICES)

    key: str
    name: str
    description: str
    duration_minutes: int
    needs: list[str]  # the requirement labels: "doctor", "room", ...
    staff: list[str]  # names of the people (staff resources) who can do it
    intake: list[IntakeQuestion] = []  # what the customer is asked when booking
    deposit: Money | None = None  # paid when booking, else the booking is not confirmed
    locations: list[Branch] = []  # the branches it is offered at (empty: a business without branches)
    party_max: int = 1  # the largest party one booking may be for
    series_max: int = 52  # the most occurrences of a recurring series; 0: not bookable as a series


class OpeningHours(BaseModel):
    day: str  # Monday ... Sunday
    hours: list[str]  # "08:30-12:30", business-local; empty: closed


class Closure(BaseModel):
    starts_at: datetime
    ends_at: datetime
    reason: str


class BusinessProfile(BaseModel):
    name: str
    timezone: str
    country: str
    address: str | None
    phone: str | None
    policies: str | None
    opening_hours: list[OpeningHours]  # when at least one resource works, in the business's zone
    closures: list[Closure]  # business-wide closures in the next 60 days
    services: list[ServiceView]
    locations: list[Branch] = []  # branches, for a business with several


class WaitlistView(BaseModel):
    id: int
    status: str
    service: str
    service_name: str
    earliest_date: str
    latest_date: str
    day_start: str  # "09:00", business-local
    day_end: str
    preferred: list[ResourceRef]
    customer: CustomerView
    party_size: int = 1


class HistoryEvent(BaseModel):
    at: datetime
    kind: str  # booking.created ... booking.no_show, deposit.requested, message, reply, waitlist.*
    booking_code: str | None
    channel: str | None
    summary: str  # one line a person can read, times in the customer's zone


class CustomerHistory(BaseModel):
    customer: CustomerView
    bookings: int
    no_shows: int
    events: list[HistoryEvent]  # oldest first
