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
