"""Write and query commands: what every edge (tools, page, staff API, CLI) hands to the core.

Times may carry an offset, or be local wall times with `timezone` naming the IANA zone; a date is a whole
local day.
"""
from contextlib import suppress
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints

from nextslot.schemas.inputs import Input, PersonName, Scalar, StartTime

Channel = Literal["whatsapp", "sms", "email"]
# Every list and string an edge hands in is bounded, so a huge input is refused (422) before it costs memory
# or reaches the database (whose protocol takes at most 65535 parameters a statement).
ServiceRef = Annotated[str, StringConstraints(max_length=200)]  # a service's key, or its name
ZoneName = Annotated[str, StringConstraints(max_length=64)]  # IANA names are at most ~32 characters
ResourceKeys = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=20)]
Intake = Annotated[dict[Annotated[str, StringConstraints(max_length=64)], Scalar | None], Field(max_length=50)]


class Command(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Command):
    name: PersonName
    phone: str | None = Field(None, max_length=40, description="E.164, or local format in the business's country")
    email: str | None = Field(None, max_length=320)
    timezone: ZoneName | None = Field(None, description="IANA zone of the customer, e.g. Europe/Paris")
    language: str = Field("en", max_length=8)
    channels: list[Channel] | None = Field(None, max_length=3, description="Preferred channels, in fallback order")


def day_or_instant(value: Any) -> Any:
    """'2026-09-06' is a date (a whole local day), not its midnight: some zones skip or repeat midnight."""
    if isinstance(value, str) and len(value.strip()) == 10:
        with suppress(ValueError):  # not a real date: pydantic's own message says so
            return date.fromisoformat(value.strip())
    return value


DayOrTime = Annotated[datetime | date, BeforeValidator(day_or_instant)]


class SlotQuery(Command):
    service: ServiceRef = Field(description="Service key")
    starts_from: DayOrTime | None = Field(None, description="Window start; a date: the first instant of that "
                                                            "local day; default now")
    until: DayOrTime | None = Field(None, description="Window end (exclusive); a date: the first instant of that "
                                                      "local day; default 7 days after the start")
    timezone: ZoneName | None = Field(None, description="Zone for window times given without an offset")
    customer_timezone: ZoneName | None = None
    resources: ResourceKeys = Field(default_factory=list, description="Only slots with these resources (keys)")
    location: str | None = Field(None, max_length=64, description="A branch's key; None: any branch")
    limit: int = Field(50, ge=1, le=1000)
    party_size: int = Field(1, ge=1, le=100, description="People in one booking (a service with party settings)")


class Write(Command):
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    source: str = Field("api", max_length=32, description="Channel the change came through")
    actor: str = Field("", max_length=100, description="Who made the change, for the history")


class BookingCreate(Write):
    service: ServiceRef
    starts_at: StartTime
    timezone: ZoneName | None = None
    customer: CustomerIn
    resources: ResourceKeys = Field(default_factory=list)
    intake: Intake = Field(default_factory=dict)
    notes: str = Field("", max_length=2000)
    hold_id: int | None = Field(None, description="Convert this hold into the booking")
    holder: str | None = Field(None, max_length=64, description="A public caller converting its own hold (None: any)")
    location: str | None = Field(None, max_length=64, description="A branch's key; None: any branch")
    party_size: int = Field(1, ge=1, le=100, description="People in one booking (a service with party settings)")


class SeriesRule(Command):
    """'Every Tuesday at 10 for 6 weeks': the first start's local wall time, repeated."""

    every: Literal["day", "week"] = "week"
    interval: int = Field(1, ge=1, le=8, description="every 2 weeks: 2")
    count: int = Field(ge=2, le=52, description="occurrences, the first included")


class SeriesCreate(Write):
    """A recurring series in one request; each occurrence becomes a normal booking with its own reminders."""

    service: ServiceRef
    starts_at: StartTime = Field(description="the first occurrence; the others keep its local wall time")
    timezone: ZoneName | None = None
    customer: CustomerIn
    resources: ResourceKeys = Field(default_factory=list)
    intake: Intake = Field(default_factory=dict)
    notes: str = Field("", max_length=2000)
    party_size: int = Field(1, ge=1, le=100)
    location: str | None = Field(None, max_length=64, description="A branch's key; None: any branch")
    repeat: SeriesRule
    mode: Literal["all_or_none", "skip_taken", "nearest_free"] = Field(
        "all_or_none", description="all_or_none: book every occurrence or none; skip_taken: book the free ones; "
                                   "nearest_free: book the free ones and, for each taken one, the nearest free "
                                   "time (within a day of it)")


class HoldCreate(Write):
    service: ServiceRef
    starts_at: StartTime
    timezone: ZoneName | None = None
    resources: ResourceKeys = Field(default_factory=list)
    minutes: int | None = Field(None, ge=1, le=60, description="Hold length; default from settings")
    holder: str | None = Field(None, max_length=64, description="A public caller's: only it converts the hold")
    location: str | None = Field(None, max_length=64, description="A branch's key; None: any branch")
    party_size: int = Field(1, ge=1, le=100, description="People in one booking (a service with party settings)")


class BookingReschedule(Write):
    code: str = Field(max_length=40)
    starts_at: StartTime
    timezone: ZoneName | None = None
    resources: ResourceKeys = Field(default_factory=list)
    location: str | None = Field(None, max_length=64, description="Move to this branch; None: the same one")


class BookingChange(Write):
    """Cancel, confirm or mark a no-show."""

    code: str = Field(max_length=40)
    reason: str = Field("", max_length=500)
    late_terms: Literal["accept", "waive"] | None = Field(
        None, description="accept: the customer agreed to what a late cancel costs (self-service needs it inside "
                          "the cutoff; staff set it to charge the cost); waive: staff let a no-show off its cost")


class BookingSearch(Command):
    """Find a customer's bookings by any one identifier (scoped to the business)."""

    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=320)
    code: str | None = Field(None, max_length=40)
    include_past: bool = False
    limit: int = Field(20, ge=1, le=100)


class WaitlistJoin(Write):
    service: ServiceRef
    customer: CustomerIn
    earliest_date: date
    latest_date: date
    day_start: time = Field(time(0, 0), description="Earliest start, local to the service's branch (else the business)")
    day_end: time | None = Field(None, description="Latest end, local as day_start; None: end of day")
    resources: ResourceKeys = Field(default_factory=list, description="Preferred resources (keys)")
    party_size: int = Field(1, ge=1, le=100, description="People waiting to be seated together (a service with "
                                                         "party settings); offers go only to times with room for all")
