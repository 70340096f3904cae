"""The business configuration file read by `nextslot load-config` (YAML or JSON)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator, model_validator

from nextslot.schemas.config_fields import (
    MAX_EXCEPTION_DAYS,
    MAX_EXCEPTIONS,
    MAX_RESOURCES,
    MAX_SERVICES,
    Key,
    Name,
    ReminderOffsets,
    Spans,
    Strict,
    WallOrInstant,
    WeeklySpans,
    check_week,
    check_zone,
    parse_span,
)
from nextslot.schemas.service_rules import (
    AssignmentConfig,
    CancellationPolicy,
    DepositConfig,
    IntakeQuestion,
    NoShowPolicy,
    PartyConfig,
    SeriesConfig,
)


class ExceptionConfig(Strict):
    """Time off ('closed') or extra hours ('open'): a whole date, a date with spans, or an exact range."""

    kind: Literal["closed", "open"]
    date: dt.date | None = None
    until: dt.date | None = Field(None, description="last date of a multi-day exception, inclusive")
    hours: Spans = Field(default_factory=list, description="spans on those dates; empty: the whole day")
    starts_at: WallOrInstant | None = None
    ends_at: WallOrInstant | None = None
    reason: str = Field("", max_length=200)

    @model_validator(mode="after")
    def one_form(self) -> ExceptionConfig:
        for span in self.hours:
            parse_span(span)
        dated = self.date is not None
        ranged = self.starts_at is not None or self.ends_at is not None
        if dated == ranged:
            raise ValueError("give either date (with optional until and hours) or starts_at and ends_at")
        if ranged and (self.starts_at is None or self.ends_at is None):
            raise ValueError("give both starts_at and ends_at")
        if self.starts_at is not None and self.ends_at is not None:
            if (self.starts_at.tzinfo is None) != (self.ends_at.tzinfo is None):
                raise ValueError("give starts_at and ends_at both with an offset or both as local times")
            if self.starts_at >= self.ends_at:
                raise ValueError("starts_at must come before ends_at")
        for day in (self.date, self.until):
            if day is not None and not 2000 <= day.year <= 2199:
                raise ValueError("dates must lie between the years 2000 and 2199")
        for instant in (self.starts_at, self.ends_at):  # a stored day, read back in another zone, may cross a year
            if instant is not None and not 1999 <= instant.year <= 2200:
                raise ValueError("times must lie between the years 1999 and 2200")
        if self.date is not None and self.until is not None and (self.until - self.date).days > MAX_EXCEPTION_DAYS:
            raise ValueError(f"one exception covers at most {MAX_EXCEPTION_DAYS} days; split longer ones")
        if self.until is not None and self.date is not None and self.until < self.date:
            raise ValueError("until must not come before date")
        if self.kind == "open" and dated and not self.hours:
            raise ValueError("extra opening on a date needs hours, e.g. ['09:00-13:00']")
        return self


class LocationConfig(Strict):
    """A branch: its own address, zone and default hours. Its resources are booked only together (a resource
    with no location is shared by every branch, e.g. a phone line)."""

    key: Key
    name: Name
    address: str | None = Field(None, max_length=500)
    timezone: str | None = Field(None, max_length=64, description="default: the business's")
    phone: str | None = Field(None, max_length=50)
    hours: WeeklySpans | None = Field(None, description="default hours of its resources; default: the business's")

    _zone = field_validator("timezone")(check_zone)
    _week = field_validator("hours")(check_week)


class ResourceConfig(Strict):
    key: Key
    name: Name
    kind: Literal["staff", "room", "device"]
    capacity: int = Field(1, ge=1, le=1000, description="more than 1 only on purpose: a class, a bay, a lift")
    timezone: str | None = Field(None, max_length=64)
    hours: WeeklySpans | None = Field(None, description="weekly hours; default: the business's hours")
    exceptions: list[ExceptionConfig] = Field(default_factory=list, max_length=MAX_EXCEPTIONS)
    email: EmailStr | None = Field(None, description="staff: told by email when their bookings move or go")
    phone: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", description="staff: E.164 mobile, for SMS")
    location: Key | None = Field(None, description="the branch (a location key) it belongs to; None: shared")

    _zone = field_validator("timezone")(check_zone)
    _week = field_validator("hours")(check_week)


class RequirementConfig(Strict):
    label: str = Field(min_length=1, max_length=100)
    one_of: list[Key] = Field(min_length=1, max_length=100, description="resource keys, in the order they are picked")

    @model_validator(mode="after")
    def members_unique(self) -> RequirementConfig:
        if len(set(self.one_of)) != len(self.one_of):
            raise ValueError(f"requirement {self.label} lists a resource twice")
        return self


class ServiceConfig(Strict):
    key: Key
    name: Name
    description: str = Field("", max_length=2000)
    duration: int = Field(gt=0, le=24 * 60, description="minutes")
    buffer_before: int = Field(0, ge=0, le=24 * 60)
    buffer_after: int = Field(0, ge=0, le=24 * 60)
    step: int = Field(15, gt=0, le=24 * 60, description="minutes between possible start times")
    min_notice: int = Field(60, ge=0, description="minutes")
    horizon_days: int = Field(90, gt=0, le=3 * 365)
    requires: list[RequirementConfig] = Field(min_length=1, max_length=20)
    reminder_offsets_minutes: ReminderOffsets | None = Field(
        None, description="this service's own reminders (minutes before the start); default: the business's")
    intake: list[IntakeQuestion] = Field(default_factory=list, max_length=30)
    deposit: DepositConfig | None = None
    cancellation: CancellationPolicy | None = Field(None, description="this service's own; default: the business's")
    assignment: AssignmentConfig | None = Field(None, description="how pooled members are picked; default first "
                                                                  "free in listed order")
    party: PartyConfig | None = Field(None, description="bookings for several people at once; default one person")
    series: SeriesConfig | None = Field(None, description="recurring series; default allowed, up to 52 occurrences")

    @model_validator(mode="after")
    def intake_keys_unique(self) -> ServiceConfig:
        keys = [q.key for q in self.intake]
        if len(set(keys)) != len(keys):
            raise ValueError(f"service {self.key} asks two intake questions with the same key")
        return self


class WaitlistSettings(Strict):
    offers_at_once: int = Field(1, ge=1, le=20, description="waiting customers offered one freed slot at once")
    offer_minutes: int = Field(15, ge=1, le=24 * 60, description="how long an offer stays open")


MessageKind = Literal["confirmation", "reminder", "rescheduled", "cancelled", "waitlist_offer", "deposit_requested"]
ValueName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]


class WhatsAppTemplate(Strict):
    """A WhatsApp template approved in Twilio's Content API: its SID, and the message's values that fill its
    placeholders {{1}}, {{2}}, ... in order (e.g. [name, service, when])."""

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$", description="the Content SID, HX + 32 hex digits")
    variables: list[ValueName] = Field(default_factory=list, max_length=10,
                                       description="values for {{1}}, {{2}}, ...: name, service, when, code, ...")


# per language, per kind of message: what WhatsApp takes outside its 24-hour window
WhatsAppTemplates = dict[Literal["en", "es", "fr", "de"], dict[MessageKind, WhatsAppTemplate]]


class ConversationSettings(BaseModel):
    """`business.details.conversations`: the numbers customers write to (a number names the business a message is
    for, so no two businesses may list one) and the business's own model."""

    model_config = ConfigDict(extra="allow")

    numbers: list[Annotated[str, StringConstraints(min_length=3, max_length=40)]] = Field(
        default_factory=list, max_length=20)
    model: Literal[False] | Annotated[str, StringConstraints(max_length=100)] | None = Field(
        None, description="the business's own model, or false for the guided flow only")
    base_url: str | None = Field(None, max_length=500, pattern=r"^https?://",
                                 description="its own OpenAI-compatible endpoint (public addresses only)")
    daily_model_calls: int | None = Field(None, ge=1, le=10**9)
    daily_tokens: int | None = Field(None, ge=1, le=10**12)


class BusinessDetails(BaseModel):
    """`business.details`: free-form information, with each key the code reads checked here (by `apply_config`,
    the one door every stored config goes through); other keys are kept as given."""

    model_config = ConfigDict(extra="allow")

    address: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=50)
    policies: str | None = Field(None, max_length=5000)
    page: dict[str, Any] | None = Field(None, description="colour and logo_url; the page ignores what does not fit")
    language: Literal["en", "es", "fr", "de"] | None = Field(
        None, description="the booking page's language when the visitor's browser asks for none of ours")
    templates: Any = Field(None, description="message overrides, checked by rendering (message_templates)")
    waitlist: WaitlistSettings | None = None
    conversations: ConversationSettings | None = None
    whatsapp_templates: WhatsAppTemplates | None = Field(
        None, description="approved WhatsApp templates per language and kind, sent outside the 24-hour window")


class BusinessSection(Strict):
    slug: Key
    name: Name
    timezone: str = Field(max_length=64)
    country: str = Field("US", pattern=r"^[A-Z]{2}$", description="for phone numbers given without +code")
    details: dict[str, Any] = Field(default_factory=dict, max_length=100, description="address, phone, policies")
    email: EmailStr | None = Field(None, description="the business's own address: told when something needs "
                                                     "its attention, e.g. a webhook endpoint turned off")
    reminder_offsets_minutes: ReminderOffsets | None = Field(
        None, description="minutes before the start of each reminder; [] for none; default [1440, 120]")
    deposit_hold_minutes: int = Field(30, ge=5, le=24 * 60, description="how long an unpaid deposit holds the slot")
    no_show_policy: NoShowPolicy | None = None
    cancellation: CancellationPolicy | None = Field(None, description="cutoffs and late fees of every service "
                                                                      "without its own")

    _zone = field_validator("timezone")(check_zone)

    @field_validator("details")
    @classmethod
    def no_checked_setting_in_details(cls, details: dict[str, Any]) -> dict[str, Any]:
        """Settings of their own are checked there; in `details` they would be taken unchecked, then lost."""
        if clash := sorted(set(details) & OWN_DETAILS):
            raise ValueError(f"set {', '.join(clash)} on the business itself, where it is checked, not in details")
        return details


# apply_config keeps these business settings in `details`; the config gives them as fields of their own
OWN_DETAILS = frozenset(BusinessSection.model_fields) - {"slug", "name", "timezone", "country", "details"}


class BusinessConfig(Strict):
    business: BusinessSection
    hours: WeeklySpans = Field(default_factory=dict, description="default weekly hours for resources")
    closures: list[ExceptionConfig] = Field(default_factory=list, max_length=MAX_EXCEPTIONS,
                                            description="business-wide exceptions")
    locations: list[LocationConfig] = Field(default_factory=list, max_length=100,
                                            description="branches; none: one place, the business's")
    resources: list[ResourceConfig] = Field(min_length=1, max_length=MAX_RESOURCES)
    services: list[ServiceConfig] = Field(min_length=1, max_length=MAX_SERVICES)

    _week = field_validator("hours")(check_week)

    @model_validator(mode="after")
    def references_resolve(self) -> BusinessConfig:
        keys = [r.key for r in self.resources]
        if len(set(keys)) != len(keys):
            raise ValueError("resource keys must be unique")
        if len({s.key for s in self.services}) != len(self.services):
            raise ValueError("service keys must be unique")
        places = [loc.key for loc in self.locations]
        if len(set(places)) != len(places):
            raise ValueError("location keys must be unique")
        if stray := sorted({r.location for r in self.resources if r.location and r.location not in places}):
            raise ValueError(f"resource(s) at unknown location(s): {', '.join(stray)}")
        for service in self.services:
            for req in service.requires:
                unknown = [k for k in req.one_of if k not in keys]
                if unknown:
                    raise ValueError(f"service {service.key} requires unknown resource(s) {', '.join(unknown)}")
            if service.party and (stray := sorted(set(service.party.per_person) - {r.label for r in service.requires})):
                raise ValueError(f"service {service.key} party.per_person names no requirement: {', '.join(stray)}")
            pooled = {k for req in service.requires for k in req.one_of}
            if service.assignment and (stray := sorted(set(service.assignment.weights) - pooled)):
                raise ValueError(f"service {service.key} weighs resource(s) it does not use: {', '.join(stray)}")
        return self
