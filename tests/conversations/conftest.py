"""Conversations end to end: a business that gave out a WhatsApp number, the running server with Twilio's signed
webhook, the engine (as a scheduler runs it) and the dispatcher sending to a fake Twilio API on loopback."""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from evals.fakes import FakeTwilio
from nextslot.conversations.engine import ConversationEngine
from nextslot.reminders.channels import build_channels
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.settings import Settings
from nextslot.storage.tables import Conversation, ConversationMessage
from tests.conftest import example
from tests.reminders.conftest import quiet_outbox  # noqa: F401 - the same autouse fixture here

PUBLIC_URL = "https://book.example.com"
TOKEN = FakeTwilio.auth_token  # signs the webhooks and lets the dispatcher send to the fake
SIDS = itertools.count(1)


def clinic_config(**conversations: Any) -> dict[str, Any]:
    data = example("clinic")
    number = f"+4420{uuid.uuid4().int % 10**8:08d}"
    details = {**data["business"].get("details", {}), "conversations": {"numbers": [number], **conversations}}
    return {**data, "business": {**data["business"], "details": details}}


@dataclass
class Chat:
    """One business's WhatsApp line: `send` posts a customer's message as Twilio does; `run` answers like a
    scheduler tick and sends the replies; `replies` reads what the fake Twilio API was asked to deliver."""

    server: Any
    engine: ConversationEngine
    dispatcher: Dispatcher
    twilio: FakeTwilio
    to: str
    session_factory: Any
    business_id: int

    def send(self, phone: str, body: str, sid: str | None = None, channel: str = "whatsapp",
             **more: str) -> httpx2.Response:
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        if channel == "whatsapp":  # Twilio relays it, so WhatsApp's 24-hour window opens there too
            self.twilio.customer_wrote(phone, self.to)
        form = {"From": f"{prefix}{phone}", "To": f"{prefix}{self.to}", "Body": body,
                "MessageSid": sid or f"SM{next(SIDS):032d}", **more}
        signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/webhooks/twilio/inbound", form)
        return httpx2.post(f"{self.server.url}/webhooks/twilio/inbound", data=form,
                           headers={"X-Twilio-Signature": signature}, timeout=30)  # a loaded machine

    def run(self) -> int:
        answered = 0
        while (claimed := self.engine.process_due()) > 0:
            answered += claimed
        while self.dispatcher.dispatch_due() > 0:
            pass
        return answered

    def say(self, phone: str, body: str, **more: str) -> str:
        """Send, answer, and return the reply text Twilio was given for this number."""
        before = len(self.answers(phone))
        response = self.send(phone, body, **more)
        assert response.status_code == 200 and "<Message>" not in response.text, response.text
        self.run()
        got = self.answers(phone)
        assert len(got) == before + 1, got
        assert got[-1] in self.replies(phone)  # and the fake Twilio API was given it to deliver
        return got[-1]

    def answers(self, phone: str) -> list[str]:
        """The conversation's replies to this number, oldest first."""
        return [m.body for m in self.messages(phone) if m.direction == "out"]

    def replies(self, phone: str) -> list[str]:
        return [r.get("Body", "") for r in self.twilio.requests if r["To"].removeprefix("whatsapp:") == phone]

    def conversation(self, phone: str) -> Conversation:
        with self.session_factory() as s:
            return s.scalars(select(Conversation).where(Conversation.phone == phone,
                                                        Conversation.business_id == self.business_id)
                             .order_by(Conversation.id.desc())).first()

    def messages(self, phone: str) -> list[ConversationMessage]:
        with self.session_factory() as s:
            return list(s.scalars(select(ConversationMessage).join(Conversation).where(  # this business's only
                Conversation.phone == phone, Conversation.business_id == self.business_id)
                .order_by(ConversationMessage.id)))


@pytest.fixture
def chat_for(live_server, service, make_business, session_factory, clock):
    """`with chat_for(**settings) as chat:` a fresh clinic with its own number, the server, engine and Twilio."""
    from contextlib import contextmanager

    @contextmanager
    def start(config: dict[str, Any] | None = None, **settings: Any) -> Iterator[Chat]:
        business = make_business(config or clinic_config())
        with session_factory() as s:
            from nextslot.storage.tables import Business
            to = s.get(Business, business).details["conversations"]["numbers"][0]
        with FakeTwilio(clock=clock) as twilio:
            both = Settings(public_url=PUBLIC_URL, **twilio.settings(), **settings)
            with live_server(frozen=True, settings=both) as server:
                dispatcher = Dispatcher(session_factory, build_channels(both), clock=clock)
                yield Chat(server, ConversationEngine(service, both), dispatcher, twilio, to, session_factory,
                           business)

    return start
