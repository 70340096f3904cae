"""Round 11: the agent tools attacked through real clients: every tool with hostile arguments through the SDK's
ClientSession over streamable HTTP (at /mcp with a key, and at the keyless /b/{slug}/mcp), another business's hold
and customers, raw JSON-RPC a client library would never send, requests that try to hold a connection open, and
the voice webhooks with forged, old and foreign signatures and oversized payloads."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.server.public_mcp import OPEN_TOOLS, PUBLIC_TOOLS
from nextslot.settings import Settings
from nextslot.storage.tables import Booking
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.registry import TOOLS
from tests.fuzz.channels import unlimited
from tests.server.test_public_mcp import slug_of

pytestmark = pytest.mark.anyio
TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
RPC = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LEAKS = ("Traceback", "psycopg", "sqlalchemy", "pydantic", "errors.pydantic.dev", "Exception", "File \"")
# one of each kind of wrong: type, control character, size, range, float overflow, a date past the years taken,
# a date that does not exist
HOSTILE = ([], True, "\x00", "x" * 20_000, 2**70, 1.5e308, "9999-12-31T23:59:59+14:00", "2026-02-30T09:00:00Z")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(url: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30)))


def structured_refusal_or_result(name: str, args: dict, result) -> dict:
    text = result.content[0].text
    for leak in LEAKS:
        assert leak not in text, (name, args, text[:300])
    data = json.loads(text)
    if result.is_error:
        assert set(data) == {"error"} and data["error"]["code"] != "internal_error", (name, str(args)[:200], text)
        assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    return data


async def sweep(session: Client, tools: list[str], base: dict[str, dict]) -> int:
    """Call each tool once per (parameter, hostile value); every answer a result or a structured refusal."""
    listed = {t.name: t.input_schema for t in (await session.list_tools()).tools}
    calls = 0
    for name in tools:
        for param in listed[name]["properties"]:
            for value in HOSTILE:
                args = {**base.get(name, {}), param: value}
                result = await session.call_tool(name, args)
                structured_refusal_or_result(name, args, result)
                calls += 1
    return calls


VALID = {
    "find_available_slots": {"service": "consultation", "date": TUESDAY},
    "hold_slot": {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00"},
    "book_appointment": {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
                         "customer_name": "Ann Lee", "phone": "+447911123456"},
    "book_series": {"service": "consultation", "first_starts_at": "2026-11-24T09:00:00+00:00",
                    "customer_name": "Ann Lee", "phone": "+447911123456", "every": "week", "count": 2},
    "reschedule_appointment": {"code": "ABCDEF", "new_starts_at": "2026-11-24T10:00:00+00:00"},
    "cancel_appointment": {"code": "ABCDEF"},
    "confirm_appointment": {"code": "ABCDEF"},
    "find_appointments": {"phone": "+447911123456"},
    "customer_history": {"phone": "+447911123456"},
    "join_waitlist": {"service": "consultation", "earliest_date": TUESDAY, "latest_date": "2026-11-30",
                      "customer_name": "Ann Lee", "phone": "+447911123456"},
    "request_code": {"contact": "+447911123456"},
    "verify_code": {"challenge": "abcdefgh", "code": "123456"},
}


async def test_every_tool_answers_hostile_arguments_with_a_result_or_a_structured_refusal(
        live_server, make_business, api_key, session_factory):
    clinic = make_business("clinic")
    key, slug = api_key(clinic), slug_of(session_factory, clinic)
    settings = Settings(rate_limit_per_key="1000000/minute", rate_limit_slot_searches_per_business="1000000/minute")
    with live_server(frozen=True, settings=settings) as server:
        unlimited(server.server.config.app)  # the sweep is far past a key's and an address's budget
        with anyio.fail_after(240):  # a hang guard: the sweep is some 2,000 calls
            async with client(f"{server.url}/mcp", key) as session:
                keyed = await sweep(session, list(TOOLS), VALID)
            async with client(f"{server.url}/b/{slug}/mcp") as session:
                # the public endpoint's own tools (the open ones are the registry's, swept above)
                public = await sweep(session, [t for t in PUBLIC_TOOLS if t not in OPEN_TOOLS + ("request_code",)],
                                     VALID)
    assert keyed > 500 and public > 50


async def test_another_businesss_hold_customers_and_codes_are_nothing_here(
        live_server, make_business, api_key, session_factory):
    a, b = make_business("clinic"), make_business("clinic")
    key_a, key_b = api_key(a), api_key(b)
    with live_server(frozen=True) as server:
        async with client(f"{server.url}/mcp", key_b) as session_b:
            held = structured_refusal_or_result("hold_slot", {}, await session_b.call_tool(
                "hold_slot", VALID["hold_slot"]))
            booked = structured_refusal_or_result("book_appointment", {}, await session_b.call_tool(
                "book_appointment", {**VALID["book_appointment"], "starts_at": "2026-11-24T11:00:00+00:00",
                                     "customer_name": "Bea Other", "phone": "+447900111222", "notes": "private"}))
        hold_id, code = held["hold_id"], booked["appointment"]["code"]
        async with client(f"{server.url}/mcp", key_a) as session_a:
            taken = structured_refusal_or_result("book_appointment", {}, await session_a.call_tool(
                "book_appointment", {**VALID["book_appointment"], "hold_id": hold_id}))
            history = await session_a.call_tool("customer_history", {"phone": "+447900111222"})
            found = await session_a.call_tool("find_appointments", {"phone": "+447900111222"})
            for name, args in (("cancel_appointment", {"code": code}), ("confirm_appointment", {"code": code}),
                               ("reschedule_appointment", {"code": code, "new_starts_at": "2026-11-24T12:00:00+00:00"})):
                refused = structured_refusal_or_result(name, args, await session_a.call_tool(name, args))
                assert refused["error"]["code"] == "unknown_booking", refused
        for answer in (history, found):
            assert "Bea Other" not in answer.content[0].text and "private" not in answer.content[0].text
            assert code not in answer.content[0].text
    assert "error" in taken and taken["error"]["code"] in ("unknown_hold", "hold_not_found", "invalid_hold"), taken
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == a)) == 0
        assert s.scalar(select(Booking.status).where(Booking.code == code)) == "booked"


async def test_an_mcp_endpoint_answers_a_get_at_once_and_holds_no_stream_open(
        live_server, make_business, api_key, session_factory):
    """Before: a GET at /mcp, or at the keyless /b/{slug}/mcp, was held open for ever (an SSE stream that never
    carries anything, with a server task behind it): anyone could pile up connections until the process ran out."""
    clinic = make_business("clinic")
    key, slug = api_key(clinic), slug_of(session_factory, clinic)
    with live_server() as server, anyio.fail_after(60):  # a hang guard: before, the first GET never ended
        async with httpx2.AsyncClient(base_url=server.url, timeout=httpx2.Timeout(20)) as http:
            for path, headers in (("/mcp", {"Authorization": f"Bearer {key}"}), (f"/b/{slug}/mcp", {})):
                for method in ("GET", "HEAD", "PUT"):
                    answer = await http.request(method, path, headers={**RPC, **headers,
                                                                       "Accept": "text/event-stream"})
                    assert answer.status_code == 405, (path, method)
                    assert answer.headers["allow"] == "POST"
                    if method != "HEAD":
                        assert answer.json()["error"]["data"]["code"] == "method_not_allowed"
            # nor does the 2026-07-28 way to ask for a stream open one: this server serves no subscriptions
            meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {}}
            listen = await http.post(f"/b/{slug}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
                                                             "params": {"_meta": meta}},
                                     headers={**RPC, "MCP-Protocol-Version": "2026-07-28",
                                              "Mcp-Method": "subscriptions/listen"})
            assert listen.headers["content-type"].startswith("application/json"), listen.headers
            assert listen.json()["error"]["code"] in (-32601, -32602)  # not served, answered at once
            # clients that open the stream after connecting still work: the SDK's own takes the 405 in its stride
            async with client(f"{server.url}/b/{slug}/mcp") as session:
                assert not (await session.call_tool("list_services", {})).is_error


async def test_raw_json_rpc_no_client_would_send_gets_json_rpc_refusals_in_our_words(
        live_server, make_business, api_key):
    clinic = make_business("clinic")
    key = api_key(clinic)

    def call(name: str, args: object, rid: object = 1) -> dict:
        return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": args}}

    bodies = [
        json.dumps([call("list_services", {}), call("list_services", {}, 2)]).encode(),  # a batch
        json.dumps(call("list_services", [1, 2])).encode(), json.dumps(call("list_services", "{}")).encode(),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}).encode(),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}).encode(),
        json.dumps(call("\x00" * 5000, {})).encode(), json.dumps(call("book_appointment", {"a" * 100: 1})).encode(),
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"find_available_slots","arguments":'
        b'{"service":"consultation","limit":NaN}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_services","arguments":{"x":"\\ud800"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_services","arguments":{"x":"\xff"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_services","arguments":{"x":' +
        b"[" * 100_000 + b"]" * 100_000 + b"}}}",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_services","arguments":{"x":1' +
        b"0" * 5000 + b"}}}",
    ]
    with live_server() as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=30) as http:
            for body in bodies:
                answer = await http.post("/mcp", content=body, headers={**RPC, "Authorization": f"Bearer {key}"})
                assert answer.status_code < 500, (body[:80], answer.status_code)
                data = answer.json()
                assert data["jsonrpc"] == "2.0" and ("error" in data or data["result"].get("isError")), body[:80]
                for leak in LEAKS:
                    assert leak not in answer.text, (body[:80], answer.text[:300])
            for headers in ({"Content-Type": "text/plain"}, {"Accept": "text/html"},
                            {"Mcp-Session-Id": "another-business-session"}):
                answer = await http.post("/mcp", content=json.dumps(call("list_services", {})).encode(),
                                         headers={**RPC, "Authorization": f"Bearer {key}", **headers})
                assert answer.status_code in (200, 404, 406, 415), (headers, answer.status_code)
                assert answer.json()["jsonrpc"] == "2.0"


def retell_signature(body: bytes, key: str, at_ms: int) -> str:
    return f"v={at_ms},d=" + hmac.new(key.encode(), body + str(at_ms).encode(), hashlib.sha256).hexdigest()


async def test_voice_webhooks_refuse_forged_old_and_foreign_requests_and_oversized_calls(
        live_server, make_business, session_factory):
    a, b = make_business("clinic"), make_business("clinic")
    slug_a = slug_of(session_factory, a)
    secrets = {}
    for business in (a, b):
        for platform in ("vapi", "retell", "elevenlabs"):
            secrets[business, platform] = f"{platform}-secret-of-{business}"
            set_secret(SqlAlchemyUnitOfWork(session_factory), business, platform, secrets[business, platform])
    book = {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00", "customer_name": "Ann Lee",
            "phone": "+447911123456"}
    vapi = json.dumps({"message": {"type": "tool-calls", "toolCallList": [
        {"id": "call-1", "name": "book_appointment", "arguments": book}]}}).encode()
    retell = json.dumps({"name": "book_appointment", "call": {"call_id": "c-1"}, "args": book}).encode()
    now = int(time.time() * 1000)
    with live_server(frozen=True) as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=30) as http:
            async def post(path: str, body: bytes, **headers: str) -> httpx2.Response:
                return await http.post(path, content=body, headers={"Content-Type": "application/json", **headers})

            refusals = [
                await post(f"/webhooks/vapi/{slug_a}", vapi, **{"x-vapi-secret": secrets[b, "vapi"]}),
                await post(f"/webhooks/vapi/{slug_a}", vapi, **{"x-vapi-secret": secrets[a, "vapi"][:-1]}),
                await post(f"/webhooks/vapi/{slug_a}", vapi, authorization=f"Bearer {secrets[a, 'elevenlabs']}"),
                await post(f"/webhooks/retell/{slug_a}", retell, **{"x-retell-signature": retell_signature(
                    retell, secrets[b, "retell"], now)}),
                await post(f"/webhooks/retell/{slug_a}", retell, **{"x-retell-signature": retell_signature(
                    retell, secrets[a, "retell"], now - 10 * 60 * 1000)}),  # ten minutes old
                await post(f"/webhooks/retell/{slug_a}", retell, **{"x-retell-signature": retell_signature(
                    retell, secrets[a, "retell"], now + 10 * 60 * 1000)}),  # from the future
                await post(f"/webhooks/retell/{slug_a}", retell + b" ", **{"x-retell-signature": retell_signature(
                    retell, secrets[a, "retell"], now)}),  # the body changed after signing
                await post(f"/webhooks/retell/{slug_a}", retell, **{"x-retell-signature": "v=9" * 5000}),
                await post(f"/webhooks/elevenlabs/{slug_a}/book_appointment", json.dumps(book).encode(),
                           authorization=f"Bearer {secrets[b, 'elevenlabs']}"),
                await post(f"/webhooks/elevenlabs/{slug_a}/book_appointment", json.dumps(book).encode(),
                           authorization=f"Bearer {secrets[a, 'vapi']}"),
            ]
            assert [r.status_code for r in refusals] == [401] * len(refusals)
            for answer in refusals:
                assert answer.json()["error"]["code"] == "unauthorized" and "Ann Lee" not in answer.text
            own = {"x-vapi-secret": secrets[a, "vapi"]}
            many = json.dumps({"message": {"type": "tool-calls", "toolCallList": [
                {"id": f"c{i}", "name": "list_services", "arguments": {}} for i in range(11)]}}).encode()
            shapes = [
                await post(f"/webhooks/vapi/{slug_a}", many, **own),
                await post(f"/webhooks/vapi/{slug_a}", b'{"message": {"type": "tool-calls", "toolCallList": '
                                                       b'[{"id": "x", "name": "book_appointment", "arguments": "' +
                           b"\\\"" * 300_000 + b'"}]}}', **own),
                await post(f"/webhooks/vapi/{slug_a}", b'{"message": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", **own),
                await post(f"/webhooks/vapi/{slug_a}", b"\xff\xfe", **own),
                await post(f"/webhooks/vapi/{slug_a}", json.dumps({"message": {"type": "tool-calls", "toolCallList": [
                    {"id": "x" * 151, "name": "list_services"}]}}).encode(), **own),
                await post(f"/webhooks/vapi/{slug_a}", json.dumps({"message": {"type": "tool-calls", "toolCallList": [
                    {"id": "y", "name": "list_services", "arguments": "[1, 2]"}]}}).encode(), **own),
            ]
            for answer in shapes:
                assert answer.status_code in (200, 400, 413, 422), answer.status_code
                for leak in LEAKS:
                    assert leak not in answer.text, answer.text[:300]
            assert [a.status_code for a in shapes[:5]] == [422, 422, 400, 400, 422]
            replays = [await post(f"/webhooks/retell/{slug_a}", retell, **{
                "x-retell-signature": retell_signature(retell, secrets[a, "retell"], now)}) for _ in range(2)]
            assert [r.status_code for r in replays] == [200, 200]  # a replay in the window replays the answer
            first, again = (r.json() for r in replays)
            assert again["replayed"] and first["appointment"]["code"] == again["appointment"]["code"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == a)) == 1
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == b)) == 0


async def test_the_stdio_server_survives_garbage_lines_and_answers_hostile_calls_in_json_rpc(
        database_url, make_business, api_key):
    """A desktop client's pipe with a line that is not JSON, a batch, and hostile calls: every request answered,
    the process still serving, no exception text on stdout."""
    import os
    import sys

    key = api_key(make_business("clinic"))
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_API_KEY": key}
    meta = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}
    lines = [b"not json at all", b"[1, 2]", b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ' +
             json.dumps(meta).encode() + b"}", b'{"jsonrpc": "2.0", "method": "notifications/initialized"}']
    calls = [("book_appointment", {"service": "consultation", "starts_at": "9999-12-31T23:59:59+14:00",
                                   "customer_name": "\x00", "phone": "+447911123456"}),
             ("cancel_appointment", {"code": "x" * 5000}), ("find_available_slots", {"service": [], "limit": 2**70}),
             ("no_such_tool", {}), ("list_services", {})]
    lines += [json.dumps({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                          "params": {"name": name, "arguments": args}}).encode() for i, (name, args) in enumerate(calls)]
    with anyio.fail_after(60):  # a hang guard: the process starts, answers and ends when its stdin closes
        async with await anyio.open_process([sys.executable, "-m", "nextslot.cli", "mcp"], env=env) as process:
            await process.stdin.send(b"\n".join(lines) + b"\n")
            answers: dict[int, dict] = {}
            buffer = b""
            while set(range(10, 10 + len(calls))) - set(answers):
                buffer += await process.stdout.receive()
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    message = json.loads(line)
                    if isinstance(message.get("id"), int):
                        answers[message["id"]] = message
            await process.stdin.aclose()
            await process.wait()
    texts = {i: answers[i]["result"]["content"][0]["text"] for i in range(10, 10 + len(calls))}
    for text in texts.values():
        for leak in LEAKS:
            assert leak not in text
    assert [answers[i]["result"]["isError"] for i in sorted(texts)] == [True, True, True, True, False]
    assert json.loads(texts[13])["error"]["code"] == "unknown_tool"
