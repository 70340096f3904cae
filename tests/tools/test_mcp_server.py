"""The tools through real MCP client sessions from the SDK: over streamable HTTP against the running app,
and over stdio against a `nextslot mcp` process."""
from __future__ import annotations

import json
import os
import sys
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import anyio
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select, update

from nextslot.settings import Settings
from nextslot.storage.tables import ApiKey, Booking
from nextslot.tools.registry import TOOLS

pytestmark = pytest.mark.anyio
TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def http_client(url: str, key: str, path: str = "/mcp") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(f"{url}{path}", http_client=http))


async def call(client: Client, name: str, **args) -> dict:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content == json.loads(result.content[0].text)
    return result.structured_content


async def fails(client: Client, name: str, **args) -> dict:
    result = await client.call_tool(name, args)
    assert result.is_error and result.structured_content is None
    return json.loads(result.content[0].text)["error"]


async def test_tools_are_listed_with_their_schemas_and_annotations(live_server, make_business, api_key):
    key = api_key(make_business("clinic"))
    with live_server() as server:
        async with http_client(server.url, key, path="/mcp/") as client:  # answered as /mcp, no redirect
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(TOOLS)
    for name, tool in tools.items():
        assert tool.input_schema == TOOLS[name].input_schema() and tool.input_schema["additionalProperties"] is False
        assert tool.output_schema == TOOLS[name].output_schema()
        assert tool.description == TOOLS[name].description
        hints = tool.annotations
        effects = TOOLS[name].effects
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
            effects.read_only, effects.destructive, effects.idempotent, effects.open_world), name
    assert tools["find_available_slots"].annotations.read_only_hint is True
    assert tools["cancel_appointment"].annotations.destructive_hint is True
    assert tools["book_appointment"].annotations.read_only_hint is False


async def briefing_of(client: Client) -> tuple[dict[str, dict], str]:
    """Every resource read as JSON by URI, and the receptionist prompt's text."""
    uris = [str(r.uri) for r in (await client.list_resources()).resources]
    read = {uri: json.loads((await client.read_resource(uri)).contents[0].text) for uri in uris}
    assert [p.name for p in (await client.list_prompts()).prompts] == ["receptionist"]
    prompt = await client.get_prompt("receptionist")
    assert [m.role for m in prompt.messages] == ["user"] and "Riverside Clinic" in prompt.description
    return read, prompt.messages[0].content.text


async def test_resources_and_the_receptionist_prompt_are_the_calling_businesss_own(live_server, make_business,
                                                                                    api_key):
    clinic_key, garage_key = api_key(make_business("clinic")), api_key(make_business("garage"))
    with live_server() as server:
        async with http_client(server.url, clinic_key) as c:
            read, prompt = await briefing_of(c)
            with pytest.raises(MCPError) as unknown:
                await c.read_resource("nextslot://business/secrets")
            assert unknown.value.code == -32002 and "nextslot://business/profile" in unknown.value.message
            with pytest.raises(MCPError):
                await c.get_prompt("pirate")
        async with http_client(server.url, garage_key) as g:
            garage = json.loads((await g.read_resource("nextslot://business/profile")).contents[0].text)
    assert set(read) == {"nextslot://business/profile", "nextslot://business/services",
                         "nextslot://business/opening-hours"}
    profile, hours = read["nextslot://business/profile"], read["nextslot://business/opening-hours"]
    assert profile["name"] == "Riverside Clinic" and profile["timezone"] == "Europe/London" and "say" not in profile
    assert [s["key"] for s in read["nextslot://business/services"]["services"]] == ["consultation", "ultrasound"]
    assert hours["opening_hours"] == profile["opening_hours"] and set(hours) == {"name", "timezone",
                                                                                 "opening_hours", "closures"}
    assert garage["name"] != "Riverside Clinic"
    for needed in ("Riverside Clinic", "12 Riverside Walk", "Europe/London", "consultation: GP consultation",
                   "Cancel at least 24 hours ahead", "find_available_slots", "book_appointment", "idempotency_key",
                   "cancel_appointment"):
        assert needed in prompt, needed
    assert "may not use" not in prompt


async def test_every_tool_over_http_from_finding_a_slot_to_cancelling(live_server, make_business, api_key):
    key = api_key(make_business("clinic"))
    with live_server(frozen=True) as server:
        async with http_client(server.url, key) as c:
            assert [s["key"] for s in (await call(c, "list_services"))["services"]] == ["consultation", "ultrasound"]
            assert (await call(c, "get_business_info"))["timezone"] == "Europe/London"
            slots = (await call(c, "find_available_slots", service="consultation", date=TUESDAY))["slots"]
            booked = await call(c, "book_appointment", service="consultation", starts_at=slots[0]["starts_at"],
                                customer_name="Ann Lee", phone="07911 123456", idempotency_key="mcp-1")
            assert booked["outcome"] == "booked" and booked["appointment"]["code_spoken"] in booked["say"]
            code = booked["appointment"]["code"]
            found = await call(c, "find_appointments", phone="+447911123456")
            assert [a["code"] for a in found["appointments"]] == [code]
            moved = await call(c, "reschedule_appointment", code=code, new_starts_at=slots[2]["starts_at"])
            assert moved["outcome"] == "rescheduled" and moved["appointment"]["starts_at"] == slots[2]["starts_at"]
            assert (await call(c, "confirm_appointment", code=code))["appointment"]["status"] == "confirmed"
            assert (await call(c, "cancel_appointment", code=code, reason="better"))["outcome"] == "cancelled"
            held = await call(c, "hold_slot", service="consultation", starts_at=slots[0]["starts_at"])
            assert held["outcome"] == "held" and held["hold_id"] > 0
            waiting = await call(c, "join_waitlist", service="ultrasound", customer_name="Ann Lee",
                                 phone="07911123456", earliest_date="2026-11-24", latest_date="2026-11-27")
            assert waiting["outcome"] == "waitlisted"

            assert (await fails(c, "book_appointment", service="consultation"))["code"] == "invalid_arguments"
            wrong = await fails(c, "find_available_slots", service="massage")
            assert wrong["code"] == "unknown_service" and wrong["suggestions"] == ["consultation", "ultrasound"]
            assert (await fails(c, "book_appointment", service="consultation", starts_at="2026-11-24T10:00:00",
                                customer_name="X", phone="07911123456"))["code"] == "missing_timezone"


async def test_openai_remote_mcp_callers_handshake_list_and_call_with_the_key_in_a_header(live_server, make_business,
                                                                                         api_key):
    """The requests OpenAI's Realtime and Responses `mcp` tools and the Agents SDK's MCPServerStreamableHttp send:
    separate POSTs (initialize at the 2025-06-18 revision, initialized, tools/list, tools/call), the configured
    `headers` on each, and the negotiated version in MCP-Protocol-Version after the handshake."""
    key = api_key(make_business("clinic"))
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    with live_server(frozen=True) as server:
        async with httpx2.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            hello = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "openai-mcp", "version": "1.0.0"}}})
            assert hello.status_code == 200, hello.text
            result = hello.json()["result"]
            assert result["protocolVersion"] == "2025-06-18"
            assert {"tools", "resources", "prompts"} <= set(result["capabilities"])
            after = {"MCP-Protocol-Version": "2025-06-18"}
            noted = await http.post("/mcp", headers=after, json={"jsonrpc": "2.0",
                                                                 "method": "notifications/initialized"})
            assert noted.status_code == 202
            listed = (await http.post("/mcp", headers=after, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            tools = {t["name"]: t for t in listed.json()["result"]["tools"]}
            assert set(tools) == set(TOOLS) and tools["cancel_appointment"]["annotations"]["destructiveHint"] is True
            called = await http.post("/mcp", headers=after, json={
                "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "find_available_slots", "arguments": {"service": "consultation", "date": TUESDAY}}})
    answer = called.json()["result"]
    assert answer["isError"] is False and answer["structuredContent"]["slots"]
    assert json.loads(answer["content"][0]["text"]) == answer["structuredContent"]


async def test_thirty_concurrent_mcp_clients_race_for_one_slot_and_one_wins(
        live_server, make_business, api_key, session_factory):
    business = make_business("clinic")
    key = api_key(business)
    with live_server(frozen=True) as server:
        async with http_client(server.url, key) as c:
            # Dr Okafor alone, on a day Dr Patel works too: the slot is one person's, so exactly one can win
            slot = (await call(c, "find_available_slots", service="consultation", date="2026-11-25",
                               staff="dr-okafor"))["slots"][0]
        outcomes: list[dict] = []
        async with AsyncExitStack() as stack:  # connect first, so the calls themselves start together
            clients = [await stack.enter_async_context(http_client(server.url, key)) for _ in range(30)]

            async def racer(i: int, client: Client) -> None:
                outcomes.append(await call(client, "book_appointment", service="consultation",
                                           starts_at=slot["starts_at"], staff="dr-okafor",
                                           customer_name=f"Racer {i}", phone=f"+4479111234{i:02d}"))

            async with anyio.create_task_group() as tg:
                for i, client in enumerate(clients):
                    tg.start_soon(racer, i, client)
    count = Counter(o["outcome"] for o in outcomes)
    assert count == {"booked": 1, "slot_taken": 29}
    assert all(o["alternatives"] and o["say"].startswith("Sorry") for o in outcomes if o["outcome"] == "slot_taken")
    start = datetime.fromisoformat(slot["starts_at"]).astimezone(UTC)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(
            Booking.business_id == business, Booking.starts_at == start)) == 1


async def test_a_key_only_reaches_its_own_business(live_server, make_business, api_key, session_factory):
    clinic, garage = make_business("clinic"), make_business("garage")
    clinic_key, garage_key = api_key(clinic), api_key(garage)
    with live_server(frozen=True) as server:
        async with http_client(server.url, clinic_key) as c:
            slot = (await call(c, "find_available_slots", service="consultation", date=TUESDAY))["slots"][0]
            code = (await call(c, "book_appointment", service="consultation", starts_at=slot["starts_at"],
                               customer_name="Ann", phone="07911123456"))["appointment"]["code"]
        async with http_client(server.url, garage_key) as g:
            assert [s["key"] for s in (await call(g, "list_services"))["services"]] != ["consultation", "ultrasound"]
            for name, args in (("find_appointments", {"code": code}), ("cancel_appointment", {"code": code}),
                               ("confirm_appointment", {"code": code}),
                               ("reschedule_appointment", {"code": code, "new_starts_at": slot["starts_at"]})):
                assert (await fails(g, name, **args))["code"] == "unknown_booking"
            assert (await call(g, "find_appointments", phone="+447911123456"))["appointments"] == []
        async with http_client(server.url, clinic_key) as c:
            [untouched] = (await call(c, "find_appointments", code=code))["appointments"]
    assert untouched["status"] == "booked" and untouched["starts_at"] == slot["starts_at"]


async def test_requests_without_a_live_key_are_refused_before_any_tool_runs(
        live_server, make_business, api_key, session_factory):
    key = api_key(make_business("clinic"))
    revoked = api_key(make_business("clinic"))
    with session_factory() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == revoked[:12])
                  .values(revoked_at=datetime(2026, 1, 1, tzinfo=UTC)))
        s.commit()
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with live_server() as server:
        async with httpx2.AsyncClient() as http:
            for headers in ({}, {"Authorization": "Bearer nsk_not-a-key"}, {"Authorization": f"Bearer {revoked}"},
                            {"Authorization": f"Basic {key}"}):
                for path in ("/mcp", "/mcp/"):
                    response = await http.post(f"{server.url}{path}", json=body, headers=headers)
                    assert response.status_code == 401, (path, headers)
                    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_dns_rebinding_protection_is_on_by_default_and_answers_in_json_rpc(live_server, make_business, api_key):
    key = api_key(make_business("clinic"))
    settings = Settings(public_url="https://book.example.com", mcp_allowed_origins=["https://app.example.com"])
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    with live_server(settings=settings) as server:
        port = server.url.rsplit(":", 1)[1]
        async with httpx2.AsyncClient(headers=headers) as http:
            async def answer(**extra: str) -> httpx2.Response:
                return await http.post(f"{server.url}/mcp", json=body, headers=extra)

            assert (await answer()).status_code == 200  # a server-side client sends no Origin
            for allowed in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "https://book.example.com",
                            "https://app.example.com"):
                assert (await answer(Origin=allowed)).status_code == 200, allowed
            assert (await answer(Host="book.example.com")).status_code == 200
            assert (await answer(Host=f"localhost:{port}")).status_code == 200
            for foreign in ("https://attacker.example", "http://127.0.0.1:1", "http://book.example.com", "null"):
                refused = await answer(Origin=foreign)
                assert refused.status_code == 403, foreign
                assert refused.json()["jsonrpc"] == "2.0" and refused.json()["error"]["data"]["code"] == \
                    "origin_not_allowed"
            for foreign in ("attacker.example", "127.0.0.1:1", f"book.example.com:{port}"):
                refused = await answer(Host=foreign)
                assert refused.status_code == 421 and refused.json()["error"]["data"]["code"] == "host_not_allowed"

        async with http_client(server.url, key) as client:  # a real session, no Origin: works
            assert len((await client.list_tools()).tools) == len(TOOLS)
        foreign_page = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}", "Origin": "https://attacker.example"})
        with pytest.raises(ExceptionGroup) as refused:  # the SDK's client shows our JSON-RPC error as is
            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=foreign_page)) as client:
                await client.list_tools()
        assert refused.group_contains(MCPError, match="DNS-rebinding protection")


async def test_stdio_server_lists_tools_and_books_for_the_keys_business(database_url, make_business, api_key):
    key = api_key(make_business("clinic"))
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url, "NEXTSLOT_API_KEY": key}
    params = StdioServerParameters(command=sys.executable, args=["-m", "nextslot.cli", "mcp"], env=env)
    async with Client(params) as c:
        assert {t.name for t in (await c.list_tools()).tools} == set(TOOLS)
        slots = (await call(c, "find_available_slots", service="consultation"))["slots"]  # the real clock
        booked = await call(c, "book_appointment", service="consultation", starts_at=slots[0]["starts_at"],
                            customer_name="Stdio Caller", phone="07911123499")
        assert booked["outcome"] == "booked"
        read, prompt = await briefing_of(c)
        assert read["nextslot://business/profile"]["name"] == "Riverside Clinic" and "Europe/London" in prompt


def test_stdio_server_refuses_to_start_without_a_valid_key(database_url):
    import subprocess

    env = {**os.environ, "NEXTSLOT_DATABASE_URL": database_url}
    env.pop("NEXTSLOT_API_KEY", None)
    for args in ([], ["--api-key", "nsk_wrong"], ["--business", "no-such-business"]):
        done = subprocess.run([sys.executable, "-m", "nextslot.cli", "mcp", *args], env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 2 and done.stderr.startswith("nextslot mcp:"), done.stderr


async def test_a_raw_tools_call_hitting_the_database_with_bad_text_gets_no_sql_or_customer_data(
        live_server, make_business, api_key, session_factory):
    """Before: the SDK answered str(DataError), the INSERT statement with the customer's name and phone in it."""
    business = make_business("clinic")
    key = api_key(business)
    with live_server() as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=30) as http:
            answer = await http.post("/mcp", headers={"Authorization": f"Bearer {key}",
                                                      "Accept": "application/json, text/event-stream"}, json={
                "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "book_appointment", "arguments": {
                    "service": "consultation", "starts_at": "2026-12-01T09:00:00+00:00",
                    "customer_name": "Ann\u0000Lee", "phone": "+447911123456", "notes": "knee"}}})
    body = answer.json()
    assert answer.status_code == 200 and body["result"]["isError"] is True
    text = body["result"]["content"][0]["text"]
    assert json.loads(text)["error"]["field"] == "customer_name"
    for leak in ("INSERT", "psycopg", "+447911123456", "knee"):
        assert leak not in json.dumps(body)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == business)) == 0
