"""`/ready` asks the database; `/health` only the process. A caller's request id is kept only when it looks like one."""
from __future__ import annotations

import httpx2

from nextslot.core.service import BookingService
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.telemetry.context import request_id_from
from tests.conftest import LiveServer


def test_ready_answers_200_with_the_database_and_503_without(live_server):
    with live_server() as server:
        ready = httpx2.get(f"{server.url}/ready", timeout=30)
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok"}
    down = engine_for("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    try:
        with LiveServer(create_app(Settings(), service=BookingService(build_session_factory(down)))) as server:
            assert httpx2.get(f"{server.url}/health", timeout=30).status_code == 200
            unready = httpx2.get(f"{server.url}/ready", timeout=30)
    finally:
        down.dispose()
    assert unready.status_code == 503
    assert unready.json() == {"status": "unavailable", "database": "unreachable"}  # no driver text


def test_a_request_id_is_the_callers_when_it_looks_like_one_else_a_new_one(live_server):
    assert request_id_from("abc-123.x:y_z") == "abc-123.x:y_z"
    for junk in (None, "", "x" * 65, "has space", "line\nbreak", '{"json": 1}'):
        made = request_id_from(junk)
        assert made != junk and len(made) == 32
    with live_server() as server:
        assert httpx2.get(f"{server.url}/health", headers={"X-Request-ID": "mine-1"}, timeout=30
                          ).headers["x-request-id"] == "mine-1"


def test_the_local_outbox_answers_loopback_clients_only_and_not_through_a_proxy(live_server, tmp_path):
    from nextslot.reminders.channels.base import OutgoingMessage
    from nextslot.reminders.channels.local_outbox import LocalOutboxChannel, outbox_file

    LocalOutboxChannel("sms", outbox_file(tmp_path)).send(OutgoingMessage("+447911123000", "Booked: X1", "", "n-1"))
    with live_server(settings=Settings(local_outbox=True, data_dir=tmp_path)) as server:
        shown = httpx2.get(f"{server.url}/outbox.json", timeout=30)
        assert shown.status_code == 200 and shown.json()["messages"][0]["body"] == "Booked: X1"
        proxied = httpx2.get(f"{server.url}/outbox", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
        assert proxied.status_code == 403 and "Booked" not in proxied.text
    with live_server(settings=Settings(data_dir=tmp_path)) as server:  # not turned on: no such page
        assert httpx2.get(f"{server.url}/outbox", timeout=30).status_code == 404
