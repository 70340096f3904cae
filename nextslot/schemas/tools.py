"""Agent tool inputs: the contract models see (MCP, OpenAI function calling, voice webhooks); results are in
`tool_results.py`.

Inputs are flat, every optional field may be null (OpenAI strict mode sends null for "not given"),
and descriptions tell a model when to use a field.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from nextslot.schemas.inputs import Input, PersonName, StartTime


class ToolInput(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- shared pieces ---------------------------------------------------------------------------------

STARTS_AT = ("The start time the caller chose, ISO 8601, ideally exactly as returned by find_available_slots "
             "(e.g. 2026-11-26T17:00:00+00:00). Without an offset, `timezone` says which zone it is in.")
TIMEZONE = ("IANA time zone of times given without an offset, e.g. Europe/London. "
            "Leave null when the times carry an offset.")
CALLER_TIMEZONE = ("The caller's IANA time zone if they are elsewhere (e.g. America/New_York); answers then give "
                   "times in their zone (a booking's in its customer's own, if the caller is proved to be them). "
                   "Null: the zone of the branch (else the business's).")
STAFF = "A person or resource the caller asked for, by name (e.g. 'Dr Patel') or key. Null: anyone free."
IDEMPOTENCY = ("A unique id for this request (e.g. a UUID you generate once). If you retry after a timeout, send "
               "the same id: it never books twice. Null: no retry protection.")
LOCATION = ("A branch the caller wants, by name or key (get_business_info lists them). Null: any branch; each "
            "time then says where.")
LANGUAGE = ("The caller's language for `say`: en, es, fr or de (dates and times are said the local way). Null: about "
            "a booking, the customer's own language if the caller is proved to be them (their own number, a proof), "
            "else the business's; otherwise English.")
Language = Literal["en", "es", "fr", "de"]
PARTY = ("How many people the booking is for (a class seat each, or a member of staff each, as the service says). "
         "Null: one.")
CODE = "The booking code the caller gives, e.g. 'K7M 4PX' (spaces, dashes and case do not matter)."


# --- inputs ----------------------------------------------------------------------------------------


class ListServicesIn(ToolInput):
    pass


class BusinessInfoIn(ToolInput):
    pass


class FindSlotsIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name from list_services, e.g. 'consultation'")
    date: dt.date | None = Field(None, description="A day to look at (YYYY-MM-DD, in `timezone`, else the branch's "
                                                    "or the business's zone). Null: from now on.")
    days: int | None = Field(None, ge=1, le=31, description="How many days to search. Default 1 with a date, else 7.")
    earliest_time: dt.time | None = Field(None, description="Only starts at or after this time of day (HH:MM)")
    latest_time: dt.time | None = Field(None, description="Only starts at or before this time of day (HH:MM)")
    timezone: str | None = Field(None, max_length=64,
                                 description="IANA zone for `date` and the times of day. Null: the branch's, else "
                                             "the business's.")
    caller_timezone: str | None = Field(None, max_length=64, description=CALLER_TIMEZONE)
    staff: str | None = Field(None, max_length=200, description=STAFF)
    limit: int | None = Field(None, ge=1, le=20, description="How many openings to return (default 5)")
    location: str | None = Field(None, max_length=200, description=LOCATION)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)
    language: Language | None = Field(None, description=LANGUAGE)


class HoldSlotIn(ToolInput):
    service: str = Field(max_length=200, description="Service key or name")
    starts_at: StartTime = Field(description=STARTS_AT)
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
    starts_at: StartTime = Field(description=STARTS_AT)
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
    first_starts_at: StartTime = Field(description="The first occurrence, found with find_available_slots. "
                                                   + STARTS_AT)
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
    new_starts_at: StartTime = Field(description=STARTS_AT)
    timezone: str | None = Field(None, max_length=64, description=TIMEZONE + " The answer's times come in it too "
                                 "(in the customer's own, if the caller is proved to be them).")
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
    earliest_date: dt.date = Field(description="First acceptable day (YYYY-MM-DD, local to the branch)")
    latest_date: dt.date = Field(description="Last acceptable day")
    earliest_time: dt.time | None = Field(None, description="Earliest start time of day (HH:MM). Null: any.")
    latest_time: dt.time | None = Field(None, description="Latest end time of day (HH:MM). Null: any.")
    staff: str | None = Field(None, max_length=200, description=STAFF)
    party_size: int | None = Field(None, ge=1, le=100, description=PARTY)


PROOF = ("The proof verify_code returned for the customer's phone or email (it lasts 30 minutes). Only that "
         "contact's own bookings are found or changed with it.")


class RequestCodeIn(ToolInput):
    contact: str = Field(min_length=3, max_length=320, description="The phone number or email the customer booked "
                                                                   "with, as they say it")


class VerifyCodeIn(ToolInput):
    challenge: str = Field(min_length=8, max_length=100, description="The challenge request_code returned")
    code: str = Field(min_length=1, max_length=20, description="The code the customer received, as they read it")
