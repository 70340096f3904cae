"""Secrets never reach a log record: a day's flows against a live server (uvicorn's access log on) with every
logger at DEBUG: API key calls on /v1 and /mcp, a booking on the page and its link tokens, a signed webhook
delivery, the OAuth code flow with a refresh, a signed Twilio webhook and a console sign-in. Every record's
message, arguments, extra fields and traceback is searched for every secret the flows used."""
from __future__ import annotations

import logging
import re
import threading

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from nextslot.settings import Settings
from nextslot.telemetry.logs import configure_logging
from nextslot.webhooks.delivery import WebhookSender
from tests.conftest import LiveServer, free_port
from tests.oauth.conftest import PASSWORD, MemoryStorage, Person, client_for, shop  # noqa: F401 - the fixture

TWILIO_TOKEN = "twilio-auth-token-7c1f0a9e55d2"
SECRET_KEY = "secret-key-for-the-log-tests-0b6a"
# every logger the flows write through, let down to DEBUG; SQLAlchemy's stays at the WARNING it sets itself on
# import (its INFO and DEBUG are statement and row echo, a developer's switch; the values stay hidden even then)
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpx2", "httpcore", "httpcore2", "mcp",
           "nextslot", "twilio", "twilio.http_client", "niquests", "urllib3", "asyncio", "apscheduler")
CLIENT_SIDE = ("httpx", "httpx2", "httpcore", "httpcore2", "mcp.client")  # the test's own HTTP clients


class Receiver:
    def __init__(self) -> None:
        self.signatures: list[str] = []
        self.server = LiveServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        await request.body()
        self.signatures.append(request.headers["nextslot-signature"])
        return Response(status_code=204)


@pytest.fixture
def every_logger_at_debug(caplog):
    """The logging `serve` and `scheduler` set up at NEXTSLOT_LOG_LEVEL=debug, then every logger the flows use let
    down to DEBUG too, even those it quiets; caplog's handler on the root logger (and, in the test, on uvicorn's
    own loggers, which do not propagate)."""
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {name: logging.getLogger(name).level for name in LOGGERS}
    configure_logging("debug", "text")  # pytest puts caplog's handler on the root logger for each phase
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def text_of(record: logging.LogRecord) -> str:
    """All a record carries that a handler could write."""
    parts = [record.getMessage(), str(record.msg), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts += [repr(v) for k, v in vars(record).items() if k not in ("msg", "args", "exc_info", "exc_text")]
    return "\n".join(parts)


async def mcp_calls(url: str, key: str) -> list:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        return [await client.call_tool("find_available_slots", {"service": "consultation"}),
                await client.call_tool("list_services", {})]


async def oauth_flow(base: str, place) -> MemoryStorage:
    storage = MemoryStorage()
    auth = client_for(base, Person(base, place, place.owner), storage)
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            assert not (await client.call_tool("list_services", {})).is_error
    async with httpx2.AsyncClient(timeout=30) as http:  # the refresh grant, as the SDK's client would send it
        refreshed = await http.post(f"{base}/token", data={
            "grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token,
            "client_id": storage.client.client_id, "client_secret": storage.client.client_secret})
        assert refreshed.status_code == 200, refreshed.text
        storage.refreshed = refreshed.json()
    return storage


def test_no_secret_of_any_flow_reaches_a_log_record(shop, api_key, session_factory, every_logger_at_debug):  # noqa: F811
    caplog = every_logger_at_debug
    harness = threading.get_ident()  # the test's own clients log from here (a URL of theirs may hold a token)
    place = shop()
    key = api_key(place.id)
    secrets: dict[str, str] = {"api key": key, "twilio auth token": TWILIO_TOKEN, "secret key": SECRET_KEY,
                               "console password": PASSWORD}
    port = free_port()
    settings = Settings(public_url=f"http://127.0.0.1:{port}", secret_key=SECRET_KEY, twilio_auth_token=TWILIO_TOKEN,
                        allow_private_targets=True)  # the tests' receiver is on loopback
    receiver = Receiver()
    from nextslot.core.service import BookingService
    from nextslot.server.app import create_app

    app = create_app(settings, service=BookingService(session_factory))
    with LiveServer(app, port) as server, receiver.server, httpx2.Client(base_url=server.url, timeout=30) as http:
        for name in ("uvicorn.access", "uvicorn.error"):  # the test server's uvicorn set them to WARNING
            logging.getLogger(name).setLevel(logging.DEBUG)
            logging.getLogger(name).addHandler(caplog.handler)  # and they do not propagate
        auth = {"Authorization": f"Bearer {key}"}
        # API key: /v1 and /mcp
        slots = http.get("/v1/slots", params={"service": "consultation"}, headers=auth)
        assert slots.status_code == 200, slots.text
        first = slots.json()["slots"][0]["starts_at"]["utc"]
        results = anyio.run(mcp_calls, server.url, key)
        assert not any(r.is_error for r in results)
        # webhook endpoint registered with the key; its secret signs the delivery
        made = http.post("/v1/webhooks", json={"url": f"{receiver.server.url}/hook"}, headers=auth)
        assert made.status_code == 201, made.text
        secrets["webhook secret"] = made.json()["secret"]
        # a booking on the page: the confirmation and manage links carry tokens
        form = http.get(f"/b/{place.slug}/consultation/book", params={"at": first})
        assert form.status_code == 200, form.text
        form_key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
        booked = http.post(f"/b/{place.slug}/consultation/book", data={
            "at": first, "key": form_key, "customer.name": "Ada Lovelace", "customer.phone": "+447911123499",
            "customer.email": "ada@example.com", "intake.reason": "check-up", "intake.first-visit": "yes"})
        assert booked.status_code == 303, booked.text
        secrets["confirmation token"] = booked.headers["location"].rsplit("/", 1)[1]
        confirmation = http.get(booked.headers["location"])
        manage = re.search(r'id="manage-link" href="/m/([^"]+)"', confirmation.text).group(1)
        secrets["manage token"] = manage
        assert http.get(f"/m/{manage}").status_code == 200
        http.get(f"/m/{manage}/move")
        # the delivery of booking.created, signed with the endpoint's secret
        sent: list[int] = []  # in a thread of its own, as the scheduler runs it: its client's lines are the server's
        scheduler = threading.Thread(target=lambda: sent.append(
            WebhookSender(session_factory, allow_private=True, timeout=10).send_due()))
        scheduler.start()
        scheduler.join(30)
        assert sent and sent[0] >= 1
        assert receiver.signatures
        secrets["webhook signature"] = receiver.signatures[0].split("v1=", 1)[1]
        # OAuth: code flow (registration, consent, code, tokens) then a refresh
        storage = anyio.run(oauth_flow, server.url, place)
        secrets |= {"oauth access token": storage.tokens.access_token,
                    "oauth refresh token": storage.tokens.refresh_token,
                    "oauth client secret": storage.client.client_secret,
                    "oauth refreshed access token": storage.refreshed["access_token"],
                    "oauth refreshed refresh token": storage.refreshed["refresh_token"]}
        # a signed Twilio webhook
        twilio_form = {"From": "+447911123499", "Body": "YES", "MessageSid": "SM" + "a1" * 16}
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{server.url}/webhooks/twilio/inbound",
                                                                    twilio_form)
        secrets["twilio signature"] = signature
        inbound = http.post("/webhooks/twilio/inbound", data=twilio_form, headers={"X-Twilio-Signature": signature})
        assert inbound.status_code == 200, inbound.text
        # a console sign-in: its session cookie
        signed = http.post(f"/console/{place.slug}/login", data={"email": place.owner, "password": PASSWORD})
        assert signed.status_code == 303
        secrets["console session"] = signed.cookies["nextslot_console"]
        assert http.get(f"/console/{place.slug}").status_code == 200
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).removeHandler(caplog.handler)
    records = caplog.records
    written = {r.name for r in records}  # the logs were really written, ours and uvicorn's access log among them
    assert {"uvicorn.access", "nextslot.webhooks.delivery"} <= written and any(n.startswith("mcp.") for n in written)
    ours = [r for r in records if not (r.thread == harness and r.name.startswith(CLIENT_SIDE))]
    leaks = {(name, r.name, r.getMessage()[:200]) for r in ours for name, secret in secrets.items()
             if len(secret) >= 8 and secret[4:] in text_of(r)}
    assert not leaks, "\n".join(map(str, sorted(leaks)))


def test_a_failed_statement_names_no_value_it_carried(session_factory):
    """A statement's exception reaches tracebacks and incident logs: its text names the columns, not the values."""
    from sqlalchemy.exc import IntegrityError

    from nextslot.storage.tables import WebhookEndpoint

    secret = "whsec_" + "s3cr3t-value-0123456789abcdef"
    with session_factory() as s, pytest.raises(IntegrityError) as failed:
        s.add(WebhookEndpoint(business_id=-1, url="https://x.example/h", secret=secret, event_types=["*"], active=True))
        s.flush()
    assert secret not in str(failed.value) and "s3cr3t" not in repr(failed.value)


def test_the_text_log_format_cuts_secrets_as_the_json_one_does():
    key, secret = "nsk_" + "A1b2C3d4" * 5, "whsec_" + "Z9y8X7w6" * 4
    record = logging.LogRecord("nextslot.test", logging.INFO, __file__, 1, "key %s secret %s link %s",
                               (key, secret, "/m/tok3n-secret-value"), None)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("info", "text")
    try:
        line = root.handlers[0].format(record)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert key[4:] not in line and secret[6:] not in line and "tok3n-secret-value" not in line
    assert "key nsk_" in line  # the line is still there to read
