"""Shapes of the staff REST API (/v1) beyond the shared commands, views and config models.

Request bodies reuse the commands and config models; only what the edge fills in itself (the
idempotency key from its header, source and actor from the API key, codes and keys from the path)
is left out of them.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from nextslot.schemas.commands import BookingChange, BookingCreate, BookingReschedule, Command, SeriesCreate, Write
from nextslot.schemas.config import (
    BusinessConfig,
    ExceptionConfig,
    ResourceConfig,
    ServiceConfig,
)
from nextslot.schemas.config_fields import (
    MAX_EXCEPTIONS,
    MAX_RESOURCES,
    Strict,
    WallOrInstant,
    WeeklySpans,
    check_week,
)
from nextslot.schemas.inputs import Input
from nextslot.schemas.statuses import BookingStatus
from nextslot.schemas.views import BookingView, SlotView


def iso_only(value: Any) -> Any:
    """Dates and times as ISO 8601 text, as documented: pydantic alone would read 317 as 317 s after 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        raise ValueError("give an ISO 8601 date or time, e.g. 2026-11-24 or 2026-11-24T09:00:00+00:00")
    return value


# --- errors ----------------------------------------------------------------------------------------


class Problem(BaseModel):
    field: str | None
    message: str


class ErrorDetail(BaseModel):
    code: str  # machine-readable: unknown_booking, invalid_request, slot_taken, ...
    message: str  # a sentence a person can act on
    field: str | None = None  # the input at fault, dotted: customer.phone
    problems: list[Problem] = []  # every wrong field, when the request itself was malformed
    suggestions: list[str] = []  # real values close to what was given


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ConflictResponse(ErrorResponse):
    """409: the request clashes with the current state. A lost race (`slot_taken`) is an answer, not a
    failure: `alternatives` lists the openings nearest the requested time, free when computed."""

    requested: dt.datetime | None = None
    alternatives: list[SlotView] | None = None


# --- booking commands as HTTP bodies ---------------------------------------------------------------


def edge_body(command: type[Write], name: str, *from_path: str, dated: tuple[str, ...] = ()) -> type[Command]:
    """The command without the fields the edge fills in itself; `dated` fields take ISO 8601 text only."""
    skipped = {*Write.model_fields, *from_path}
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in command.model_fields.items() if n not in skipped}
    validators = {f"{n}_iso_only": field_validator(n, mode="before")(iso_only) for n in dated}
    return create_model(name, __base__=Command, __doc__=command.__doc__, __validators__=validators, **fields)


StaffBookingCreate = edge_body(BookingCreate, "StaffBookingCreate", dated=("starts_at",))
StaffReschedule = edge_body(BookingReschedule, "StaffReschedule", "code", dated=("starts_at",))
StaffChange = edge_body(BookingChange, "StaffChange", "code")
StaffSeriesCreate = edge_body(SeriesCreate, "StaffSeriesCreate", dated=("starts_at",))


class BookingFilter(Input):
    """Which bookings to list; every filter given must match. Dates are the business's local dates, or the
    branch's when `location` names one."""

    date_from: dt.date | None = Field(None, description="first day, inclusive")
    date_to: dt.date | None = Field(None, description="last day, inclusive")
    status: list[BookingStatus] = Field(default_factory=list, max_length=7, description="any of these statuses")
    resource: str | None = Field(None, max_length=64, description="resource key")
    location: str | None = Field(None, max_length=64, description="branch key: bookings there, its dates")
    service: str | None = Field(None, max_length=64, description="service key")
    phone: str | None = Field(None, max_length=40, description="the customer's phone, any common format")
    email: str | None = Field(None, max_length=320)
    code: str | None = Field(None, max_length=40)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=100_000)

    _iso = field_validator("date_from", "date_to", mode="before")(iso_only)


class BookingPage(BaseModel):
    bookings: list[BookingView]  # soonest first
    total: int  # matching bookings in all pages
    next_offset: int | None  # None: this is the last page


class HistoryEntry(BaseModel):
    at: dt.datetime
    action: str  # created, rescheduled, cancelled, confirmed, no_show, ...
    actor: str
    channel: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class BookingHistory(BaseModel):
    code: str
    entries: list[HistoryEntry]  # oldest first


class DeliveryAttemptView(BaseModel):
    channel: str
    recipient: str  # masked: enough to tell two contacts apart, not to read them off a screen
    provider_id: str | None
    status: str
    history: list[dict[str, Any]]  # every status the provider reported, in order
    error_code: str | None
    error_message: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class NotificationView(BaseModel):
    id: int
    kind: str  # confirmation, reminder, rescheduled, cancelled, deposit_requested, ...
    audience: Literal["customer", "staff"]
    staff: str | None  # the resource key, for staff notices
    status: str
    due_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None
    gave_up_on: list[str]  # channels that failed for good
    attempts: list[DeliveryAttemptView]


class InboundMessageView(BaseModel):
    channel: str
    sender: str  # masked
    body: str
    intent: str
    outcome: str
    answer: str
    received_at: dt.datetime


class NotificationLog(BaseModel):
    code: str
    notifications: list[NotificationView]  # oldest first
    inbound: list[InboundMessageView]  # the customer's replies about this booking, oldest first


# --- catalog ---------------------------------------------------------------------------------------


class ExceptionIn(ExceptionConfig):
    """Time off ('closed') or extra hours ('open'): a whole date, a date with spans, or an exact range."""

    _iso = field_validator("date", "until", "starts_at", "ends_at", mode="before")(iso_only)

    @model_validator(mode="wrap")
    @classmethod
    def comparable_times(cls, data: Any, handler: Any) -> Any:
        """A local wall time against a time with an offset makes the config's own check raise TypeError."""
        try:
            return handler(data)
        except TypeError:
            raise ValueError("give starts_at and ends_at both with a UTC offset, or both as local wall times") from None

    @model_validator(mode="after")
    def at_most_a_year(self) -> ExceptionIn:
        if self.date and self.until and (self.until - self.date).days > 366:
            raise ValueError("one dated exception covers at most a year; give longer ones as starts_at and ends_at")
        return self


class ResourceIn(ResourceConfig):
    """A resource as in the config file. Left out, `hours` and `exceptions` keep their current values
    (a new resource starts with none: it is closed until given hours)."""

    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)  # type: ignore[assignment]  # pydantic narrows a field in a subclass


class ConfigIn(BusinessConfig):
    """The whole business config, as `nextslot load-config` reads it; resources and services it leaves out
    are left alone."""

    closures: list[ExceptionIn] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)  # type: ignore[assignment]
    resources: list[ResourceIn] = Field(min_length=1, max_length=MAX_RESOURCES)  # type: ignore[assignment]


class ResourceEntry(ResourceConfig):
    active: bool  # inactive: kept with its bookings, offered to no one; PUT makes it active again


class ServiceEntry(ServiceConfig):
    active: bool


class ResourceList(BaseModel):
    resources: list[ResourceEntry]


class ServiceList(BaseModel):
    services: list[ServiceEntry]


class ResourceHours(Strict):
    hours: WeeklySpans = Field(description="weekly spans in the resource's zone, e.g. {'mon': ['09:00-17:00']}")

    _week = field_validator("hours")(check_week)


class ExceptionView(BaseModel):
    id: str  # stable while the exception is unchanged: pass it to DELETE
    kind: Literal["closed", "open"]
    starts_at: WallOrInstant  # in the resource's (closures: the business's) zone; a date's: without an offset
    ends_at: WallOrInstant
    reason: str


class ExceptionList(BaseModel):
    exceptions: list[ExceptionView]  # by start; adjacent days of one exception are one period


# --- calendar --------------------------------------------------------------------------------------


class Span(BaseModel):
    starts_at: dt.datetime  # business-local, with offset
    ends_at: dt.datetime


class TimeOff(Span):
    reason: str
    business_wide: bool  # a closure of the whole business, not this resource's own time off


class CalendarBooking(Span):
    code: str
    status: str
    service: str
    service_name: str
    customer_name: str
    occupied: Span  # what the booking blocks: the service with its buffers


class CalendarHold(Span):
    id: int
    service: str
    expires_at: dt.datetime
    occupied: Span


class ResourceDay(BaseModel):
    key: str
    name: str
    kind: str
    capacity: int
    active: bool
    working: list[Span]  # opening time after exceptions, within the asked days
    time_off: list[TimeOff]
    bookings: list[CalendarBooking]  # those holding time now (cancelled ones have let it go)
    holds: list[CalendarHold]  # live holds only
    external_busy: list[Span]  # from the resource's own calendar (CalDAV)


class CalendarQuery(Input):
    date: dt.date = Field(description="the first day, in the calendar's zone (`timezone` in the answer): a branch's "
                                      "when `location` is given, the resource's own when `resource` is, else the "
                                      "business's")
    days: int = Field(1, ge=1, le=7)
    resource: str | None = Field(None, max_length=64, description="only this resource (key), active or not")
    location: str | None = Field(None, max_length=64, description="only this branch's resources (key) and the shared "
                                                                  "ones, in the branch's zone")

    _iso = field_validator("date", mode="before")(iso_only)


class CalendarView(BaseModel):
    date: dt.date
    days: int
    timezone: str  # the zone its days and times are read in
    location: str | None = None  # the branch asked for
    resources: list[ResourceDay]
