"""Write and query commands: what every edge (tools, page, staff API, CLI) hands to the core.

Times may carry an offset, or be local wall times with `timezone` naming the IANA zone.
"""
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from nextslot.schemas.inputs import Input, PersonName, Scalar

Channel = Literal["whatsapp", "sms", "email"]


class Command(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Command):
    name: PersonName
    phone: str | None = Field(None, max_length=40, description="E.164, or local format in the business's country")
    email: str | None = Field(None, max_length=320)
    timezone: str | None = Field(None, description="IANA zone of the customer, e.g. Europe/Paris")
    language: str = Field("en", max_length=8)
    channels: list[Channel] | None = Field(None, description="Preferred channels, in fallback order")


class SlotQuery(Command):
    service: str = Field(description="Service key")
    starts_from: datetime | None = Field(None, description="Window start; default now")
    until: datetime | None = Field(None, description="Window end; default 7 days after the start")
    timezone: str | None = Field(None, description="Zone for window times given without an offset")
    customer_timezone: str | None = None
    resources: list[str] = Field(default_factory=list, description="Only slots with these resources (keys)")
    limit: int = Field(50, ge=1, le=1000)


class Write(Command):
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    source: str = Field("api", max_length=32, description="Channel the change came through")
    actor: str = Field("", max_length=100, description="Who made the change, for the history")


class BookingCreate(Write):
    service: str
    starts_at: datetime
    timezone: str | None = None
    customer: CustomerIn
    resources: list[str] = Field(default_factory=list)
    intake: dict[Annotated[str, Field(max_length=64)], Scalar | None] = Field(default_factory=dict, max_length=50)
    notes: str = Field("", max_length=2000)
    hold_id: int | None = Field(None, description="Convert this hold into the booking")


class HoldCreate(Write):
    service: str
    starts_at: datetime
    timezone: str | None = None
    resources: list[str] = Field(default_factory=list)
    minutes: int | None = Field(None, ge=1, le=60, description="Hold length; default from settings")


class BookingReschedule(Write):
    code: str
    starts_at: datetime
    timezone: str | None = None
    resources: list[str] = Field(default_factory=list)


class BookingChange(Write):
    """Cancel, confirm or mark a no-show."""

    code: str
    reason: str = Field("", max_length=500)


class BookingSearch(Command):
    """Find a customer's bookings by any one identifier (scoped to the business)."""

    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=320)
    code: str | None = Field(None, max_length=40)
    include_past: bool = False
    limit: int = Field(20, ge=1, le=100)


class WaitlistJoin(Write):
    service: str
    customer: CustomerIn
    earliest_date: date
    latest_date: date
    day_start: time = Field(time(0, 0), description="Earliest start, business-local")
    day_end: time | None = Field(None, description="Latest end, business-local; None: end of day")
    resources: list[str] = Field(default_factory=list, description="Preferred resources (keys)")
