"""The booking form: the service's intake questions as fields, and what a visitor posts as a BookingCreate.

Field names are the core's own field paths (`customer.phone`, `intake.vehicle`), so a refusal from the
core lands next to the field it is about, with no mapping table to keep in step.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from nextslot.schemas.commands import BookingCreate, SeriesCreate
from nextslot.schemas.service_rules import IntakeQuestion
from nextslot.schemas.views import ServiceView
from nextslot.server.page_times import parse_slot_param, slot_param

CUSTOMER_FIELDS = ("customer.name", "customer.phone", "customer.email")
FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RADIO_LIMIT = 4  # a choice with more options than this becomes a select
LABELS = {"customer.name": "Your name", "customer.phone": "Phone", "customer.email": "Email",
          "repeat.count": "How many times in all", "repeat.interval": "Repeat", "mode": "If a time is taken"}
REPEAT_FIELDS = ("repeat", "repeat_count", "repeat_mode")  # every N weeks (empty: once), occurrences, series mode


@dataclass(frozen=True)
class Problem:
    """A refusal as the page shows it: the core's code, its sentence, and the field it is about."""

    code: str
    message: str
    field: str | None = None
    error_type: str | None = None  # pydantic's, when the form's own check refused a field


@dataclass(frozen=True)
class IntakeField:
    question: IntakeQuestion
    name: str  # "intake.vehicle"
    id: str  # "f-intake-vehicle"
    control: str  # text, textarea, number, radios, select, yes_no

    @property
    def options(self) -> list[tuple[str, str]]:
        """(value, text) of each radio button."""
        if self.control == "yes_no":
            return [("yes", "Yes"), ("no", "No")]
        return [(o, o) for o in self.question.options]

    @property
    def target(self) -> str:
        """The id an error summary links to: the control itself, or a group's first radio button."""
        return f"{self.id}-0" if self.control in ("radios", "yes_no") else self.id


@dataclass
class BookingForm:
    """What the visitor typed, kept to render the form again after a refusal or a lost race."""

    at: datetime | None
    key: str  # idempotency key of this rendering: a double submit books once
    values: dict[str, str] = field(default_factory=dict)

    @property
    def at_param(self) -> str:
        return slot_param(self.at) if self.at else ""


def new_form_key() -> str:
    return secrets.token_urlsafe(18)


def intake_fields(service: ServiceView) -> list[IntakeField]:
    fields = []
    for q in service.intake:
        control = q.type
        if q.type == "choice":
            control = "radios" if len(q.options) <= RADIO_LIMIT else "select"
        fields.append(IntakeField(q, f"intake.{q.key}", f"f-intake-{q.key}", control))
    return fields


def field_ids(fields: list[IntakeField]) -> dict[str, str]:
    """Field path -> the id of the control to focus for it (contact problems go to the phone field)."""
    return {"customer.name": "f-name", "customer.phone": "f-phone", "customer.email": "f-email",
            "customer": "f-phone", "repeat": "f-repeat", "repeat.interval": "f-repeat", "repeat.count": "f-repeat-count",
            "mode": "f-mode-0", **{f.name: f.target for f in fields}}


def read_form(posted: Mapping[str, Any], service: ServiceView, *, repeat: bool = True) -> BookingForm:
    """The posted fields this service asks for (nothing else is kept), with the chosen start; `repeat=False`
    for a form that offers no series."""
    names = [*CUSTOMER_FIELDS, *(f.name for f in intake_fields(service)),
             *(["party_size"] if service.party_max > 1 else []),
             *(REPEAT_FIELDS if repeat and service.series_max > 1 else [])]
    values = {n: str(posted.get(n, "")) for n in names if isinstance(posted.get(n, ""), str)}
    at = parse_slot_param(str(posted.get("alt") or posted.get("at") or ""))
    return BookingForm(at, str(posted.get("key", "")), values)


def booking_command(form: BookingForm, service: ServiceView, zone: str | None, source: str = "page",
                    actor: str = "", language: str | None = None,
                    location: str | None = None) -> BookingCreate | SeriesCreate | Problem:
    """The core's command for a posted form (the public page's, or a walk-in typed in at the console): one
    booking, or a recurring series when the visitor chose to repeat it; else the first thing the page itself
    must refuse."""
    if form.at is None:
        return Problem("invalid_time", "Pick a time from the list.", "starts_at")
    if not FORM_KEY.match(form.key):
        return Problem("form_expired", "This form has expired. Please check your details and send it again.")
    values = form.values
    repeat = values.get("repeat", "")
    command = SeriesCreate if repeat else BookingCreate
    series = {"repeat": {"every": "week", "interval": repeat, "count": values.get("repeat_count", "")},
              "mode": values.get("repeat_mode") or "all_or_none"} if repeat else {}
    try:  # validated as one document, so a problem names its whole path (customer.name)
        return command.model_validate({
            "service": service.key, "starts_at": form.at, "source": source, "actor": actor,
            "idempotency_key": f"{source}:{form.key}", "location": location,
            "customer": {"name": values.get("customer.name", ""), "phone": values.get("customer.phone") or None,
                         "email": values.get("customer.email") or None, "timezone": zone,
                         # the page's language, so their messages come in it too (a walk-in: none stated)
                         **({"language": language} if language else {})},
            "intake": {f.question.key: values.get(f.name, "") for f in intake_fields(service)},
            **({"party_size": values["party_size"]} if values.get("party_size") else {}), **series,
        })
    except ValidationError as invalid:
        return input_problem(invalid)


def input_problem(invalid: ValidationError) -> Problem:
    error = invalid.errors()[0]
    path = ".".join(str(p) for p in error["loc"])
    label = LABELS.get(path, path)
    return Problem("invalid_input", f"{label}: {str(error['msg']).removeprefix('Value error, ')}.", path,
                   str(error["type"]))
