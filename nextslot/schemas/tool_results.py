"""Agent tool results: short, and each carries `say`, a sentence an agent can read to the person as it is."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nextslot.schemas.statuses import BookingStatus


class ToolOutput(BaseModel):
    say: str = Field(description="What to tell the person, ready to be spoken")


class TimeSlot(BaseModel):
    starts_at: str = Field(description="ISO 8601 with the offset of the zone in `timezone`; pass it back unchanged")
    ends_at: str
    timezone: str
    spoken: str = Field(description="e.g. 'Tuesday 25 November at 5:30 pm'")
    with_: list[str] = Field(alias="with", description="Names of the people/rooms/devices it takes")
    resources: list[str] = Field(description="Their keys")
    seats_left: int | None = Field(None, description="A class: places still free at that time")
    location: str | None = Field(None, description="The branch it is at, for a business with several")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Appointment(BaseModel):
    code: str
    code_spoken: str = Field(description="The code spaced for reading aloud")
    status: BookingStatus
    service: str
    service_name: str
    starts_at: str
    ends_at: str
    timezone: str
    spoken: str
    with_: list[str] = Field(alias="with")
    customer_name: str = Field(description="The name given when it was booked")
    location: str | None = Field(None, description="The branch, for a business with several")
    deposit_due: str | None = Field(None, description="Set while a deposit is unpaid, e.g. '$25.00': the booking "
                                                      "is confirmed once paid (a pay link went to the caller)")
    pay_by: str | None = Field(None, description="When an unpaid deposit lapses and the time is freed, spoken")
    deposit_reason: Literal["service", "no_shows"] | None = Field(
        None, description="Why a deposit is asked: the service always needs one, or the caller missed "
                          "appointments before (the business's no-show policy); explain it kindly. Null when the "
                          "caller is not proved to be the customer (their own number, a proof): say only that a "
                          "deposit is needed")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ToolProblem(BaseModel):
    """Returned (as an error result) when the call cannot be carried out as asked."""

    code: str = Field(description="Machine-readable reason, e.g. unknown_service, missing_timezone")
    message: str = Field(description="What was wrong and how to fix it in the next call")
    field: str | None = None
    suggestions: list[str] = Field(default_factory=list, description="Real values close to what was given")
    retry_after: int | None = Field(None, description="rate_limited: the seconds to wait before trying again")
    say: str | None = Field(None, description="A sentence to speak to the caller as it is, when the refusal has one")


# --- results ---------------------------------------------------------------------------------------


class QuestionSummary(BaseModel):
    key: str
    question: str
    required: bool
    type: str = Field(description="text, textarea, number, choice or yes_no")
    options: list[str] = Field(description="For choice questions: the answers allowed")


class ServiceSummary(BaseModel):
    key: str
    name: str
    description: str
    duration_minutes: int
    needs: list[str]
    staff: list[str]
    questions: list[QuestionSummary] = Field(description="Ask these before booking; pass them as `answers`")
    deposit: str | None = Field(description="Deposit paid when booking, e.g. '$25.00'; null: none")


class ServicesOut(ToolOutput):
    services: list[ServiceSummary]


class DayHours(BaseModel):
    day: str
    hours: list[str] = Field(description="HH:MM-HH:MM spans, business-local; empty: closed")


class ClosureSummary(BaseModel):
    starts_at: str
    ends_at: str
    reason: str


class BusinessInfoOut(ToolOutput):
    name: str
    timezone: str
    now: str = Field(description="The date and time at the business now, with its offset: 'today' and 'tomorrow' "
                                 "count from its date, which may not be yours or the caller's")
    today: str = Field(description="Its date in words, e.g. 'Tuesday 24 November 2026'")
    address: str | None
    phone: str | None
    policies: str | None
    opening_hours: list[DayHours]
    closures: list[ClosureSummary]
    services: list[str] = Field(description="Service names; call list_services for details")
    locations: list[str] = Field(default_factory=list, description="Branches, for a business with several")


class SlotsOut(ToolOutput):
    service: str
    slots: list[TimeSlot]
    next_openings: list[TimeSlot] = Field(description="When the asked window had nothing: the first openings after it")


class HoldOut(ToolOutput):
    outcome: Literal["held", "slot_taken"]
    hold_id: int | None = None
    expires_at: str | None = None
    expires_in_seconds: int | None = None
    slot: TimeSlot | None = None
    alternatives: list[TimeSlot] = Field(default_factory=list, description="Nearest openings when the time was taken")


class BookingOut(ToolOutput):
    outcome: Literal["booked", "rescheduled", "slot_taken"]
    appointment: Appointment | None = None
    alternatives: list[TimeSlot] = Field(default_factory=list, description="Nearest openings when the time was taken")
    replayed: bool = Field(False, description="True: a retry with the same idempotency_key; nothing new was booked")
    later: list[Appointment] = Field(default_factory=list, description="and_later: the later occurrences moved too")


class OccurrenceLine(BaseModel):
    requested: str = Field(description="The asked time, spoken")
    outcome: Literal["booked", "moved", "taken", "refused", "not_booked"]
    appointment: Appointment | None = Field(None, description="booked or moved: the booking (moved: at another time)")
    alternatives: list[TimeSlot] = Field(default_factory=list, description="taken: the nearest openings")
    problem: str | None = Field(None, description="refused: why")


class SeriesOut(ToolOutput):
    outcome: Literal["booked", "partly_booked", "not_booked"]
    series_id: int | None = None
    occurrences: list[OccurrenceLine]
    replayed: bool = False


class ChangeOut(ToolOutput):
    outcome: Literal["cancelled", "confirmed", "needs_agreement"]
    appointment: Appointment | None = Field(None, description="Null only when outcome is needs_agreement")
    already: bool = Field(False, description="It was already in that state; nothing changed")
    reason_code: str | None = Field(None, description="needs_agreement: why (late_terms_not_accepted: inside the "
                                                      "cancellation cutoff, it costs something)")
    acknowledge_with: str | None = Field(None, description="needs_agreement: the argument to set to true in the "
                                                           "same call once the caller agrees (nothing changed yet)")
    fee: str | None = Field(None, description="What this change cost, e.g. 'the $20.00 deposit is kept'")
    later: list[Appointment] = Field(default_factory=list, description="and_later: the later occurrences changed "
                                                                       "too")


class AppointmentsOut(ToolOutput):
    appointments: list[Appointment]
    near_codes: list[str] = Field(default_factory=list,
                                  description="This caller's codes one symbol away from the code given")


class WaitlistOut(ToolOutput):
    outcome: Literal["waitlisted"]
    waitlist_id: int
    service: str
    earliest_date: str
    latest_date: str
    earliest_time: str
    latest_time: str
    party_size: int = Field(1, description="People the wish is for: a time is offered only with room for all")


class HistoryLine(BaseModel):
    at: str = Field(description="ISO 8601")
    what: str = Field(description="One line: what happened (times in the customer's zone)")
    kind: str
    code: str | None = Field(description="The booking it concerns, if any")


class CustomerHistoryOut(ToolOutput):
    customer_name: str
    bookings: int
    no_shows: int
    events: list[HistoryLine] = Field(description="Oldest first")


class CodeSentOut(ToolOutput):
    outcome: Literal["code_sent"]
    challenge: str = Field(description="Send it back to verify_code with the code the customer reads out")
    expires_at: str = Field(description="ISO 8601: when the code stops working")
    sent_by: Literal["sms", "email"] = Field(description="Where the code goes, if the contact books here")


class ContactProvedOut(ToolOutput):
    outcome: Literal["proved"]
    proof: str = Field(description="Pass it as `proof` to find_appointments, reschedule_appointment and "
                                   "cancel_appointment")
    expires_at: str = Field(description="ISO 8601: when the proof stops working (30 minutes)")
