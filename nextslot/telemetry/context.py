"""The request id: taken from the HTTP request (`X-Request-ID`) or made up, carried through everything done for
it (log lines, the outbox rows and webhook deliveries written in its transaction) and bound again by the
scheduler while it sends those rows, so one booking can be followed from the request to the message it caused.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("nextslot_request_id", default=None)
ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # what a caller's (or a proxy's) id may look like


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def request_id_from(header: str | None) -> str:
    """The caller's id when it looks like one, else a new one (never free text into our logs)."""
    return header if header and ACCEPTED.match(header) else uuid.uuid4().hex


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)
