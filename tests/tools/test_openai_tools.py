"""OpenAI function calling end to end: the real `openai` client talks to a scripted OpenAI-compatible server on
loopback, and every tool call it returns runs through the dispatcher and the core, for both APIs."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request
from openai import OpenAI
from sqlalchemy import select

from nextslot.storage.tables import Booking
from nextslot.tools.context import ToolContext
from nextslot.tools.openai_tools import chat_tools, responses_tools, run_tool_calls
from nextslot.tools.registry import TOOLS
from tests.conftest import LiveServer

TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
Turn = Callable[[dict[str, Any]], dict[str, Any]]


@contextmanager
def fake_openai(script: list[Turn]) -> Iterator[tuple[OpenAI, list[dict[str, Any]]]]:
    """Answer the n-th request (chat or responses) with script[n](request body); keep every request body."""
    requests: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    @app.post("/v1/responses")
    async def answer(request: Request) -> dict[str, Any]:
        requests.append(await request.json())
        return script[len(requests) - 1](requests[-1])

    with LiveServer(app) as server:
        yield OpenAI(api_key="test", base_url=f"{server.url}/v1", max_retries=0), requests


def strict_args(tool: str, **given: Any) -> dict[str, Any]:
    """Arguments as a model in strict mode sends them: every parameter present, null when not given."""
    return {name: given.get(name) for name in TOOLS[tool].input_model.model_fields}


def chat_reply(*calls: tuple[str, str], text: str | None = None) -> Turn:
    tool_calls = [{"id": f"call_{i}_{name}", "type": "function", "function": {"name": name, "arguments": arguments}}
                  for i, (name, arguments) in enumerate(calls)]
    message = {"role": "assistant", "content": text, **({"tool_calls": tool_calls} if tool_calls else {})}
    return lambda _: {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-test",
                      "choices": [{"index": 0, "message": message,
                                   "finish_reason": "tool_calls" if calls else "stop"}]}


def responses_reply(*calls: tuple[str, str], text: str | None = None) -> Turn:
    output = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}_{name}", "name": name,
               "arguments": arguments, "status": "completed"} for i, (name, arguments) in enumerate(calls)]
    if text:
        output.append({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]})
    return lambda _: {"id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-test",
                      "status": "completed", "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                      "tools": []}


def call(tool: str, **given: Any) -> tuple[str, str]:
    return tool, json.dumps(strict_args(tool, **given))


def tool_outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results a request carries, parsed, in order (both APIs)."""
    items = body.get("messages") or body.get("input") or []
    return [json.loads(i.get("content") or i.get("output")) for i in items
            if i.get("role") == "tool" or i.get("type") == "function_call_output"]


def book_first_slot(reply: Callable[..., Turn]) -> Turn:
    """The model's second turn: book the first slot the first tool result offered."""
    def turn(body: dict[str, Any]) -> dict[str, Any]:
        starts_at = tool_outputs(body)[0]["slots"][0]["starts_at"]
        return reply(call("book_appointment", service="consultation", starts_at=starts_at,
                          customer_name="Ann Lee", phone="07911 123456"))(body)
    return turn


@pytest.fixture
def ctx(service, make_business) -> ToolContext:
    return ToolContext(service=service, business_id=make_business("clinic"), channel="openai")


def assert_strict(tool: dict[str, Any]) -> None:
    assert tool["strict"] is True, tool
    parameters = tool["parameters"]
    assert parameters["additionalProperties"] is False
    assert set(parameters["required"]) == set(parameters["properties"])


def bookings(session_factory, business_id: int) -> list[Booking]:
    with session_factory() as session:
        return list(session.scalars(select(Booking).where(Booking.business_id == business_id)))


def test_chat_completions_loop_finds_a_slot_books_it_and_sends_strict_tools(ctx, session_factory):
    script = [chat_reply(call("find_available_slots", service="consultation", date=TUESDAY)),
              book_first_slot(chat_reply), chat_reply(text="You're booked for Tuesday at 8:30.")]
    with fake_openai(script) as (client, requests):
        messages: list[Any] = [{"role": "user", "content": "A consultation on Tuesday please, I'm Ann Lee."}]
        while True:
            completion = client.chat.completions.create(model="gpt-test", messages=messages, tools=chat_tools())
            messages.append(completion.choices[0].message)
            if not (results := run_tool_calls(completion, ctx)):
                break
            messages += results

    assert completion.choices[0].message.content == "You're booked for Tuesday at 8:30."
    assert len(requests) == 3 and tool_outputs(requests[2])[1]["outcome"] == "booked"
    assert {t["function"]["name"] for t in requests[0]["tools"]} == set(TOOLS)
    for tool in requests[0]["tools"]:
        assert tool["type"] == "function"
        assert_strict(tool["function"])
    [booking] = bookings(session_factory, ctx.business_id)
    assert booking.source == "openai" and booking.customer.name == "Ann Lee"


def test_responses_api_loop_finds_a_slot_and_books_it(ctx, session_factory):
    script = [responses_reply(call("find_available_slots", service="consultation", date=TUESDAY)),
              book_first_slot(responses_reply), responses_reply(text="Done.")]
    with fake_openai(script) as (client, requests):
        items: list[Any] = [{"role": "user", "content": "A consultation on Tuesday please, I'm Ann Lee."}]
        while True:
            response = client.responses.create(model="gpt-test", input=items, tools=responses_tools())
            items += response.output
            if not (results := run_tool_calls(response, ctx)):
                break
            items += results

    assert response.output_text == "Done."
    sent_calls = [i for i in requests[2]["input"] if i.get("type") == "function_call"]
    assert [c["name"] for c in sent_calls] == ["find_available_slots", "book_appointment"]
    assert tool_outputs(requests[2])[1]["outcome"] == "booked"
    for tool in requests[0]["tools"]:
        assert tool["type"] == "function"
        assert_strict(tool)
    [booking] = bookings(session_factory, ctx.business_id)
    assert booking.source == "openai"


def test_malformed_tool_calls_come_back_as_errors_the_model_can_act_on(ctx, session_factory):
    script = [chat_reply(("book_appointment", '{"service": "consultation", "starts_at": '),
                         call("find_available_slots", service="consultation", days="a few"),
                         call("find_available_slots", service="deep tissue massage"),
                         ("book_a_table", "{}")),
              chat_reply(text="Sorry, let me try again.")]
    with fake_openai(script) as (client, requests):
        messages: list[Any] = [{"role": "user", "content": "Book me in"}]
        completion = client.chat.completions.create(model="gpt-test", messages=messages, tools=chat_tools())
        results = run_tool_calls(completion.choices[0].message, ctx)  # a message works as well as the response
        client.chat.completions.create(model="gpt-test", messages=[*messages, completion.choices[0].message,
                                                                   *results], tools=chat_tools())

    assert [r["tool_call_id"] for r in results] == [c.id for c in completion.choices[0].message.tool_calls]
    bad_json, wrong_type, hallucinated, unknown_tool = (o["error"] for o in tool_outputs(requests[1]))
    assert bad_json["code"] == "invalid_json"
    assert wrong_type["code"] == "invalid_arguments" and wrong_type["field"] == "days"
    assert hallucinated["code"] == "unknown_service" and hallucinated["suggestions"] == ["consultation", "ultrasound"]
    assert unknown_tool["code"] == "unknown_tool"
    assert bookings(session_factory, ctx.business_id) == []


def test_dispatching_the_same_response_twice_books_once(ctx, session_factory, service):
    from openai.types.chat import ChatCompletion

    slot = run_tool_calls(ChatCompletion.model_validate(
        chat_reply(call("find_available_slots", service="consultation", date=TUESDAY))({})), ctx)
    starts_at = json.loads(slot[0]["content"])["slots"][0]["starts_at"]
    booking = ChatCompletion.model_validate(chat_reply(call(
        "book_appointment", service="consultation", starts_at=starts_at, customer_name="Ann Lee",
        phone="07911 123456"))({}))
    first, again = (json.loads(run_tool_calls(booking, ctx)[0]["content"]) for _ in range(2))
    assert first["outcome"] == "booked" and again["replayed"] is True
    assert again["appointment"]["code"] == first["appointment"]["code"]
    assert len(bookings(session_factory, ctx.business_id)) == 1
