"""Conversation evals: multi-turn chats over WhatsApp and SMS, scored from the database rows they leave.

Each scenario in `evals/chats/*.yaml` is data: a business (an example plus overrides), the customer's number and
channel, a setup (other customers' bookings), the turns (what the customer writes, photos and locations, bursts of
messages, Twilio's retries, another customer booking meanwhile, time moving on) and, for the model path, the
script a scripted OpenAI-compatible model on loopback follows (tool calls, words, slow answers, errors). Every
message goes through the inbound webhook's own handler (keyword fast path, WhatsApp window, the conversation
intake), is answered by the conversation engine as a scheduler process runs it, and the replies go through the
outbox and the real `twilio` client to the fake Twilio API. The score comes from the rows: bookings, the
conversation (mode, language, hand-off), its messages and their errors, model calls, tool calls; reply texts are
checked too when the scenario names them. `nextslot eval --chats` runs them offline; with `--model` a live model
plays the agent (scripted-only scenarios are left out, reply texts are not judged).
"""
from __future__ import annotations

import itertools
import secrets
import statistics
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evals.agent_evals import DEFAULT_NOW, FrozenClock, business_config, create_business
from evals.bench_figures import p99
from evals.eval_report import ROOT, Call, ScenarioResult, record, run_suite, summarize
from evals.eval_scoring import check_state
from evals.fakes import FakeTwilio
from evals.scripted_model import ScriptedModel, scripted_model, step_of
from nextslot.conversations.engine import ConversationEngine
from nextslot.core.service import BookingService
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.reminders.inbound import Conversations, handle_reply
from nextslot.schemas.commands import BookingCreate, CustomerIn
from nextslot.settings import Settings
from nextslot.storage.tables import (
    Booking,
    Conversation,
    ConversationMessage,
    ConversationToolCall,
    ModelCall,
)

CHATS = Path(__file__).resolve().parent / "chats"
SIDS = itertools.count(1)


@dataclass(frozen=True)
class LiveModel:
    """A real model behind an OpenAI-compatible endpoint, instead of the scripted one."""

    model: str
    base_url: str | None
    api_key: str | None
    timeout: float = 60.0


def load_chats(directory: Path = CHATS, only: str | None = None) -> list[dict[str, Any]]:
    """Read every conversation scenario, sorted by file then order."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        found += [{**scenario, "file": path.name} for scenario in (data if isinstance(data, list) else [data])]
    names = [s["name"] for s in found]
    if duplicates := {n for n in names if names.count(n) > 1}:
        raise ValueError(f"conversation scenario names used twice: {sorted(duplicates)}")
    if only is not None:
        found = [s for s in found if s["name"] == only]
        if not found:
            raise LookupError(f"no conversation scenario named {only!r}; there are: {', '.join(names)}")
    return found


@dataclass
class Chat:
    """One scenario's world: its business and number, the clock, the engine and dispatcher, the fake Twilio."""

    scenario: dict[str, Any]
    session_factory: sessionmaker[Session]
    business_id: int
    number: str  # the business's own number, written to
    clock: FrozenClock
    service: BookingService
    engine: ConversationEngine
    dispatcher: Dispatcher
    twilio: FakeTwilio
    idle: timedelta
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)  # setup bookings by id: code, starts_at
    phones: dict[str, str] = field(default_factory=dict)  # the scenario's names for customers -> their numbers
    last_sid: str = ""
    reply_ms: list[float] = field(default_factory=list)  # each message: received to replies accepted by Twilio

    def write(self, phone: str, channel: str, body: str, media: dict[str, Any] | None = None,
              sid: str | None = None) -> str | None:
        """The customer's message, handled as the webhook handles it; the fast path's answer, if it gave one."""
        self.last_sid = sid or f"SM{next(SIDS):028d}{uuid.uuid4().hex[:4]}"
        if channel == "whatsapp":
            self.twilio.customer_wrote(phone, self.number)  # Twilio relayed it: WhatsApp's window opens there too
        sender = f"whatsapp:{phone}" if channel == "whatsapp" else phone
        return handle_reply(self.service, channel, sender, body, self.last_sid,
                            Conversations(self.idle, self.number, media or {}))

    def answer(self) -> None:
        """Run the engine and the outbox as a scheduler tick would, until nothing is left to do."""
        while self.engine.process_due() > 0:
            pass
        while self.dispatcher.dispatch_due() > 0:
            pass

    def conversation(self, phone: str) -> Conversation | None:
        with self.session_factory() as s:
            return s.scalars(select(Conversation).where(Conversation.business_id == self.business_id,
                                                        Conversation.phone == phone)
                             .order_by(Conversation.id.desc())).first()

    def messages(self, phone: str) -> list[ConversationMessage]:
        with self.session_factory() as s:
            return list(s.scalars(select(ConversationMessage).join(Conversation).where(
                Conversation.business_id == self.business_id, Conversation.phone == phone)
                .order_by(ConversationMessage.id)))

    def phone(self, name: str) -> str:
        """A customer's number: the scenario names its customers (ann, vic) and each run gives them numbers of
        their own, so no run or test meets another's customers (the fast path looks a number up everywhere)."""
        if name.startswith("+"):
            return name
        if name not in self.phones:
            self.phones[name] = f"+447912{secrets.randbelow(10**6):06d}"
            self.refs[name] = {"phone": self.phones[name]}
        return self.phones[name]

    def filled(self, text: str) -> str:
        """`{mine.code}`, `{vic.phone}` in a turn or a model step: a setup booking's or a customer's value."""
        for ref, values in self.refs.items():
            for key, value in values.items():
                text = text.replace(f"{{{ref}.{key}}}", str(value))
        return text


def filled(value: Any, chat: Chat) -> Any:
    if isinstance(value, str):
        return chat.filled(value)
    if isinstance(value, list):
        return [filled(v, chat) for v in value]
    if isinstance(value, dict):
        return {k: filled(v, chat) for k, v in value.items()}
    return value


def setting_values(scenario: dict[str, Any], twilio: FakeTwilio, model: ScriptedModel | None,
                   live: LiveModel | None) -> Settings:
    values: dict[str, Any] = {"public_url": "https://book.example.com", **twilio.settings(),
                              **(scenario.get("settings") or {})}
    if "model" in scenario and live is not None:
        values.update(conversation_model=live.model, conversation_base_url=live.base_url,
                      conversation_api_key=live.api_key, conversation_model_timeout_seconds=live.timeout)
    elif "model" in scenario and model is not None:
        values.update(conversation_model="scripted", conversation_base_url=model.base_url)
    return Settings(**values)


def play_chat(scenario: dict[str, Any], session_factory: sessionmaker[Session], model: ScriptedModel | None = None,
              live: LiveModel | None = None, twilio: FakeTwilio | None = None) -> ScenarioResult:
    """Play one conversation scenario on a fresh business and score it from the database.

    One fake Twilio serves a whole run (give it), as one Twilio account would: a scenario that moves its clock on
    may send another's due reminders, and Twilio knows every customer's WhatsApp window."""
    result = ScenarioResult(scenario["name"], passed=False)
    clock = FrozenClock(datetime.fromisoformat(scenario["now"]) if scenario.get("now") else DEFAULT_NOW)
    number = f"+4420{uuid.uuid4().int % 10**8:08d}"  # the business's own: its conversations are told apart by it
    config = business_config(scenario)
    details = config["business"].setdefault("details", {})
    details["conversations"] = {**(details.get("conversations") or {}), "numbers": [number]}
    business_id = create_business(session_factory, config)
    with ExitStack() as stack:
        if twilio is None:
            twilio = stack.enter_context(FakeTwilio())
        twilio.clock = clock
        settings = setting_values(scenario, twilio, model, live)
        service = BookingService(session_factory, clock=clock)
        chat = Chat(scenario, session_factory, business_id, number, clock, service,
                    ConversationEngine(service, settings), Dispatcher(session_factory, build_channels(settings),
                                                                      clock=clock),
                    twilio, timedelta(minutes=settings.conversation_idle_minutes))
        for step in scenario.get("setup") or []:
            act(chat, step, result)
        if model is not None:
            model.steps = [step_of(filled(s, chat)) for s in scenario.get("model") or []]
            model.requests.clear()
            model.repeat_last = bool(scenario.get("model_repeats"))
        for turn in scenario.get("turns") or []:
            act(chat, turn, result, judge_words=live is None or "model" not in scenario)
        score(chat, scenario.get("expect") or {}, result)
        if model is not None and "model" in scenario:
            result.model_requests = len(model.requests)
    summarize(result)
    if chat.reply_ms:  # a conversation's own figure: each message until its replies are accepted by Twilio
        result.notes.append(f"reply p50 {statistics.median(chat.reply_ms):.0f} ms, p99 {p99(chat.reply_ms):.0f} ms "
                            f"(received to accepted by Twilio, model time included)")
    return result


def act(chat: Chat, step: dict[str, Any], result: ScenarioResult, judge_words: bool = True) -> None:
    """One setup step or turn: another customer books, time moves, or the customer writes (and is answered)."""
    scenario = chat.scenario
    if "book" in step:  # someone books (the setup's customer, or another one meanwhile)
        b = step["book"]
        booked = chat.service.book(chat.business_id, BookingCreate(
            service=b["service"], starts_at=datetime.fromisoformat(b["starts_at"]),
            customer=CustomerIn(name=b.get("name", "Other Customer"), phone=chat.phone(b["phone"]),
                                language=b.get("language", "en"))))
        if not hasattr(booked, "booking"):
            result.failures.append(f"setup booking {step.get('id', '')} was refused: {booked}")
            return
        if step.get("id"):
            chat.refs[step["id"]] = {"code": booked.booking.code, "starts_at": booked.booking.starts_at.utc.isoformat()}
        return
    if "advance_minutes" in step:
        chat.clock.now += timedelta(minutes=step["advance_minutes"])
        if step.get("close_idle"):
            chat.engine.close_idle()
        return
    phone = chat.phone(step.get("from", scenario["phone"]))
    channel = step.get("channel", scenario.get("channel", "whatsapp"))
    before = len([m for m in chat.messages(phone) if m.direction == "out"])
    started = time.perf_counter()
    quick: list[str] = []
    if "burst" in step:  # several messages before anyone answers, a second apart
        for text in step["burst"]:
            if (said := chat.write(phone, channel, chat.filled(text))) is not None:
                quick.append(said)
            chat.clock.now += timedelta(seconds=1)
            result.turns += 1
    elif step.get("retry"):  # Twilio sends the same MessageSid again
        if (said := chat.write(phone, channel, chat.filled(step.get("say", "")), sid=chat.last_sid)) is not None:
            quick.append(said)
    else:
        said = chat.write(phone, channel, chat.filled(step.get("say", "")), step.get("media"))
        if said is not None:
            quick.append(said)
        result.turns += 1
    chat.answer()
    chat.reply_ms.append((time.perf_counter() - started) * 1000)
    replies = quick + [m.body for m in chat.messages(phone) if m.direction == "out"][before:]
    if judge_words:
        judge(filled(step, chat), replies, result)


def judge(step: dict[str, Any], replies: list[str], result: ScenarioResult) -> None:
    """The turn's replies against what the scenario says they hold (all of them, joined)."""
    said = "\n".join(replies)
    where = f"turn {step.get('say', step.get('burst', ''))!r}"
    if "replies" in step and len(replies) != step["replies"]:
        result.failures.append(f"{where}: {len(replies)} replies, expected {step['replies']}: {replies}")
    for wanted in as_list(step.get("reply")):
        if wanted not in said:
            result.failures.append(f"{where}: the reply does not say {wanted!r}: {said!r}")
    for unwanted in as_list(step.get("not_reply")):
        if unwanted in said:
            result.failures.append(f"{where}: the reply says {unwanted!r}: {said!r}")


def as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def score(chat: Chat, expect: dict[str, Any], result: ScenarioResult) -> None:
    """Compare the rows with the expected end state; one failure line per difference."""
    state = {**expect, "bookings_of": {chat.phone(who): wanted for who, wanted in
                                       (expect.get("bookings_of") or {}).items()}}
    result.failures += check_state(chat.session_factory, chat.business_id, filled(state, chat))
    phone = chat.phone(chat.scenario["phone"])
    with chat.session_factory() as s:
        tools = s.scalars(select(ConversationToolCall).where(ConversationToolCall.business_id == chat.business_id)
                          .order_by(ConversationToolCall.id)).all()
        calls = s.scalars(select(ModelCall).where(ModelCall.business_id == chat.business_id)).all()
        for ref, want in (expect.get("untouched") or {}).items():  # another customer's booking, as it was
            code = chat.refs[ref]["code"]
            b = s.scalars(select(Booking).where(Booking.business_id == chat.business_id, Booking.code == code)).one()
            if (b.status, b.starts_at.isoformat()) != (want, chat.refs[ref]["starts_at"]):
                result.failures.append(f"{ref} ({code}) is {b.status} at {b.starts_at.isoformat()}, expected "
                                       f"{want} at {chat.refs[ref]['starts_at']}")
    expected_errors = set(as_list(expect.get("tool_errors")))
    for t in tools:
        code = None if t.ok else ((t.result or {}).get("error") or {}).get("code", "error")
        record(result, Call(t.by, t.tool, t.ok, code, code if code in expected_errors else None,
                            float(t.latency_ms or 0)))
    for code in expected_errors - {c.error for c in result.calls}:
        result.failures.append(f"expected a tool call refused with {code}, there was none")
    if "tools" in expect and [[t.tool, t.ok] for t in tools] != expect["tools"]:
        result.failures.append(f"tool calls were {[[t.tool, t.ok] for t in tools]}, expected {expect['tools']}")
    if "model_calls" in expect and len(calls) != expect["model_calls"]:
        result.failures.append(f"{len(calls)} model calls, expected {expect['model_calls']}")
    if "model_errors" in expect and sorted(c.error or "" for c in calls if c.error) != sorted(expect["model_errors"]):
        result.failures.append(f"model call errors {[c.error for c in calls]}, expected {expect['model_errors']}")
    conversation = chat.conversation(phone)
    for key, want in (expect.get("conversation") or {}).items():
        got = getattr(conversation, key, None) if conversation is not None else None
        if key == "handed_off":
            got = conversation is not None and conversation.handoff_at is not None
        if got != want:
            result.failures.append(f"the conversation's {key} is {got!r}, expected {want!r}")
    messages = chat.messages(phone)
    if "conversations" in expect:
        with chat.session_factory() as s:
            count = len(s.scalars(select(Conversation.id).where(Conversation.business_id == chat.business_id,
                                                                Conversation.phone == phone)).all())
        if count != expect["conversations"]:
            result.failures.append(f"{count} conversations, expected {expect['conversations']}")
    if "inbound" in expect:
        inbound = [m for m in messages if m.direction == "in"]
        if len(inbound) != expect["inbound"]:
            result.failures.append(f"{len(inbound)} messages stored from the customer, expected {expect['inbound']}")
    if "message_errors" in expect:
        errors = [m.error for m in messages if m.direction == "in"]
        if errors != expect["message_errors"]:
            result.failures.append(f"inbound message errors {errors}, expected {expect['message_errors']}")
    if "media_stored" in expect:
        media = [m.media for m in messages if m.direction == "in" and m.media]
        if len(media) != expect["media_stored"]:
            result.failures.append(f"{len(media)} messages with media stored, expected {expect['media_stored']}")
    if expect.get("replies_sent_on"):  # every reply the engine wrote was taken by Twilio on this channel
        out = [m for m in messages if m.direction == "out"]
        prefix = "whatsapp:" if expect["replies_sent_on"] == "whatsapp" else ""
        sent = [f for f in chat.twilio.accepted.values() if f.get("To") == f"{prefix}{phone}"]
        if len(sent) < len(out):
            result.failures.append(f"{len(out)} replies written, {len(sent)} taken by Twilio on "
                                   f"{expect['replies_sent_on']}")


def run_chat_evals(settings: Any, only: str | None = None, json_path: Path | None = None,
                   live: LiveModel | None = None) -> int:
    """`nextslot eval --chats`: every conversation scenario (or one) on a throwaway database."""
    scenarios = load_chats(only=only)
    if live is not None:
        scenarios = [s for s in scenarios if not s.get("scripted_only")]
    with scripted_model() as model, FakeTwilio() as twilio:
        return run_suite(settings, scenarios,
                         lambda s, factory: play_chat(s, factory, None if live else model, live, twilio),
                         json_path or ROOT / "artifacts" / ("chat_evals_live.json" if live else "chat_evals.json"),
                         "live" if live else "scripted", f"live model {live.model}" if live else
                         "guided flow and a scripted model", {"model": live.model, "base_url": live.base_url}
                         if live else None)


__all__ = ["LiveModel", "load_chats", "play_chat", "run_chat_evals"]
