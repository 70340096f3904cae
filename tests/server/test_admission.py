"""Requests are admitted per tenant before any worker thread: one tenant's burst waits in its own line while
another tenant's request goes ahead, the tenant rides along to the database gate, and a request left waiting too
long is answered "busy, send it again" in its channel's shape, with nothing held afterwards."""
from __future__ import annotations

import asyncio
from collections import Counter

import httpx2
import pytest
from anyio.to_thread import current_default_thread_limiter
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from nextslot.core.service import BookingService
from nextslot.server.admission import Admission, party_of
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.gate import PARTY, DatabaseGate
from tests.server.test_console import slug_of


def scope(path: str, token: str | None = None, client: str = "203.0.113.9") -> Scope:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "http", "path": path, "headers": headers, "client": (client, 50000)}


def test_a_request_is_its_slug_s_its_token_s_or_its_address_s():
    assert party_of(scope("/b/clinic-1/consultation")) == "page:clinic-1"
    assert party_of(scope("/b/clinic-1/mcp")) == party_of(scope("/b/clinic-1")) == "page:clinic-1"
    assert party_of(scope("/console/clinic-1/bookings/ABC/cancel")) == "console:clinic-1"  # staff: not the page's
    assert party_of(scope("/webhooks/vapi/clinic-1")) == "voice:clinic-1"  # a caller mid-call: not the page's
    assert party_of(scope("/webhooks/elevenlabs/clinic-1/book_appointment")) == "voice:clinic-1"
    key = party_of(scope("/v1/bookings", "nsk_one"))
    assert key.startswith("key:") and key == party_of(scope("/mcp", "nsk_one")) == party_of(scope("/mcp/", "nsk_one"))
    assert key != party_of(scope("/v1/bookings", "nsk_two"))
    assert "nsk_one" not in key  # the party shows in no log, but a token is never kept in clear
    for path in ("/v1/bookings", "/webhooks/twilio/inbound", "/m/some-token", "/b/", "/console", "/"):
        assert party_of(scope(path)) == "address:203.0.113.9", path
    assert party_of(scope("/b/clinic-1", client="198.51.100.7")) == "page:clinic-1"  # from any address


class Held:
    """A toy app: each request notes its party (as the database gate will see it) and waits until let go."""

    def __init__(self) -> None:
        self.let_go = asyncio.Event()
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((scope["path"], PARTY.get()))
        if not scope["path"].endswith("/quick"):
            await self.let_go.wait()
        await PlainTextResponse("ok")(scope, receive, send)


async def until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never got there")


@pytest.mark.anyio
async def test_one_tenant_s_burst_waits_in_its_own_line_while_another_tenant_goes_ahead():
    held = Held()
    admission = Admission(held, per_party=2)
    waited_before = REGISTRY.get_sample_value("nextslot_admission_wait_seconds_count") or 0
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=admission), base_url="http://t") as client:
        burst = [asyncio.create_task(client.get(f"/b/busy/{n}")) for n in range(6)]
        await until(lambda: admission.share is not None and admission.share.waiting == 4)
        assert [path for path, _ in held.seen] == ["/b/busy/0", "/b/busy/1"]
        other = await asyncio.wait_for(client.get("/b/other/quick"), 5)  # not behind the burst's four
        assert other.text == "ok" and held.seen[-1] == ("/b/other/quick", "page:other")
        held.let_go.set()
        answers = await asyncio.gather(*burst)
    assert [answer.text for answer in answers] == ["ok"] * 6
    assert [path for path, _ in held.seen if path.startswith("/b/busy")] == [f"/b/busy/{n}" for n in range(6)]
    assert {party for path, party in held.seen if path.startswith("/b/busy")} == {"page:busy"}
    assert (admission.share.busy, admission.share.waiting) == (0, 0)
    assert REGISTRY.get_sample_value("nextslot_admission_wait_seconds_count") == waited_before + 4  # the metric


@pytest.mark.anyio
async def test_a_request_waiting_too_long_is_answered_busy_in_its_channel_s_shape():
    held = Held()
    admission = Admission(held, per_party=1, timeout=0.2)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=admission), base_url="http://t") as client:
        first = asyncio.create_task(client.get("/v1/bookings", headers={"Authorization": "Bearer nsk_x"}))
        await until(lambda: len(held.seen) == 1)
        api = await client.get("/v1/slots", headers={"Authorization": "Bearer nsk_x"})
        mcp = await client.post("/mcp", headers={"Authorization": "Bearer nsk_x"}, json={})
        held.let_go.set()
        assert (await first).text == "ok"
    assert api.status_code == 503 and api.headers["Retry-After"] == "1"
    assert api.json()["error"]["code"] == "temporarily_unavailable"
    assert mcp.status_code == 503 and mcp.json()["error"]["data"]["code"] == "temporarily_unavailable"
    assert len(held.seen) == 1  # neither waiter ran
    assert (admission.share.busy, admission.share.waiting) == (0, 0)


@pytest.mark.anyio
async def test_a_trickling_body_or_a_slow_reader_holds_no_place():
    """A slug's place is anyone's to take: a body sent a byte at a time, or an answer read slowly, must not hold it."""
    more, started, finish = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].endswith("/slow-answer"):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            started.set()
            await finish.wait()  # as a send to a client that reads nothing would wait
            await send({"type": "http.response.body", "body": b"done"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await PlainTextResponse(f"got {len(body)}")(scope, receive, send)

    async def trickle():
        yield b"a" * 10
        await more.wait()
        yield b"b" * 10

    admission = Admission(app, per_party=1, timeout=2)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=admission), base_url="http://t") as client:
        slow_body = asyncio.create_task(client.post("/b/shop/form", content=trickle()))
        await asyncio.sleep(0.05)
        assert (await client.get("/b/shop/page")).text == "got 0"
        slow_answer = asyncio.create_task(client.get("/b/shop/slow-answer"))
        await started.wait()
        assert (await client.get("/b/shop/page")).text == "got 0"
        more.set()
        finish.set()
        assert (await slow_body).text == "got 20" and (await slow_answer).text == "done"
    assert (admission.share.busy, admission.share.waiting) == (0, 0)


@pytest.mark.anyio
async def test_a_client_gone_while_waiting_leaves_nothing_held():
    held = Held()
    admission = Admission(held, per_party=1)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=admission), base_url="http://t") as client:
        first = asyncio.create_task(client.get("/b/busy/0"))
        await until(lambda: len(held.seen) == 1)
        gone = asyncio.create_task(client.get("/b/busy/1"))
        await until(lambda: admission.share.waiting == 1)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert admission.share.waiting == 0
        held.let_go.set()
        await first
        assert (await client.get("/b/busy/quick")).text == "ok"
    assert [path for path, _ in held.seen] == ["/b/busy/0", "/b/busy/quick"]
    assert (admission.share.busy, admission.share.waiting) == (0, 0)


def test_the_tenant_rides_along_to_the_database_gate_on_every_channel(session_factory, clock, make_business, api_key):
    seen: list[str] = []

    class NotingGate(DatabaseGate):
        def enter(self) -> None:
            seen.append(PARTY.get())
            super().enter()

    business = make_business("clinic")
    key, slug = api_key(business), slug_of(session_factory, business)
    app = create_app(Settings(), service=BookingService(session_factory, clock=clock, gate=NotingGate(5)))
    bearer = {"Authorization": f"Bearer {key}"}
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_services", "arguments": {}}}
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # the Host /mcp answers
        assert client.get("/v1/bookings", headers=bearer).status_code == 200
        api, seen[:] = set(seen), []
        answer = client.post("/mcp", json=call, headers={**bearer, "Accept": "application/json, text/event-stream",
                                                          "MCP-Protocol-Version": "2025-11-25"})
        assert answer.status_code == 200 and not answer.json()["result"].get("isError"), answer.text
        mcp, seen[:] = set(seen), []
        assert client.get(f"/b/{slug}").status_code == 200
        page = set(seen)
    assert api == mcp == {party_of(scope("/v1", key))}
    assert page == {f"page:{slug}"}


REQUESTS = st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3), st.booleans()), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(requests=REQUESTS, threads=st.integers(2, 5), per_party=st.integers(1, 3))
def test_in_any_order_of_arrivals_ends_and_clients_gone_no_party_and_no_process_is_ever_over_its_share(
        requests, threads, per_party):
    asyncio.run(admitted_in_random_order(requests, threads, per_party))


async def admitted_in_random_order(requests, threads: int, per_party: int) -> None:
    current_default_thread_limiter().total_tokens = threads  # this loop's own pool: the process's share
    inside: Counter[str] = Counter()
    most: Counter[str] = Counter()
    most_in_all = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal most_in_all
        party = scope["path"].split("/")[2]
        inside[party] += 1
        most[party] = max(most[party], inside[party])
        most_in_all = max(most_in_all, sum(inside.values()))
        try:
            await asyncio.sleep(int(scope["path"].split("/")[3]) / 1000)
        finally:  # a client gone mid-request ends it here
            inside[party] -= 1
        await PlainTextResponse("ok")(scope, receive, send)

    admission = Admission(app, per_party=per_party)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=admission), base_url="http://t") as client:
        calls = [asyncio.create_task(client.get(f"/b/{party}/{ms}/{n}")) for n, (party, ms, _) in enumerate(requests)]
        await asyncio.sleep(0)
        for call, (_, _, gone) in zip(calls, requests, strict=True):
            if gone:
                call.cancel()
        answers = await asyncio.gather(*calls, return_exceptions=True)
    assert all(answer.text == "ok" for answer in answers if not isinstance(answer, BaseException)), answers
    assert all(count <= per_party for count in most.values()) and most_in_all <= threads, (most, most_in_all)
    assert (admission.share.busy, admission.share.waiting) == (0, 0)
