"""What the core returns: bookings, holds and slots, ready to render or speak."""
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from nextslot.schemas.times import TimeView


class ResourceRef(BaseModel):
    id: int
    key: str
    name: str
    kind: str


class SlotView(BaseModel):
    starts_at: TimeView
    ends_at: datetime
    resources: list[ResourceRef]


class CustomerView(BaseModel):
    id: int
    name: str
    phone: str | None
    email: str | None
    timezone: str | None
    no_show_count: int


class BookingView(BaseModel):
    id: int
    code: str
    code_spoken: str
    status: str
    service: str
    service_name: str
    starts_at: TimeView
    ends_at: datetime
    customer: CustomerView
    resources: list[ResourceRef]
    source: str
    intake: dict[str, Any]


class HoldView(BaseModel):
    id: int
    service: str
    starts_at: TimeView
    ends_at: datetime
    expires_at: datetime
    resources: list[ResourceRef]


class ServiceView(BaseModel):
    key: str
    name: str
    description: str
    duration_minutes: int
    needs: list[str]  # the requirement labels: "doctor", "room", ...
    staff: list[str]  # names of the people (staff resources) who can do it


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
