"""`nextslot bench chat`: how long a customer who writes on WhatsApp waits for the answer, the model's own time
left out.

A real `nextslot serve` process takes Twilio's signed inbound webhook, two `nextslot scheduler` processes answer
the conversations (the lease, the engine, the outbox), and the real `twilio` client hands each reply to a fake
Twilio API in this process, which notes when it took it: the figure is the time from the customer's message being
posted to its reply being accepted by "Twilio". Customers chat side by side: a booking by the guided flow's
numbered choices, and chats with a model behind an OpenAI-compatible endpoint that answers at once (one tool call,
then words), so what is measured is ours. The aim: p99 under a second.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import yaml
from fastapi import FastAPI, Request
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, Row, Stopwatch, latency_row, machine, print_table
from evals.bench_processes import fleet
from evals.fakes import FakeTwilio
from evals.loopback import LiveServer
from nextslot.core.business.config import apply_config
from nextslot.core.results import Rejected
from nextslot.schemas.config import BusinessConfig
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn
from nextslot.storage.tables import Booking, ConversationMessage
from nextslot.storage.uow import SqlAlchemyUnitOfWork

CLINIC = Path(__file__).resolve().parent.parent / "examples" / "clinic.yaml"
PUBLIC_URL = "https://chat.bench.example"
TARGET_MS = 1000
REPLY_TIMEOUT = 30.0  # seconds: past this a reply counts as lost and the run fails
PHONES = (f"+447912{n:06d}" for n in itertools.count(700000))


def run_bench_chat(settings: Any, quick: bool = False) -> int:
    rounds, burst = (1, 4) if quick else (6, 24)
    with throwaway_database(settings, f"nextslot chat benchmark{' (quick)' if quick else ''}") as url:
        for line in machine(libpq_dsn(url)):
            print(line)
        with FakeTwilio() as twilio, LiveServer(instant_model()) as model:
            guided, modelled = seed(url, model.url)
            env = {"NEXTSLOT_DATABASE_URL": url, "NEXTSLOT_PUBLIC_URL": PUBLIC_URL,
                   "NEXTSLOT_ALLOW_LOCAL_PAYMENTS": "true",  # the clinic's no-show deposits: no money moves here
                   **{f"NEXTSLOT_{k.upper()}": str(v) for k, v in twilio.settings().items()}}
            try:
                with fleet(1, 2, env, env) as (servers, _):
                    rows = asyncio.run(measure(servers[0].base, twilio, guided, modelled, rounds, burst))
            except BenchFailure as failure:
                print(f"FAIL {failure}")
                return 1
            rows.append(outcomes(url))
    print("one `nextslot serve` and two `nextslot scheduler` processes, the fake Twilio API and the instant model in "
          "this process, all on this machine's cores")
    print()
    print_table(rows)
    return 0


def instant_model() -> FastAPI:
    """An OpenAI-compatible endpoint that answers at once: a search for tomorrow first, then words."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body["messages"][-1]["role"] == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": "Tomorrow has times at 9:00 and 10:30."}
        else:
            tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function", "function": {
                    "name": "find_available_slots",
                    "arguments": json.dumps({"service": "consultation", "date": tomorrow})}}]}
        return {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020}}

    return app


def seed(url: str, model_url: str) -> tuple[str, str]:
    """Two clinics, each with a WhatsApp number of its own: one answered by the guided flow, one by the model.
    Return their numbers."""
    engine = engine_for(url, pool_size=1)
    try:
        factory = build_session_factory(engine)
        numbers = []
        for n, conversations in enumerate(({"model": False}, {"model": "instant", "base_url": f"{model_url}/v1"})):
            config = yaml.safe_load(CLINIC.read_text())
            number = f"+44207946{n:04d}"
            config["business"]["slug"] = f"bench-clinic-{n}"
            config["business"]["details"]["conversations"] = {"numbers": [number], **conversations}
            applied = apply_config(SqlAlchemyUnitOfWork(factory), BusinessConfig.model_validate(config))
            if isinstance(applied, Rejected):
                raise BenchFailure(applied.message)
            numbers.append(number)
        return numbers[0], numbers[1]
    finally:
        engine.dispose()


async def measure(base: str, twilio: FakeTwilio, guided: str, modelled: str, rounds: int, burst: int
                  ) -> list[Row]:
    """Two customers on each path chatting side by side, `rounds` times over (the latency a customer sees), then
    `burst` customers on each path all at once (how the queue drains)."""
    acks = Stopwatch()
    steady = {"guided": Stopwatch(), "model": Stopwatch()}
    heavy = {"guided": Stopwatch(), "model": Stopwatch()}
    customers = itertools.count()
    model_turns = ["hi, anything tomorrow?", "and the day after?", "thanks"]
    async with httpx2.AsyncClient(base_url=base, timeout=REPLY_TIMEOUT) as http:
        for _ in range(rounds):
            await asyncio.gather(*[chat(http, twilio, guided, guided_turns(next(customers)), acks, steady["guided"])
                                   for _ in range(2)],
                                 *[chat(http, twilio, modelled, model_turns, acks, steady["model"]) for _ in range(2)])
        started = time.monotonic()
        await asyncio.gather(*[chat(http, twilio, guided, guided_turns(next(customers)), acks, heavy["guided"])
                               for _ in range(burst)],
                             *[chat(http, twilio, modelled, model_turns, acks, heavy["model"]) for _ in range(burst)])
        took = time.monotonic() - started
    answered = len(heavy["guided"].samples) + len(heavy["model"].samples)
    return [
        latency_row("WhatsApp: message to reply taken by Twilio, guided flow", steady["guided"], TARGET_MS,
                    "2 + 2 customers chatting side by side, each booking in 7 messages"),
        latency_row("WhatsApp: message to reply taken by Twilio, model (instant)", steady["model"], TARGET_MS,
                    "the other 2: 3 messages each, a tool call and two model requests a message"),
        latency_row("the same, a burst: guided flow", heavy["guided"],
                    note=f"{burst} + {burst} customers at once: {answered} messages answered in {took:.1f} s "
                         f"({answered / took:.1f} a second by two scheduler processes)"),
        latency_row("the same, a burst: model (instant)", heavy["model"]),
        latency_row("the webhook's answer to Twilio", acks, 15_000, "Twilio waits 15 s at most"),
    ]


def guided_turns(i: int) -> list[str]:
    """Book by the numbers: a weekday and a time spread over the lists, a name, yes."""
    return ["hello, I'd like to book", "1", "1", str(2 + (i // 4) % 4), str(1 + i % 4), f"Bench Customer {i}", "1"]


async def chat(http: httpx2.AsyncClient, twilio: FakeTwilio, to: str, turns: list[str], acks: Stopwatch,
               replies: Stopwatch) -> None:
    phone = next(PHONES)
    validator = RequestValidator(twilio.auth_token)
    for text in turns:
        form = {"From": f"whatsapp:{phone}", "To": f"whatsapp:{to}", "Body": text,
                "MessageSid": f"SM{uuid.uuid4().hex}"}
        signature = validator.compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
        seen = len(sent_to(twilio, phone))
        twilio.customer_wrote(phone, to)
        started = time.monotonic()
        response = await http.post("/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})
        acks.samples.append(time.monotonic() - started)
        if response.status_code != 200:
            raise BenchFailure(f"the webhook answered {response.status_code}: {response.text[:200]}")
        while len(got := sent_to(twilio, phone)) <= seen:
            if time.monotonic() - started > REPLY_TIMEOUT:
                raise BenchFailure(f"no reply within {REPLY_TIMEOUT:g} s to {text!r}")
            await asyncio.sleep(0.005)
        replies.samples.append(twilio.accepted_at[got[seen]] - started)


def sent_to(twilio: FakeTwilio, phone: str) -> list[str]:
    """The SIDs of the messages Twilio took for this customer, in order."""
    return [sid for sid, form in list(twilio.accepted.items()) if form.get("To") == f"whatsapp:{phone}"]


def outcomes(url: str) -> Row:
    engine = engine_for(url, pool_size=1)
    try:
        with build_session_factory(engine)() as s:
            booked = s.scalar(select(func.count()).select_from(Booking))
            answered = s.scalar(select(func.count()).select_from(ConversationMessage).where(
                ConversationMessage.direction == "in", ConversationMessage.processed_at.is_not(None)))
    finally:
        engine.dispose()
    return Row("what the chats did", note=f"{answered} messages answered, {booked} bookings made by the guided flow "
                                          "(a time another customer took first, or a day with fewer times, is "
                                          "answered with the nearest times or a question)")
