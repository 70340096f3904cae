"""Fixtures for message channels, shared with the dispatcher tests: `fake_twilio` and `smtp_server`."""
from collections.abc import Iterator

import pytest

from tests.reminders.fakes import FakeSmtpServer, FakeTwilio


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """Twilio's Messages API faked on loopback: `fake_twilio.client()`, `.requests`, `.fail_next(...)`."""
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    """A real SMTP server on loopback: `smtp_server.messages`, `.refuse_next(code, at="RCPT"|"DATA")`."""
    with FakeSmtpServer() as server:
        yield server
