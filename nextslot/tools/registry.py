"""The one list of agent tools. MCP, OpenAI function calling and the voice webhooks are all generated from it,
and all run a call through `execute`, so every channel validates, answers and fails the same way."""
from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from nextslot import incidents
from nextslot.schemas import tool_results as r
from nextslot.schemas import tools as t
from nextslot.storage.outage import database_unreachable
from nextslot.telemetry import metrics
from nextslot.tools import customer_handlers, handlers, series_handler
from nextslot.tools.context import ToolContext

UNAVAILABLE = ("The booking system could not reach its database, or it was too busy, for a moment. Call this tool "
               "again in a second with the same arguments (and the same idempotency_key for a booking or change): "
               "nothing is done twice.")


@dataclass(frozen=True)
class Effects:
    """What calling a tool does, as the MCP tool annotations say it: a client may run reads without asking,
    and should confirm a destructive call with the person first. Every tool states all four."""

    read_only: bool  # changes nothing
    destructive: bool  # may undo or replace what exists (a booking cancelled, a time given up)
    idempotent: bool  # the same call again changes nothing more
    open_world: bool  # reaches beyond this business's own book (none do: messages go out through the outbox)


READS = Effects(read_only=True, destructive=False, idempotent=True, open_world=False)
ADDS = Effects(read_only=False, destructive=False, idempotent=False, open_world=False)  # replayed only by key
SETS = Effects(read_only=False, destructive=False, idempotent=True, open_world=False)  # again: "already", one entry
REPLACES = Effects(read_only=False, destructive=True, idempotent=False, open_world=False)
REMOVES = Effects(read_only=False, destructive=True, idempotent=True, open_world=False)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str  # written for a model: when to call it and what to tell the person
    input_model: type[t.ToolInput]
    output_model: type[r.ToolOutput]
    handler: Callable[[ToolContext, Any], r.ToolOutput | r.ToolProblem]
    effects: Effects

    @property
    def read_only(self) -> bool:
        return self.effects.read_only

    def input_schema(self) -> dict[str, Any]:
        return untitled(self.input_model.model_json_schema())

    def output_schema(self) -> dict[str, Any]:
        return untitled(self.output_model.model_json_schema(by_alias=True, mode="serialization"))


SCHEMA_MAPS = ("properties", "$defs", "patternProperties")  # their keys are names, their values schemas
SCHEMA_VALUES = ("default", "const", "enum", "examples")  # data, not schemas


def untitled(schema: Any) -> Any:
    """The schema without pydantic's generated titles ("Starts At" for `starts_at`), which say nothing the names
    do not: 13% of the tool list, which every MCP session fetches and every model reads, and about a quarter of
    the server's work to send it (the SDK serializes and checks the list four times)."""
    if isinstance(schema, list):
        return [untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: ({name: untitled(sub) for name, sub in value.items()} if key in SCHEMA_MAPS and isinstance(value, dict)
                  else value if key in SCHEMA_VALUES else untitled(value))
            for key, value in schema.items() if not (key == "title" and isinstance(value, str))}


WriteBudget = Literal["bookings", "holds"]
# the tools that make something a caller could repeat until a calendar is full, by the budget each spends (the
# chats' caps, `conversations/limits.py`; the key-less ways in, `server/public_writes.py`)
WRITE_BUDGETS: dict[str, WriteBudget] = {"book_appointment": "bookings", "book_series": "bookings",
                                         "join_waitlist": "bookings", "hold_slot": "holds"}
MADE = ("booked", "partly_booked", "waitlisted", "held")  # a write tool's outcome when it made something


@dataclass(frozen=True)
class ToolReply:
    """A tool's answer as data: the result model dumped to JSON types, or {"error": problem}."""

    ok: bool
    data: dict[str, Any]

    def text(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))

    @property
    def say(self) -> str:
        refusal = self.data.get("error") or {}
        return self.data.get("say") or refusal.get("say") or refusal.get("message", "")


SPECS = (
    ToolSpec(
        "list_services",
        "List the services this business offers (key, name, duration, who can do it). Call it when the caller "
        "asks what is available or names a service you cannot match exactly.",
        t.ListServicesIn, r.ServicesOut, handlers.list_services, READS,
    ),
    ToolSpec(
        "get_business_info",
        "Get the business's name, address, phone, opening hours by weekday, upcoming closures and policies "
        "(e.g. cancellation rules), and its date and time now. Call it for questions about where, when open, or "
        "rules, and to know which date 'today' or 'tomorrow' is there.",
        t.BusinessInfoIn, r.BusinessInfoOut, handlers.get_business_info, READS,
    ),
    ToolSpec(
        "find_available_slots",
        "Find genuinely free start times for a service. Give a date (or nothing for the coming week), optionally "
        "a time-of-day range and a staff member. Offer the caller two or three of the returned times, read from "
        "`spoken`; then pass the chosen slot's `starts_at` unchanged to hold_slot or book_appointment. If `slots` "
        "is empty, offer `next_openings` instead.",
        t.FindSlotsIn, r.SlotsOut, handlers.find_available_slots, READS,
    ),
    ToolSpec(
        "hold_slot",
        "Hold a start time for a few minutes while you collect the caller's name and number, so nobody else takes "
        "it. Then call book_appointment with the returned hold_id. If outcome is slot_taken, offer the "
        "`alternatives` (someone else just took the time).",
        t.HoldSlotIn, r.HoldOut, handlers.hold_slot, ADDS,
    ),
    ToolSpec(
        "book_appointment",
        "Book a service at a start time for the caller. Needs their name and a phone number or email. If outcome "
        "is booked, read `say` (it includes the booking code, spaced for speaking). If outcome is slot_taken, "
        "the time was taken a moment ago: offer the `alternatives` and book the one they pick. Send an "
        "idempotency_key so a retry after a timeout can never book twice.",
        t.BookIn, r.BookingOut, handlers.book_appointment, ADDS,
    ),
    ToolSpec(
        "book_series",
        "Book a recurring series in one call (\"every Tuesday at 10 for 6 weeks\"): the first time (from "
        "find_available_slots), how often and how many. Ask the caller what to do if some dates are taken: mode "
        "all_or_none books every one or none, skip_taken books the free ones, nearest_free books the nearest free "
        "time within a day for each taken one. Read `say`; `occurrences` lists each date's outcome.",
        t.BookSeriesIn, r.SeriesOut, series_handler.book_series, ADDS,
    ),
    ToolSpec(
        "reschedule_appointment",
        "Move an existing appointment (by its booking code) to a new start time, found with find_available_slots. "
        "The old time is only released if the new one is secured; if outcome is slot_taken, nothing changed and "
        "`alternatives` lists the nearest free times. For a recurring series, and_later=true moves this and every "
        "later occurrence by the same change of day and time, all or none.",
        t.RescheduleIn, r.BookingOut, handlers.reschedule_appointment, REPLACES,
    ),
    ToolSpec(
        "cancel_appointment",
        "Cancel an appointment by its booking code, once the caller has clearly asked to cancel. The time is "
        "freed at once. Cancelling something already cancelled is not an error (already=true). and_later=true "
        "also cancels every later occurrence of a recurring series. If outcome is "
        "needs_agreement, it is late and costs something: read `say` (it asks whether to still cancel) and, only "
        "if the caller agrees, call again with accept_late_terms=true.",
        t.CancelIn, r.ChangeOut, handlers.cancel_appointment, REMOVES,
    ),
    ToolSpec(
        "confirm_appointment",
        "Record that the caller confirms they will attend an appointment (by booking code).",
        t.ConfirmIn, r.ChangeOut, handlers.confirm_appointment, SETS,
    ),
    ToolSpec(
        "find_appointments",
        "Look up the caller's appointments by phone number, email or booking code (upcoming ones unless "
        "include_past). Use it before rescheduling or cancelling when the caller does not know their code, or to "
        "check a code. If the code matches nothing but the phone does, `near_codes` lists their similar codes.",
        t.FindAppointmentsIn, r.AppointmentsOut, customer_handlers.find_appointments, READS,
    ),
    ToolSpec(
        "customer_history",
        "The caller's history with this business (by their phone, else the phone or email given): bookings, moves, "
        "cancellations, no-shows, deposits, messages and replies, oldest first. Use it when the caller asks what "
        "happened (\"did you get my cancellation?\") or why a deposit is asked.",
        t.CustomerHistoryIn, r.CustomerHistoryOut, customer_handlers.customer_history, READS,
    ),
    ToolSpec(
        "join_waitlist",
        "Put the caller on the waitlist for a service when no offered time suits them: give the range of dates "
        "and, if they have one, times of day and a preferred staff member. They are messaged when a matching time "
        "frees up.",
        t.JoinWaitlistIn, r.WaitlistOut, handlers.join_waitlist, SETS,
    ),
)
TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in SPECS}


def error(code: str, message: str, field: str | None = None, suggestions: list[str] | None = None,
          say: str | None = None) -> ToolReply:
    problem = r.ToolProblem(code=code, message=message, field=field, suggestions=suggestions or [], say=say)
    return ToolReply(False, {"error": problem.model_dump(mode="json")})


def invalid_arguments(spec: ToolSpec, exc: ValidationError) -> ToolReply:
    """One sentence per wrong field, naming the field, so the model can fix them all in the next call."""
    parts, first = [], None
    for e in exc.errors(include_url=False):
        where = ".".join(str(x) for x in e["loc"]) or "arguments"
        first = first or where
        if e["type"] == "missing":
            parts.append(f"{where} is required")
        elif e["type"] == "extra_forbidden":
            parts.append(f"{where} is not a parameter of {spec.name}")
        else:
            parts.append(f"{where}: {str(e['msg']).removeprefix('Value error, ')}")
    allowed = ", ".join(spec.input_model.model_fields)
    return error("invalid_arguments", f"{'; '.join(parts)}. Parameters: {allowed}.", first)


def execute(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """Run a tool (below), timed per channel, tool and outcome."""
    with metrics.Timer() as timer:
        reply = run(name, arguments, ctx)
    outcome = "ok" if reply.ok else str((reply.data.get("error") or {}).get("code", "error"))[:40]
    metrics.TOOL_CALLS.labels(ctx.channel, name if name in TOOLS else "unknown", outcome).observe(timer.seconds)
    return reply


def run(name: str, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """Validate the arguments, run the tool, and answer with data, never an exception: a retryable
    `temporarily_unavailable` error when the database was out of reach, and for a bug an `internal_error`
    carrying only the reference under which the traceback was logged."""
    spec = TOOLS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(TOOLS), n=3)
        return error("unknown_tool", f"There is no tool '{name}'.", "name", close or list(TOOLS))
    return execute_spec(spec, arguments, ctx)


def execute_spec(spec: ToolSpec, arguments: Mapping[str, Any] | str | None, ctx: ToolContext) -> ToolReply:
    """`execute` for a tool given by its spec (the public endpoint's own tools are not in the registry)."""
    name = spec.name
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return error("invalid_json", f"The arguments are not valid JSON ({exc.msg} at {exc.pos}).")
        except (ValueError, RecursionError):  # a number over 4,300 digits, nesting too deep
            return error("invalid_json", "The arguments are JSON this server cannot read (a number too long, "
                                         "or nesting too deep).")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        return error("invalid_arguments", "The arguments must be a JSON object of named parameters.")
    try:
        args = spec.input_model.model_validate(dict(arguments))
    except ValidationError as exc:
        return invalid_arguments(spec, exc)
    try:
        result = spec.handler(ctx, args)
    except Exception as exc:
        if database_unreachable(exc):
            return error("temporarily_unavailable", UNAVAILABLE)  # a retry is safe: writes carry idempotency keys
        return error("internal_error", incidents.message(incidents.report(exc, f"tool {name}")))
    if isinstance(result, r.ToolProblem):
        return ToolReply(False, {"error": result.model_dump(mode="json")})
    return ToolReply(True, result.model_dump(mode="json", by_alias=True))
