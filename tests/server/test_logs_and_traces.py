"""One booking followed through real `nextslot serve` and `nextslot scheduler` processes: JSON log lines carrying
the request id from the MCP request to the outbox rows and the scheduler's sends, the same id on the webhook,
the spans exported to a local OTLP collector, and no secret, link token or contact in any log line."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nextslot.core.accounts.staff import create_account
from nextslot.storage.tables import Booking, Business, Notification, WebhookDelivery
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.webhooks.endpoints import add_endpoint
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.anyio
REQUEST_ID = "trace-me-0001"
PASSWORD = "a-console-password-123"
METRICS_TOKEN = "metrics-token-not-for-logs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Collector:
    """An OTLP/HTTP trace receiver on loopback, and a webhook receiver beside it."""

    def __init__(self):
        self.spans: list = []
        self.webhooks: list[dict] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"]),
                                     Route("/hook", self.hook, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(service, span) for span in scope_spans.spans]
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    async def hook(self, request: Request) -> Response:
        self.webhooks.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(status_code=204)


def attributes(span) -> dict:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def start(name: str, args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nextslot.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), stdin=subprocess.DEVNULL)


def stop(*processes: subprocess.Popen) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in processes:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def test_one_booking_is_followed_by_its_request_id_through_logs_outbox_webhook_and_traces(
        database_url, make_business, api_key, session_factory, tmp_path):
    with session_factory() as s:  # the scheduler below sends only this test's messages
        s.execute(update(Notification).where(Notification.status.in_(("pending", "sending", "sent")))
                  .values(status="void"))
        s.commit()
    clinic = make_business("clinic")
    key = api_key(clinic)
    with session_factory() as s:
        slug = s.get(Business, clinic).slug
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "boss@clinic.example", "Boss", "owner", PASSWORD)
    collector = Collector()
    with LiveServer(collector.app) as outside:
        hook = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, f"{outside.url}/hook",
                            allow_private=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_DATA_DIR": str(tmp_path),
               "NEXTSLOT_PUBLIC_URL": base, "NEXTSLOT_LOCAL_OUTBOX": "true", "NEXTSLOT_ALLOW_PRIVATE_TARGETS": "true",
               "NEXTSLOT_METRICS_TOKEN": METRICS_TOKEN, "NEXTSLOT_OTEL_ENDPOINT": outside.url,
               "NEXTSLOT_DISPATCH_INTERVAL_SECONDS": "0.3", "OTEL_BSP_SCHEDULE_DELAY": "200"}
        server_log, scheduler_log = tmp_path / "server.log", tmp_path / "scheduler.log"
        server = start("server", ["serve", "--port", str(port)], env, server_log)
        scheduler = start("scheduler", ["scheduler"], env, scheduler_log)
        try:
            for _ in range(300):
                try:
                    if httpx2.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                except httpx2.HTTPError:
                    pass
                assert server.poll() is None, server_log.read_text()
                time.sleep(0.2)
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}", "X-Request-ID": REQUEST_ID},
                                      timeout=60)
            async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as mcp:
                slots = (await mcp.call_tool("find_available_slots", {"service": "consultation"})).structured_content
                booked = (await mcp.call_tool("book_appointment", {
                    "service": "consultation", "starts_at": slots["slots"][0]["starts_at"],
                    "customer_name": "Lena Logcheck", "phone": "+447911123457", "email": "lena@example.com",
                    "idempotency_key": "logs-1"})).structured_content
            assert booked["outcome"] == "booked"
            code = booked["appointment"]["code"]
            async with httpx2.AsyncClient(base_url=base, timeout=60) as client:
                for _ in range(200):
                    sent = [m for m in (await client.get("/outbox.json")).json()["messages"] if code in m["body"]]
                    if sent and collector.webhooks:
                        break
                    await anyio.sleep(0.3)
                assert sent and collector.webhooks, scheduler_log.read_text()[-3000:]
                manage = re.search(r"(/m/[^\s/]+)", sent[0]["body"]).group(1)
                assert (await client.get(manage)).status_code == 200  # a link token in a logged request path
                login = await client.post(f"/console/{slug}/login", headers={"Origin": base},
                                          data={"email": "boss@clinic.example", "password": PASSWORD})
                assert login.status_code == 303
                await client.post(f"/console/{slug}/login", headers={"Origin": base},
                                  data={"email": "boss@clinic.example", "password": PASSWORD + "x"})
                scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
                assert scraped.status_code == 200
                answer = await client.get("/health")
                assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])  # one is made when none came
            for _ in range(100):  # the scheduler's spans of the send
                if any(s.name == "send notification" for _, s in collector.spans):
                    break
                await anyio.sleep(0.2)
        finally:
            stop(server, scheduler)
        for _ in range(50):  # the last batch, flushed at shutdown
            if any(s.name == "send webhook" for _, s in collector.spans):
                break
            await anyio.sleep(0.1)

    # the request id: on the outbox rows written with the booking, on the webhook, in both processes' logs
    with session_factory() as s:
        booking_id = s.scalar(select(Booking.id).where(Booking.code == code, Booking.business_id == clinic))
        assert set(s.scalars(select(Notification.request_id).where(Notification.booking_id == booking_id))) \
            == {REQUEST_ID}
        assert set(s.scalars(select(WebhookDelivery.request_id).where(WebhookDelivery.business_id == clinic))) \
            == {REQUEST_ID}
    assert collector.webhooks[0]["headers"]["x-request-id"] == REQUEST_ID
    server_text, scheduler_text = server_log.read_text(), scheduler_log.read_text()
    server_lines = [json.loads(line) for line in server_text.splitlines()]  # every line is one JSON object
    scheduler_lines = [json.loads(line) for line in scheduler_text.splitlines()]
    assert any(line.get("request_id") == REQUEST_ID and line["logger"] == "nextslot.http"
               and line.get("channel") == "mcp" for line in server_lines)
    sends = [line for line in scheduler_lines if line.get("request_id") == REQUEST_ID]
    assert {line["logger"] for line in sends} >= {"nextslot.reminders.dispatcher", "nextslot.webhooks.delivery"}
    assert any(line.get("notification_id") and line.get("trace_id") for line in sends)

    # never in a log: the API key, the metrics token, the password, the manage link's token, the webhook secret,
    # the customer's phone and email
    token = manage.removeprefix("/m/")
    for secret in (key, key[4:], METRICS_TOKEN, PASSWORD, token, hook.secret, "+447911123457", "447911123457",
                   "lena@example.com"):
        assert secret not in server_text and secret not in scheduler_text, secret

    # traces: the request's server span with its SQL inside, the scheduler's send with its HTTP call inside
    by_name: dict[str, list] = {}
    for service, span in collector.spans:
        by_name.setdefault(span.name, []).append((service, span))
    request_spans = [s for service, s in collector.spans
                     if service.get("nextslot.role") == "server" and attributes(s).get("nextslot.request_id")
                     == REQUEST_ID]
    assert request_spans
    request_traces = {s.trace_id for s in request_spans}
    assert any(s.trace_id in request_traces and attributes(s).get("db.system") in ("postgresql", "postgres")
               or s.trace_id in request_traces and s.name.split()[0] in ("INSERT", "SELECT", "UPDATE")
               for _, s in collector.spans)
    [webhook_send, *_] = [s for _, s in by_name["send webhook"] if attributes(s).get("nextslot.request_id")
                          == REQUEST_ID]
    assert any(s.trace_id == webhook_send.trace_id and s.name.startswith("POST") for _, s in collector.spans)
    assert any(attributes(s).get("nextslot.request_id") == REQUEST_ID for _, s in by_name["send notification"])


def test_request_spans_carry_no_link_token_code_or_phone(service, make_business, api_key, session_factory):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from starlette.testclient import TestClient

    from nextslot.server.app import create_app
    from nextslot.settings import Settings
    from nextslot.storage import queries
    from nextslot.telemetry.tracing import trace_app

    clinic = make_business("clinic")
    key = api_key(clinic)
    with session_factory() as s:
        slug = queries.business(s, clinic).slug
    app = create_app(Settings(), service=service)
    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_app(app, provider)
    secrets = ("MANAGEpayload", "SIGNATUREpart", "FEEDtoken", "PROVIDERcode", "447911123456", key)
    with TestClient(app, base_url="http://127.0.0.1:8000") as http:
        http.get("/m/MANAGEpayload.SIGNATUREpart")
        http.get("/ics/FEEDtoken.ics")
        http.get(f"/console/{slug}/calendars/callback", params={"code": "PROVIDERcode", "state": "s"})
        http.get("/v1/bookings", params={"phone": "+447911123456"}, headers={"Authorization": f"Bearer {key}"})
    spans = exporter.get_finished_spans()
    attributes = [(span.name, k, str(v)) for span in spans for k, v in (span.attributes or {}).items()]
    assert [a for a in attributes if any(secret in a[2] for secret in secrets)] == []
    assert ("http.target" in {k for _, k, _ in attributes} or "url.path" in {k for _, k, _ in attributes})
    assert any(v.startswith("/m/MANA…") for _, _, v in attributes)  # still there to follow, cut as in the logs
