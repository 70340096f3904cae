"""Prometheus metrics: scraped and parsed after real traffic, behind the token or on a port of their own."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from nextslot.core.results import Booked, SlotTaken
from nextslot.reminders.channels.base import SendResult
from nextslot.reminders.channels.local_outbox import LocalOutboxChannel
from nextslot.reminders.dispatcher import Dispatcher
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.settings import Settings
from nextslot.storage.gate import DatabaseGate
from nextslot.storage.tables import Notification
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.telemetry.collectors import database_registry
from nextslot.telemetry.metrics import serve_metrics
from tests.conftest import free_port

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parsed(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.anyio
async def test_metrics_after_real_traffic_are_scraped_with_the_token_and_parse(live_server, make_business, api_key):
    key = api_key(make_business("clinic"))
    booked_before = value("nextslot_bookings_total", operation="book", outcome="booked", code="")
    taken_before = value("nextslot_bookings_total", operation="book", outcome="slot_taken", code="")
    tool_before = value("nextslot_tool_call_duration_seconds_count", channel="mcp", tool="book_appointment",
                        outcome="ok")
    with live_server(frozen=True, settings=Settings(metrics_token=TOKEN)) as server:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as mcp:
            slots = (await mcp.call_tool("find_available_slots", {"service": "consultation", "staff": "dr-patel",
                                                                  "date": "2026-11-24"})).structured_content
            args = {"service": "consultation", "starts_at": slots["slots"][0]["starts_at"], "customer_name": "Ann",
                    "staff": "dr-patel"}
            first = await mcp.call_tool("book_appointment", {**args, "phone": "07911 123456"})
            second = await mcp.call_tool("book_appointment", {**args, "phone": "07911 223344"})
            assert first.structured_content["outcome"] == "booked"
            assert second.structured_content["outcome"] == "slot_taken"
            await mcp.call_tool("find_available_slots", {"service": "massage"})  # an error outcome
        async with httpx2.AsyncClient(base_url=server.url, timeout=60) as client:
            assert (await client.get("/metrics")).status_code == 401
            assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            scrape = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    samples = parsed(scrape.text)
    assert samples[("nextslot_bookings_total", (("code", ""), ("operation", "book"), ("outcome", "booked")))] \
        == booked_before + 1
    assert samples[("nextslot_bookings_total", (("code", ""), ("operation", "book"), ("outcome", "slot_taken")))] \
        == taken_before + 1
    assert samples[("nextslot_tool_call_duration_seconds_count", (("channel", "mcp"), ("outcome", "ok"),
                                                                   ("tool", "book_appointment")))] == tool_before + 2  # slot_taken is a normal answer
    assert samples[("nextslot_tool_call_duration_seconds_count", (("channel", "mcp"), ("outcome", "unknown_service"),
                                                                   ("tool", "find_available_slots")))] >= 1
    mcp_requests = [v for (name, labels), v in samples.items() if name == "nextslot_http_request_duration_seconds_count"
                    and ("channel", "mcp") in labels and ("route", "/mcp") in labels]
    assert sum(mcp_requests) >= 4
    assert samples[("nextslot_database_up", ())] == 1
    assert samples[("nextslot_outbox_depth", (("kind", "confirmation"), ("queue", "messages")))] >= 1  # no scheduler
    assert samples[("nextslot_outbox_lag_seconds", (("queue", "messages"),))] > 0
    assert ("nextslot_db_pool_size", ()) in samples and ("nextslot_holds_active", ()) in samples
    assert not any("Ann" in str(labels) or "447911" in str(labels) for _, labels in samples)  # no customer data


def test_without_a_token_or_port_there_is_no_metrics_route(live_server):
    with live_server() as server:
        assert httpx2.get(f"{server.url}/metrics", timeout=30).status_code == 404


def test_the_metrics_port_serves_the_same_exposition_and_asks_the_token_when_set(session_factory):
    port = free_port()
    metrics_server = serve_metrics(port, "127.0.0.1", (database_registry(session_factory),), TOKEN)
    try:
        assert httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=30).status_code == 401
        answer = httpx2.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=30)
        assert answer.status_code == 200
        samples = parsed(answer.text)
        assert samples[("nextslot_database_up", ())] == 1 and ("nextslot_db_pool_size", ()) in samples
    finally:
        metrics_server.shutdown()


def test_a_lost_race_is_counted(service, make_business):
    clinic = make_business("clinic")
    lost_before = value("nextslot_lost_races_total", operation="book") + value("nextslot_lost_claims_total")
    slots = service.find_slots(clinic, SlotQuery(service="consultation", resources=["dr-patel", "room-1"],
                                                 limit=5)).slots
    for slot in slots:  # the losers usually meet the winner's claim; retried on another slot if all saw it committed
        barrier, results = threading.Barrier(8), []

        def call(i: int) -> None:
            barrier.wait()
            results.append(service.book(clinic, BookingCreate(
                service="consultation", starts_at=slot.starts_at.utc, resources=["dr-patel", "room-1"],
                source="test", customer=CustomerIn(name=f"Racer {i}", phone=f"+4479111234{i:02d}"))))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(isinstance(r, Booked) for r in results) == 1
        assert sum(isinstance(r, SlotTaken) for r in results) == 7
        if value("nextslot_lost_races_total", operation="book") + value("nextslot_lost_claims_total") > lost_before:
            return
    raise AssertionError("no racer met another's claim in five tries")


class Refusing:
    name = "whatsapp"

    def send(self, message) -> SendResult:
        return SendResult(False, None, "failed", "63016", "outside the 24 hour window")


def test_deliveries_and_fallbacks_are_counted(service, make_business, session_factory, clock, tmp_path):
    clinic = make_business("clinic")
    with session_factory() as s:  # only this test's messages
        s.execute(update(Notification).where(Notification.status.in_(("pending", "sending", "sent")))
                  .values(status="void"))
        s.commit()
    slot = service.find_slots(clinic, SlotQuery(service="consultation", limit=1)).slots[0]
    booked = service.book(clinic, BookingCreate(service="consultation", starts_at=slot.starts_at.utc, source="test",
                                                customer=CustomerIn(name="Fall Back", phone="+447911123499")))
    assert isinstance(booked, Booked)
    fallbacks = value("nextslot_message_fallbacks_total", from_channel="whatsapp")
    accepted = value("nextslot_message_deliveries_total", channel="sms", outcome="accepted")
    dispatcher = Dispatcher(session_factory, {"whatsapp": Refusing(), "sms": LocalOutboxChannel(
        "sms", tmp_path / "outbox.jsonl")}, clock=clock, receipt_timeout=timedelta(minutes=15))
    for _ in range(20):
        if not dispatcher.dispatch_due():
            break
        anyio.run(anyio.sleep, 0)
    assert value("nextslot_message_fallbacks_total", from_channel="whatsapp") >= fallbacks + 1
    assert value("nextslot_message_deliveries_total", channel="sms", outcome="accepted") >= accepted + 1
    assert booked.booking.code in (tmp_path / "outbox.jsonl").read_text()


def test_every_series_the_grafana_dashboard_plots_is_one_we_export(session_factory):
    import json
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    dashboard = json.loads((Path(__file__).parents[2] / "deploy/grafana/nextslot-dashboard.json").read_text())
    families = [family for registry in (REGISTRY, database_registry(session_factory, DatabaseGate(2)))
                for family in text_string_to_metric_families(generate_latest(registry).decode())]
    exported = {name for family in families for name in (family.name, *(s.name for s in family.samples))
                if name.startswith("nextslot_")}
    exported |= {f"{m.name}_{suffix}" for m in REGISTRY.collect() if m.name.startswith("nextslot_")
                 for suffix in ("bucket", "count", "sum", "total")}  # labelled series not seen yet in this run
    plotted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"nextslot_\w+", target["expr"])}
    assert plotted and plotted <= exported, plotted - exported


def test_the_database_gate_shows_its_busy_places_its_waiters_and_how_long_they_waited(session_factory):
    gate = DatabaseGate(1, timeout=10)
    registry = database_registry(session_factory, gate)
    waits_before = value("nextslot_db_gate_wait_seconds_count")
    held, release, entered = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate):
            held.set()
            release.wait(10)

    def wait() -> None:
        with SqlAlchemyUnitOfWork(session_factory, gate=gate):
            entered.set()

    holder, waiter = threading.Thread(target=hold), threading.Thread(target=wait)
    holder.start()
    held.wait(10)
    waiter.start()
    try:
        for _ in range(100):  # until the waiter is in line
            if gate.waiting:
                break
            time.sleep(0.01)
        samples = parsed(generate_latest(registry).decode())
        assert samples[("nextslot_db_gate_places", (("state", "busy"),))] == 1
        assert samples[("nextslot_db_gate_places", (("state", "free"),))] == 0
        assert samples[("nextslot_db_gate_waiting", ())] == 1
    finally:
        release.set()
        holder.join(10)
        waiter.join(10)
    assert entered.is_set()
    samples = parsed(generate_latest(registry).decode())
    assert samples[("nextslot_db_gate_places", (("state", "busy"),))] == 0
    assert samples[("nextslot_db_gate_waiting", ())] == 0
    assert value("nextslot_db_gate_wait_seconds_count") == waits_before + 1  # the holder took its place at once
