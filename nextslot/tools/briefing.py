"""What an assistant should know before its first tool call: the calling business's profile, services and
opening hours as MCP resources, and the "receptionist" prompt written from them.

Both are read through `registry.execute`, like a tool call, so they show exactly what the tools would answer
and fail the same way (a database blip is `temporarily_unavailable`, never a traceback).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, ToolReply, execute

PROMPT = "receptionist"
MIME = "application/json"


@dataclass(frozen=True)
class Resource:
    uri: str
    name: str
    description: str
    tool: str  # the tool whose answer this is (and whose permission reading it needs)
    shape: Callable[[dict[str, Any]], dict[str, Any]]


def without_say(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "say"}


def hours_only(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("name", "timezone", "opening_hours", "closures")}


RESOURCES = (
    Resource("nextslot://business/profile", "profile", "The business: name, address, phone, time zone, policies, "
             "opening hours, upcoming closures and service names.", "get_business_info", without_say),
    Resource("nextslot://business/services", "services", "Every bookable service: key, name, duration, staff, "
             "deposit and the questions to ask before booking.", "list_services", without_say),
    Resource("nextslot://business/opening-hours", "opening-hours", "Opening hours by weekday (business-local "
             "HH:MM spans) and upcoming closures.", "get_business_info", hours_only),
)
BY_URI = {r.uri: r for r in RESOURCES}


def read(resource: Resource, ctx: ToolContext) -> ToolReply:
    """The resource's JSON, or the tool's error."""
    reply = execute(resource.tool, {}, ctx)
    return ToolReply(True, resource.shape(reply.data)) if reply.ok else reply


def as_text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1)


def receptionist(ctx: ToolContext, usable: Iterable[str] = TOOLS) -> tuple[str, str] | ToolReply:
    """(description, instructions) for answering as the business's receptionist with the tools this connection
    may use, or the error that kept the business's details from being read."""
    info, services = execute("get_business_info", {}, ctx), execute("list_services", {}, ctx)
    for reply in (info, services):
        if not reply.ok:
            return reply
    b, usable = info.data, set(usable)
    lines = [f"You answer for {b['name']}" + (f", {b['address']}" if b["address"] else "") + ", as its receptionist: "
             "you help people find a time and book, and look after their existing appointments.",
             f"The business's time zone is {b['timezone']}; a branch's times come in its own zone. When the person "
             "is elsewhere, pass their zone as caller_timezone so times come back in it.",
             f"It is {b['today']} there as this is written ({b['now']}); 'today' and 'tomorrow' are the business's "
             "dates: get_business_info says its date again when you need it."]
    if b["phone"]:
        lines.append(f"Its phone number is {b['phone']}.")
    open_days = [f"{d['day']} {', '.join(d['hours'])}" for d in b["opening_hours"] if d["hours"]]
    lines.append("Opening hours: " + ("; ".join(open_days) if open_days else "none set") + ".")
    if b["closures"]:
        lines.append("Closed: " + "; ".join(f"{c['starts_at']} to {c['ends_at']}" + (f" ({c['reason']})" if c["reason"]
                                                                                     else "") for c in b["closures"]) + ".")
    lines.append("Services (key: name, length):")
    for s in services.data["services"]:
        extra = f", deposit {s['deposit']}" if s["deposit"] else ""
        asks = f"; ask first: {'; '.join(q['question'] for q in s['questions'])}" if s["questions"] else ""
        lines.append(f"- {s['key']}: {s['name']}, {s['duration_minutes']} min{extra}{asks}")
    if b["policies"]:
        lines.append(f"The business's own policies, to follow and to tell people when they apply: {b['policies']}")
    lines += ["", "How to use the tools:", *(step for tool, step in STEPS if tool in usable)]
    missing = [name for name in TOOLS if name not in usable]
    if missing:
        lines.append(f"This connection may not use {', '.join(missing)}: if the person needs that, say the "
                     "business will help them directly.")
    lines += ["Only offer times a tool returned, never invent one. Read each result's `say` to the person as it "
              "is; if they speak Spanish, French or German, pass `language` (es, fr, de) and it comes in theirs. An `error` names what to fix: fix it and call again once, else apologise and offer the "
              "business's phone number."]
    return f"Receptionist for {b['name']}: its hours, services, policies and how to book", "\n".join(lines)


STEPS = (  # (tool, the instruction that uses it): only the tools a connection may call are explained
    ("find_available_slots", "- Find free times with find_available_slots (a service key or name, a date or "
                             "nothing for the coming week). Offer two or three, read from `spoken`."),
    ("hold_slot", "- While you collect a name and phone number, hold_slot keeps the chosen time for a few "
                  "minutes; pass its hold_id to book_appointment."),
    ("book_appointment", "- Book with book_appointment: the chosen slot's `starts_at` unchanged, the person's "
                         "name and a phone number or email, answers to the service's questions, and an "
                         "idempotency_key of your own so a retry never books twice. Tell them the booking code. "
                         "outcome slot_taken means someone else just took the time: offer the `alternatives`."),
    ("book_series", "- For a regular appointment (\"every Tuesday at 10 for 6 weeks\") use book_series once; ask "
                    "whether to book only if every date is free, to skip taken dates, or to take the nearest free "
                    "time for them."),
    ("join_waitlist", "- When no offered time suits, join_waitlist puts them on the waitlist for a date range."),
    ("request_code", "- Before an existing appointment can be found, moved or cancelled, the person proves it is "
                     "theirs: request_code with the phone or email they booked with, then verify_code with the "
                     "code they read to you and the `challenge`; pass the returned `proof` to those tools."),
    ("find_appointments", "- To look after an existing appointment, find it with find_appointments (their phone, "
                          "email or booking code)."),
    ("reschedule_appointment", "- reschedule_appointment moves it to a new free time; the old time is kept if the "
                               "new one cannot be had. Confirm the new time with the person before calling."),
    ("cancel_appointment", "- cancel_appointment only once the person has clearly asked to cancel; read back "
                           "which appointment first. If it answers needs_agreement, read its `say` (what "
                           "cancelling this late costs) and call again with accept_late_terms=true only if they "
                           "agree."),
    ("confirm_appointment", "- confirm_appointment records that they will come."),
    ("customer_history", "- customer_history tells what happened before (moves, cancellations, no-shows, "
                         "deposits, messages) when they ask."),
)
