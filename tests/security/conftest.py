"""The security tests: an attacker's view of the real app, the real database and real loopback servers."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.reminders.conftest import quiet_outbox  # noqa: F401 - an autouse fixture: other tests' messages stay put
from tests.server.staff_api.conftest import api, clinic  # noqa: F401 - a client holding a business's key


class Listener:
    """A raw TCP listener on loopback that counts the connections made to it and answers none of them."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()
