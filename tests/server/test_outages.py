"""A database that drops out for a moment: every channel answers a clear retryable error (503 with Retry-After,
or the tools' `temporarily_unavailable`), never a bare 500; a real bug still is a 500."""
from __future__ import annotations

import json

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from nextslot.core.service import BookingService
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

SLOT = "2026-11-24T09:00:00+00:00"


class FailingService(BookingService):
    """The real service, except that looking for slots (with their views or as a page's bare openings) and
    booking meet `error`."""

    error: Exception

    def find_slots(self, *args, **kwargs):
        raise self.error

    def find_openings(self, *args, **kwargs):
        raise self.error

    def book(self, *args, **kwargs):
        raise self.error


def dropped() -> OperationalError:
    return OperationalError("SELECT", {}, psycopg.errors.AdminShutdown("terminating connection due to "
                                                                        "administrator command"))


@pytest.fixture
def failing(session_factory, clock) -> FailingService:
    service = FailingService(session_factory, clock=clock)
    service.error = dropped()
    return service


@pytest.fixture
def client(failing, make_business, api_key):
    business = make_business("clinic")
    with TestClient(create_app(Settings(secret_key="outage-tests"), service=failing),
                    raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {api_key(business)}"
        slug = client.get("/v1/config").json()["business"]["slug"]
        yield client, slug, business


def test_the_staff_api_answers_503_with_retry_after_in_its_error_shape(client):
    http, _, _ = client
    slots = http.get("/v1/slots", params={"service": "consultation"})
    booked = http.post("/v1/bookings", headers={"Idempotency-Key": "k-1"}, json={
        "service": "consultation", "starts_at": SLOT, "customer": {"name": "Ann", "phone": "+447911123456"}})

    for answer in (slots, booked):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "temporarily_unavailable"


def test_the_booking_page_asks_the_visitor_to_send_it_again(client):
    http, slug, _ = client
    page = http.get(f"/b/{slug}/consultation")
    assert page.status_code == 503 and page.headers["retry-after"] == "1"
    assert "send it again" in page.text and "text/html" in page.headers["content-type"]


def test_every_connection_busy_past_the_wait_is_answered_as_busy_not_broken(failing, client):
    http, _, business = client
    failing.error = PoolTimeout("no database place came free within 30 s")
    answer = http.get("/v1/slots", params={"service": "consultation"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "temporarily_unavailable"
    reply = execute("find_available_slots", {"service": "consultation"}, ToolContext(failing, business, "mcp"))
    assert not reply.ok and reply.data["error"]["code"] == "temporarily_unavailable"


def test_agent_tools_answer_a_retryable_error_on_every_channel(failing, client):
    _, _, business = client
    reply = execute("book_appointment", {"service": "consultation", "starts_at": SLOT, "customer_name": "Ann",
                                         "phone": "+447911123456", "idempotency_key": "call-1"},
                    ToolContext(failing, business, "mcp"))
    assert not reply.ok and reply.data["error"]["code"] == "temporarily_unavailable"
    assert "same arguments" in json.loads(reply.text())["error"]["message"]


def test_a_database_error_that_is_a_bug_stays_a_500_without_its_text(failing, client):
    http, _, business = client
    failing.error = IntegrityError("INSERT INTO customers", {"name": "Ann"}, psycopg.errors.UniqueViolation("dup"))
    answer = http.get("/v1/slots", params={"service": "consultation"})
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error"
    reply = execute("find_available_slots", {"service": "consultation"}, ToolContext(failing, business, "mcp"))
    assert not reply.ok and reply.data["error"]["code"] == "internal_error"
    for text in (answer.text, reply.text()):
        assert "INSERT" not in text and "Ann" not in text and "UniqueViolation" not in text


def test_mcp_answers_503_when_the_key_check_cannot_reach_the_database(client, api_key, monkeypatch):
    http, _, business = client
    fresh = api_key(business)  # not yet remembered: this request must ask the database

    def key_check_fails(*args):
        raise dropped()

    monkeypatch.setattr("nextslot.core.accounts.key_cache.live_key", key_check_fails)
    answer = http.post("http://127.0.0.1:8000/mcp", headers={"Accept": "application/json, text/event-stream",
                                                             "Authorization": f"Bearer {fresh}"}, json={
        "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    # a JSON-RPC error body: the SDK's client passes it on, where a bare status would read "error response"
    assert answer.json()["error"]["data"]["code"] == "temporarily_unavailable"
