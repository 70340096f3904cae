"""The guided flow: numbered choices that book, move and cancel without a model (service -> day -> time ->
name -> confirm; my bookings -> move or cancel), in the customer's language. It answers every conversation when
no model is configured, and any message the model fails on. It acts only through the sender-bound tools, so a
lost race comes back as alternatives, offered as the next choices.

The state is plain JSON kept on the conversation: the step, what each number means there, and what was chosen.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nextslot.conversations.limits import CHAT_WRITE_CAPS
from nextslot.conversations.words import choices, day_label, say, when
from nextslot.core.instants import load_zone
from nextslot.languages.local_times import repeat_of
from nextslot.reminders.replies import folded_words
from nextslot.schemas.statuses import LIVE
from nextslot.tools.phrases import phrase
from nextslot.tools.registry import ToolReply
from nextslot.tools.render import CUTOFFS

State = dict[str, Any]
DAYS_SHOWN, TIMES_SHOWN, SEARCH_DAYS = 7, 9, 14
MENU_WORDS = {"menu", "hi", "hello", "hola", "bonjour", "hallo", "inicio", "restart"}  # folded: "menü" is "menu"
MENU = ("book", "mine", "person")  # the menu's choices, in order: 1, 2, 3
NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


@dataclass(frozen=True)
class Turn:
    """What one answer needs: who is writing, to whom, and the sender-bound tools."""

    business_name: str
    zone: ZoneInfo
    language: str
    customer_name: str  # "" when the number is new
    run: Callable[[str, dict[str, Any]], ToolReply]
    write_key: str  # idempotency key for the one write a message may make: a redelivery replays it
    today: date | None = None  # the first day to offer: the date now at its place furthest behind (a branch may be
    # a day behind the business); None: the business's date by the wall clock

    def say(self, key: str, **values: str) -> str:
        return say(self.language, key, **values)

    def when(self, iso: str, zone: str | None = None) -> str:
        """The time in `zone` (the tools' answer's: its branch's), else the business's."""
        return when(datetime.fromisoformat(iso), load_zone(zone) or self.zone, self.language)

    def clock(self, iso: str, zone: str | None = None) -> str:
        """'08:30'; on a fall-back night the twin 01:30s say which is which (read in the zone: the ISO offset
        alone cannot tell)."""
        local = datetime.fromisoformat(iso).astimezone(load_zone(zone) or self.zone)
        return f"{local:%H:%M}{repeat_of(local, self.language)}"

    def at(self, iso: str, places: dict[str, str]) -> str:
        """' at Pune' for a time offered among times at several branches: Pune's 09:00 and Manhattan's are two
        instants half a day apart, which their clocks alone say alike."""
        place = places.get(iso)
        return phrase("at_place", self.language, place=place) if place and len(set(places.values())) > 1 else ""


def answer(turn: Turn, state: State, text: str) -> tuple[str, State]:
    """The reply to one message and the state after it; `misses` counts answers in a row that could not help
    (the engine hands the conversation to a person after a few), `handoff` says the customer chose a person."""
    reply, after = step_answer(turn, state, text)
    missed = (reply.startswith(turn.say("not_understood")) or turn.say("failed") in reply
              or (state.get("step") == "menu" and number(text) is None  # words the menu cannot take, again
                  and not set(folded_words(text)) & MENU_WORDS))
    return reply, {**after, "misses": state.get("misses", 0) + 1 if missed else 0}


def step_answer(turn: Turn, state: State, text: str) -> tuple[str, State]:
    step = state.get("step")
    picked = number(text)
    if step is None or picked == 0 or (picked is None and set(folded_words(text)) & MENU_WORDS):
        return menu(turn)
    handler = STEPS.get(step)
    if handler is None:
        return menu(turn)
    if step not in FREE_TEXT and (picked is None or not 1 <= picked <= len(state.get("options", []))):
        if step == "menu":
            return menu(turn)
        return f"{turn.say('not_understood')}\n{state.get('question', '')}".strip(), state
    return handler(turn, state, text, picked)


def number(text: str) -> int | None:
    match = NUMBER.match(text)
    return int(match.group(1)) if match else None


def ask(state: State, question: str, options: list[str], values: list[Any], language: str) -> tuple[str, State]:
    """Put a numbered question; remember what each number stands for."""
    shown = choices(question, options, language)
    return shown, {**state, "options": values, "question": shown}


def menu(turn: Turn, prefix: str = "") -> tuple[str, State]:
    name = f" {turn.customer_name.split()[0]}" if turn.customer_name.strip() else ""
    text, state = ask({"step": "menu"}, turn.say("menu", name=name, business=turn.business_name),
                      [turn.say(o) for o in MENU], list(MENU), turn.language)
    return (f"{prefix}\n{text}" if prefix else text), state


# --- booking ---------------------------------------------------------------------------------------------------


def on_menu(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    if state["options"][picked - 1] == "person":
        return turn.say("handoff", business=turn.business_name), {"handoff": "menu"}
    if state["options"][picked - 1] == "mine":
        return my_bookings(turn)
    reply = turn.run("list_services", {})
    services = reply.data.get("services", []) if reply.ok else []
    if not services:
        return menu(turn, turn.say("failed"))
    if len(services) == 1:
        return pick_day(turn, {"service": service_choice(services[0])})
    return ask({"step": "service"}, turn.say("pick_service"), [s["name"] for s in services],
               [service_choice(s) for s in services], turn.language)


def service_choice(service: dict[str, Any]) -> dict[str, Any]:
    required = [q for q in service.get("questions", []) if q["required"]]
    return {"key": service["key"], "name": service["name"], "questions": required}


def on_service(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    return pick_day(turn, {"service": state["options"][picked - 1]})


def pick_day(turn: Turn, chosen: State) -> tuple[str, State]:
    """The next days with free times for the chosen service."""
    service = chosen["service"]
    by_day: dict[str, list[str]] = {}
    zones: dict[str, str] = {}  # each time's zone, as the tool gave it: its branch's
    places: dict[str, str] = {}  # each time's branch, when it has one
    today = datetime.now(turn.zone).date() if turn.today is None else turn.today
    for offset in range(SEARCH_DAYS):  # a day at a time: the tool returns at most 20 openings a call
        day = (today + timedelta(days=offset)).isoformat()
        reply = turn.run("find_available_slots", {"service": service["key"], "date": day, "limit": TIMES_SHOWN})
        if not reply.ok:
            return menu(turn, turn.say("failed"))
        if reply.data["slots"]:
            by_day[day] = [slot["starts_at"] for slot in reply.data["slots"]]
            zones.update({slot["starts_at"]: slot["timezone"] for slot in reply.data["slots"]})
            places.update({slot["starts_at"]: slot["location"] for slot in reply.data["slots"]
                           if slot.get("location")})
        if len(by_day) == DAYS_SHOWN:
            break
    if not by_day:
        return menu(turn, turn.say("nothing_free", service=service["name"]))
    days = sorted(by_day)[:DAYS_SHOWN]
    return ask({**chosen, "step": "day", "slots": {d: by_day[d][:TIMES_SHOWN] for d in days}, "zones": zones,
                "places": places},
               turn.say("pick_day", service=service["name"]),
               [day_label(date.fromisoformat(d), turn.language) for d in days], days, turn.language)


def on_day(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    day = state["options"][picked - 1]
    times = state["slots"][day]
    label = day_label(date.fromisoformat(day), turn.language)
    zones, places = state.get("zones", {}), state.get("places", {})
    return ask({**state, "step": "time"}, turn.say("pick_time", day=label),
               [turn.clock(t, zones.get(t)) + turn.at(t, places) for t in times], times, turn.language)


def on_time(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    chosen = {**state, "starts_at": state["options"][picked - 1]}
    if chosen.get("code"):  # moving a booking: the time is the whole question
        return move(turn, chosen)
    if not chosen.get("name"):
        if not turn.customer_name.strip():
            return turn.say("ask_name"), {**chosen, "step": "name", "options": [], "question": turn.say("ask_name")}
        chosen["name"] = turn.customer_name
    return next_question(turn, chosen)


def on_name(turn: Turn, state: State, text: str, _: int | None) -> tuple[str, State]:
    name = " ".join(text.split())[:200]
    if not name or number(name) is not None:
        return turn.say("ask_name"), state
    return next_question(turn, {**state, "name": name})


def next_question(turn: Turn, state: State) -> tuple[str, State]:
    """The service's required questions, one a message; then the summary to confirm."""
    questions, answers = state["service"]["questions"], state.get("answers", [])
    if len(answers) < len(questions):
        q = questions[len(answers)]
        if q["type"] == "choice" and q["options"]:
            return ask({**state, "step": "question"}, q["question"], q["options"], q["options"], turn.language)
        if q["type"] == "yes_no":
            return ask({**state, "step": "question"}, q["question"], [turn.say("yes"), turn.say("no")],
                       ["yes", "no"], turn.language)
        return q["question"], {**state, "step": "question", "options": [], "question": q["question"]}
    summary = turn.say("confirm", service=state["service"]["name"],
                       when=turn.when(state["starts_at"], state.get("zones", {}).get(state["starts_at"]))
                       + turn.at(state["starts_at"], state.get("places", {})),
                       name=state["name"])
    return ask({**state, "step": "confirm"}, summary, [turn.say("yes"), turn.say("no")], ["yes", "no"], turn.language)


def on_question(turn: Turn, state: State, text: str, picked: int | None) -> tuple[str, State]:
    q = state["service"]["questions"][len(state.get("answers", []))]
    if state.get("options"):
        if picked is None or not 1 <= picked <= len(state["options"]):
            return f"{turn.say('not_understood')}\n{state['question']}", state
        value = state["options"][picked - 1]
    else:
        value = text.strip()[:2000]
        if not value:
            return q["question"], state
    answers = [*state.get("answers", []), {"question": q["key"], "answer": value}]
    return next_question(turn, {**state, "answers": answers})


def on_confirm(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    if state["options"][picked - 1] == "no":
        return menu(turn, turn.say("kept"))
    reply = turn.run("book_appointment", {
        "service": state["service"]["key"], "starts_at": state["starts_at"], "customer_name": state["name"],
        "answers": state.get("answers") or None, "idempotency_key": turn.write_key})
    return after_write(turn, state, reply, "booked")


def after_write(turn: Turn, state: State, reply: ToolReply, done: str) -> tuple[str, State]:
    """Booked or moved: say so; a lost race: the nearest free times as the next choices; else: sorry."""
    if not reply.ok:
        return menu(turn, refused(turn, reply))
    if reply.data["outcome"] == "slot_taken":
        nearest = reply.data["alternatives"][:TIMES_SHOWN]
        if not nearest:
            return menu(turn, turn.say("nothing_free", service=state["service"]["name"]))
        zones = {**state.get("zones", {}), **{a["starts_at"]: a["timezone"] for a in nearest}}
        places = {**state.get("places", {}), **{a["starts_at"]: a["location"] for a in nearest if a.get("location")}}
        return ask({**state, "step": "time", "zones": zones, "places": places}, turn.say("taken"),
                   [turn.when(a["starts_at"], a["timezone"]) + turn.at(a["starts_at"], places) for a in nearest],
                   [a["starts_at"] for a in nearest], turn.language)
    a = reply.data["appointment"]
    where = turn.at(a["starts_at"], {**state.get("places", {}), a["starts_at"]: a.get("location") or ""})
    text = turn.say(done, service=a["service_name"], when=turn.when(a["starts_at"], a["timezone"]) + where,
                    code=a["code"])
    if a.get("deposit_due"):
        text += " " + turn.say("deposit", amount=a["deposit_due"])
    return text, {"step": "menu", "options": list(MENU), "question": ""}


# --- the customer's own bookings ---------------------------------------------------------------------------------


def my_bookings(turn: Turn) -> tuple[str, State]:
    reply = turn.run("find_appointments", {})
    if not reply.ok and reply.data["error"]["code"] == "verify_first":  # a web chat that has not proved a contact
        return turn.say("verify_first"), {"step": "menu", "options": list(MENU), "question": ""}
    found = [a for a in reply.data.get("appointments", []) if a["status"] in LIVE] if reply.ok else []
    if not found:
        return turn.say("no_bookings"), {"step": "menu", "options": list(MENU), "question": ""}
    options = [f"{a['service_name']}: {turn.when(a['starts_at'], a['timezone'])}" for a in found[:TIMES_SHOWN]]
    values = [{"code": a["code"], "service": a["service"], "service_name": a["service_name"],
               "starts_at": a["starts_at"], "timezone": a["timezone"]} for a in found[:TIMES_SHOWN]]
    return ask({"step": "bookings"}, turn.say("your_bookings"), options, values, turn.language)


def on_bookings(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    booking = state["options"][picked - 1]
    question = turn.say("booking_action", service=booking["service_name"],
                        when=turn.when(booking["starts_at"], booking.get("timezone")))
    return ask({"step": "action", "booking": booking}, question, [turn.say("move"), turn.say("cancel")],
               ["move", "cancel"], turn.language)


def on_action(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    booking = state["booking"]
    if state["options"][picked - 1] == "move":
        service = {"key": booking["service"], "name": booking["service_name"], "questions": []}
        return pick_day(turn, {"service": service, "code": booking["code"]})
    question = turn.say("confirm_cancel", service=booking["service_name"],
                        when=turn.when(booking["starts_at"], booking.get("timezone")))
    return ask({**state, "step": "cancel"}, question, [turn.say("yes_cancel"), turn.say("keep")], ["yes", "no"],
               turn.language)


def on_cancel(turn: Turn, state: State, _: str, picked: int) -> tuple[str, State]:
    if state["options"][picked - 1] == "no":
        return menu(turn, turn.say("kept"))
    reply = turn.run("cancel_appointment", {"code": state["booking"]["code"]})
    if not reply.ok:
        return menu(turn, refused(turn, reply))
    a = reply.data["appointment"]
    return (turn.say("cancelled", service=a["service_name"], when=turn.when(a["starts_at"], a["timezone"])),
            {"step": "menu", "options": list(MENU), "question": ""})


def refused(turn: Turn, reply: ToolReply) -> str:
    """Why a change was refused when the customer can act on it (too close to the start: call; a cap: a person can
    book more), else sorry. The phone or email's own cap (core/booking/public_caps.py) refuses on the contact given
    (`field` "customer"), the chat's day of writes (conversations/limits.py) on no field: each has its words."""
    error = reply.data.get("error") or {}
    if error.get("code") in CHAT_WRITE_CAPS.values():
        return turn.say("too_many_contact" if error.get("field") == "customer" else "too_many_bookings")
    return str(error["message"]) if error.get("code") in CUTOFFS else turn.say("failed")


def move(turn: Turn, state: State) -> tuple[str, State]:
    reply = turn.run("reschedule_appointment", {"code": state["code"], "new_starts_at": state["starts_at"],
                                                "idempotency_key": turn.write_key})
    return after_write(turn, state, reply, "moved")


STEPS: dict[str, Callable[[Turn, State, str, Any], tuple[str, State]]] = {
    "menu": on_menu, "service": on_service, "day": on_day, "time": on_time, "name": on_name,
    "question": on_question, "confirm": on_confirm, "bookings": on_bookings, "action": on_action,
    "cancel": on_cancel,
}
FREE_TEXT = {"name", "question"}  # steps that take words, not (only) a number
