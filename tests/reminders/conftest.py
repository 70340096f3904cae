"""Fixtures for message channels, shared with the dispatcher tests: `fake_twilio` and `smtp_server`."""
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from evals.fakes import FakeSmtpServer, FakeTwilio
from nextslot.storage.tables import Notification, WhatsAppWindow


@pytest.fixture(autouse=True)
def quiet_outbox(session_factory) -> None:
    """The test database is shared by the whole run: earlier tests' messages must not be sent here."""
    with session_factory() as s:
        s.execute(update(Notification).where(Notification.status.in_(("pending", "sending", "sent")))
                  .values(status="void"))
        s.commit()


def whatsapp_window(session_factory, business_id: int, phone: str, at, number: str = FakeTwilio.whatsapp_from) -> None:
    """The customer wrote to the business's `number` (ours) on WhatsApp at `at`, as the inbound webhook records it."""
    with session_factory() as s:
        s.add(WhatsAppWindow(business_id=business_id, phone=phone, number=number, last_inbound_at=at))
        s.commit()


@pytest.fixture
def fake_twilio(clock) -> Iterator[FakeTwilio]:
    """Twilio's Messages API faked on loopback: `fake_twilio.client()`, `.requests`, `.fail_next(...)`."""
    with FakeTwilio(clock=clock) as fake:
        yield fake


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    """A real SMTP server on loopback: `smtp_server.messages`, `.refuse_next(code, at="RCPT"|"DATA")`."""
    with FakeSmtpServer() as server:
        yield server
