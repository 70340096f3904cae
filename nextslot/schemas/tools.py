"""Agent tool inputs and results: the contract models see (MCP, OpenAI function calling, voice webhooks).

Inputs are flat, every optional field may be null (OpenAI strict mode sends null for "not given"),
and descriptions tell a model when to use a field. Results are short and carry `say`: a sentence an
agent can read to the person as it is.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nextslot.schemas.inputs import Input, PersonName
from nextslot.schemas.statuses import BookingStatus


class ToolInput(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolOutput(BaseModel):
    say: str = Field(description="What to tell the person, ready to be spoken")


# --- shared pieces ---------------------------------------------------------------------------------

STARTS_AT = ("The start time the caller chose, ISO 8601, ideally exactly as returned by find_available_slots "
             "(e.g. 2026-11-26T17:00:00+00:00). Without an offset, `timezone` says which zone it is in.")
TIMEZONE = ("IANA time zone of times given without an offset, e.g. Europe/London. "
            "Leave null when the times carry an offset.")
CALLER_TIMEZONE = ("The caller's IANA time zone if they are elsewhere (e.g. America/New_York); answers then give "
                   "times in their zone. Null: the business's zone.")
STAFF = "A person or resource the caller asked for, by name (e.g. 'Dr Patel') or key. Null: anyone free."
IDEMPOTENCY = ("A unique id for this request (e.g. a UUID you generate once). If you retry after a timeout, send "
               "the same id: it never books twice. Null: no retry protection.")
LOCATION = ("A branch the caller wants, by name or key (get_business_info lists them). Null: any branch; each "
            "time then says where.")
LANGUAGE = ("The caller's language for `say`: en, es, fr or de (dates and times are said the local way). Null: the "
            "customer's own language when known, else English.")
Language = Literal["en", "es", "fr", "de"]
PARTY = ("How many people the booking is for (a class seat each, or a member of staff each, as the service says). "
         "Null: one.")
CODE = "The booking code the caller gives, e.g. 'K7M 4PX' (spaces, dashes and case do not matter)."


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
    customer_name: str
    location: str | None = Field(None, description="The branch, for a business with several")
    deposit_due: str | None = Field(None, description="Set while a deposit is unpaid, e.g. '$25.00': the booking "
                                                      "is confirmed once paid (a pay link went to the caller)")
    pay_by: str | None = Field(None, description="When an unpaid deposit lapses and the time is freed, spoken")
    deposit_reason: Literal["service", "no_shows"] | None = Field(
        None, description="Why a deposit is asked: the service always needs one, or the caller missed "
                          "appointments before (the business's no-show policy); explain it kindly")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ToolProblem(BaseModel):
    """Returned (as an error result) when the call cannot be carried out as asked."""

    code: str = Field(description="Machine-readable reason, e.g. unknown_service, missing_timezone")
    message: str = Field(description="What was wrong and how to fix it in the next call")
    field: str | None = None
    suggestions: list[str] = Field(default_factory=list, description="Real values close to what was given")


# --- inputs ----------------------------------------------------------------------------------------


class ListServicesIn(ToolInput):
    pass


class BusinessInfoIn(ToolInput):
    pass


class FindSlotsIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name from list_services, e.g. 'consultation'")
    date: dt.date | None = Field(None, description="A day to look at (YYYY-MM-DD, in `timezone` or the business's "
                                                    "zone). Null: from now on.")
    days: int | None = Field(None, ge=1, le=31, description="How many days to search. Default 1 with a date, else 7.")
    earliest_time: dt.time | None = Field(None, description="Only starts at or after this time of day (HH:MM)")
    latest_time: dt.time | None = Field(None, description="Only starts at or before this time of day (HH:MM)")
    timezone: str | None = Field(None, max_length=64,
                                 description="IANA zone for `date` and the times of day. Null: the business's.")
    caller_timezone: str | None = Field(None, max_length=64, description=CALLER_TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    limit: int | None = Field(None, ge=1, le=20, description="How many openings to return (default 5)")
    location: str | None = Field(None, max_length=200, description=LOCATION)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)
    language: Language | None = Field(None, description=LANGUAGE)


class HoldSlotIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name")
    starts_at: dt.datetime = Field(description=STARTS_AT)
    timezone: str | None = Field(None, max_length=64, description=TIMEZONE)
    caller_timezone: str | None = Field(None, max_length=64, description=CALLER_TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    idempotency_key: str | None = Field(None, max_length=200, description=IDEMPOTENCY)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)
    location: str | None = Field(None, max_length=200, description=LOCATION)
    language: Language | None = Field(None, description=LANGUAGE)


class IntakeAnswer(ToolInput):
    question: str = Field(max_length=200, description="The question's key, from list_services")
    answer: str = Field(max_length=2000, description="The caller's answer; for yes/no questions 'yes' or 'no'")


class BookIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name")
    starts_at: dt.datetime = Field(description=STARTS_AT)
    timezone: str | None = Field(None, max_length=64, description=TIMEZONE)
    customer_name: PersonName = Field(description="The caller's full name")
    phone: str | None = Field(None, max_length=40, description="Mobile number; local format is fine "
                                                               "(read in the business's country)")
    email: str | None = Field(None, max_length=320, description="Email, if no phone or if the caller prefers it")
    caller_timezone: str | None = Field(None, max_length=64, description=CALLER_TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    hold_id: int | None = Field(None, description="The hold_id from hold_slot, if you held this time")
    answers: list[IntakeAnswer] | None = Field(None, max_length=30, description="Answers to the service's "
                                               "questions (list_services shows them; ask the required ones)")
    notes: str | None = Field(None, max_length=2000, description="Anything the business should know, in brief")
    idempotency_key: str | None = Field(None, max_length=200, description=IDEMPOTENCY)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)
    location: str | None = Field(None, max_length=200, description=LOCATION)
    language: Language | None = Field(None, description=LANGUAGE)


class BookSeriesIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name")
    first_starts_at: dt.datetime = Field(description="The first occurrence, found with find_available_slots. " + STARTS_AT)
    timezone: str | None = Field(None, max_length=64, description=TIMEZONE)
    every: Literal["day", "week"] = Field("week", description="How often it repeats")
    interval: int | None = Field(None, ge=1, le=8, description="Every 2 weeks: 2. Null: 1")
    count: int = Field(ge=2, le=52, description="How many occurrences, the first included ('for 6 weeks': 6)")
    mode: Literal["all_or_none", "skip_taken", "nearest_free"] = Field(
        "all_or_none", description="Ask the caller: all_or_none books every occurrence or none; skip_taken books "
                                   "the free ones; nearest_free also books the nearest free time (within a day) "
                                   "for each taken one")
    customer_name: PersonName = Field(description="The caller's full name")
    phone: str | None = Field(None, max_length=40, description="Mobile number; local format is fine")
    email: str | None = Field(None, max_length=320, description="Email, if no phone or if the caller prefers it")
    caller_timezone: str | None = Field(None, max_length=64, description=CALLER_TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    notes: str | None = Field(None, max_length=2000, description="Anything the business should know, in brief")
    idempotency_key: str | None = Field(None, max_length=200, description=IDEMPOTENCY)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)
    location: str | None = Field(None, max_length=200, description=LOCATION)
    language: Language | None = Field(None, description=LANGUAGE)


class RescheduleIn(ToolInput):
    code: str = Field(max_length=40, description=CODE)
    new_starts_at: dt.datetime = Field(description=STARTS_AT)
    timezone: str | None = Field(None, max_length=64, description=TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    location: str | None = Field(None, max_length=200, description="Move to this branch (by name or key). "
                                                                   "Null: the same branch")
    idempotency_key: str | None = Field(None, max_length=200, description=IDEMPOTENCY)
    and_later: bool | None = Field(None, description="True: move every later occurrence the same way of its recurring "
                                                     "series (an appointment booked with book_series)")
    language: Language | None = Field(None, description=LANGUAGE)


class CancelIn(ToolInput):
    code: str = Field(max_length=40, description=CODE)
    reason: str | None = Field(None, max_length=500, description="Why, in the caller's words (optional)")
    accept_late_terms: bool | None = Field(
        None, description="Set true only after a previous call answered outcome=needs_agreement and the caller "
                          "agreed to the late-cancel cost it stated. Null: not agreed (yet).")
    and_later: bool | None = Field(None, description="True: also every later occurrence of its recurring "
                                                     "series (an appointment booked with book_series)")
    language: Language | None = Field(None, description=LANGUAGE)


class ConfirmIn(ToolInput):
    code: str = Field(max_length=40, description=CODE)
    language: Language | None = Field(None, description=LANGUAGE)


class FindAppointmentsIn(ToolInput):
    phone: str | None = Field(None, max_length=40, description="The caller's phone number")
    email: str | None = Field(None, max_length=320, description="The caller's email")
    code: str | None = Field(None, max_length=40, description=CODE)
    include_past: bool | None = Field(None, description="Also list past appointments (default false)")


class CustomerHistoryIn(ToolInput):
    phone: str | None = Field(None, max_length=40, description="The customer's phone; null: the caller's number")
    email: str | None = Field(None, max_length=320, description="The customer's email, if no phone")
    limit: int | None = Field(None, ge=1, le=100, description="Only the latest events (default 20)")


class JoinWaitlistIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name")
    customer_name: PersonName
    phone: str | None = Field(None, max_length=40, description="How to reach them when a time frees up")
    email: str | None = Field(None, max_length=320)
    earliest_date: dt.date = Field(description="First acceptable day (YYYY-MM-DD, business-local)")
    latest_date: dt.date = Field(description="Last acceptable day")
    earliest_time: dt.time | None = Field(None, description="Earliest start time of day (HH:MM). Null: any.")
    latest_time: dt.time | None = Field(None, description="Latest end time of day (HH:MM). Null: any.")
    staff: str | None = Field(None, max_length=200, description=STAFF)


PROOF = ("The proof verify_code returned for the customer's phone or email (it lasts 30 minutes). Only that "
         "contact's own bookings are found or changed with it.")


class RequestCodeIn(ToolInput):
    contact: str = Field(min_length=3, max_length=320, description="The phone number or email the customer booked "
                                                                   "with, as they say it")


class VerifyCodeIn(ToolInput):
    challenge: str = Field(min_length=8, max_length=100, description="The challenge request_code returned")
    code: str = Field(min_length=1, max_length=20, description="The code the customer received, as they read it")


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
