"""Every agent tool with generated arguments, through `execute` (the path MCP, OpenAI and the voice webhooks
share) and through a real MCP client session over streamable HTTP: always an answer (a result, or a structured
error other than `internal_error`), no internal text, and a refused call writes nothing."""
from __future__ import annotations

import json

import httpx2
from anyio.from_thread import start_blocking_portal
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, execute
from tests.fuzz.hostile import arguments, assert_clean, assert_whole, counts, examples, json_text

CALLS = st.sampled_from(sorted(TOOLS)).flatmap(
    lambda name: st.tuples(st.just(name), arguments(list(TOOLS[name].input_model.model_fields))))


def check(name: str, ok: bool, text: str, before: dict[str, int], after: dict[str, int]) -> None:
    assert_clean(text)
    if not ok:
        assert json.loads(text)["error"]["code"] != "internal_error", text
        assert after == before, f"{name} was refused but wrote {after} (was {before}): {text}"


def test_generated_tool_calls_through_execute(service, make_business, session_factory):
    ctx = ToolContext(service, make_business("clinic"), "fuzz", caller_phone="+447911123456")

    @given(call=CALLS, as_text=st.booleans())
    @examples(800)
    def run(call, as_text):
        name, args = call
        before = counts(session_factory)
        reply = execute(name, json_text(args) if as_text else args, ctx)
        check(name, reply.ok, reply.text(), before, counts(session_factory))

    run()
    assert_whole(session_factory)


def test_generated_tool_calls_through_a_real_mcp_session(live_server, make_business, api_key, session_factory):
    key = api_key(make_business("clinic"))
    with live_server(frozen=True) as server, start_blocking_portal() as portal:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        with portal.wrap_async_context_manager(Client(streamable_http_client(f"{server.url}/mcp", http_client=http))
                                               ) as client:
            @given(call=CALLS)
            @examples(200)
            def run(call):
                name, args = call
                try:
                    json.dumps(args, allow_nan=False, ensure_ascii=False).encode()
                except ValueError:  # nan, inf, lone surrogates: no MCP client can send them (execute sees them)
                    return
                before = counts(session_factory)
                result = portal.call(client.call_tool, name, args)
                check(name, not result.is_error, result.content[0].text, before, counts(session_factory))

            run()
    assert_whole(session_factory)


def test_unreadable_json_arguments_are_invalid_json(service, make_business):
    ctx = ToolContext(service, make_business("clinic"), "fuzz")
    for text in ('{"limit": ' + "9" * 5000 + "}", "[" * 100_000, '{"service": "consultation"', "\x00"):
        reply = execute("find_available_slots", text, ctx)
        assert not reply.ok and reply.data["error"]["code"] == "invalid_json"
        assert_clean(reply.text())


