"""A scripted OpenAI-compatible model on loopback: each chat request takes the next step of a script (a tool
call, words, a slow answer, an HTTP error, malformed arguments), so the real `openai` client meets each case.
Shared by the tests and the conversation evals (`evals/chat_evals.py`)."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from evals.loopback import LiveServer


@dataclass
class Step:
    say: str | None = None  # an answer in words
    call: tuple[str, dict[str, Any] | str] | None = None  # a tool call: name, arguments (a str is sent raw)
    calls: list[tuple[str, dict[str, Any] | str]] | None = None  # several tool calls in one answer
    sleep: float = 0.0  # answer this late
    status: int | None = None  # answer with this HTTP error


@dataclass
class ScriptedModel:
    steps: list[Step]
    requests: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)  # each request's Authorization header
    base_url: str = ""
    repeat_last: bool = False  # keep answering with the last step (a model stuck in a loop)


def words(text: str) -> Step:
    return Step(say=text)


def call(tool: str, arguments: dict[str, Any] | str) -> Step:
    return Step(call=(tool, arguments))


def at_once(*calls: tuple[str, dict[str, Any] | str]) -> Step:
    """One answer making several tool calls (name, arguments), as models do in parallel."""
    return Step(calls=list(calls))


def step_of(data: dict[str, Any]) -> Step:
    """A step written as data: {say: ...}, {call: [tool, arguments]}, {sleep: seconds, ...}, {status: 500}."""
    unknown = set(data) - {"say", "call", "sleep", "status"}
    if unknown:
        raise ValueError(f"a model step has say, call, sleep or status, not {sorted(unknown)}")
    called = data.get("call")
    return Step(say=data.get("say"), call=(called[0], called[1]) if called else None,
                sleep=float(data.get("sleep") or 0), status=data.get("status"))


@contextmanager
def scripted_model(*steps: Step, repeat_last: bool = False) -> Iterator[ScriptedModel]:
    model = ScriptedModel(list(steps), repeat_last=repeat_last)
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        body = await request.json()
        model.requests.append(body)
        model.keys.append(request.headers.get("authorization"))
        index = len(model.requests) - 1
        if index >= len(model.steps) and not model.repeat_last:
            step = Step(say="(the script ran out)")
        else:
            step = model.steps[min(index, len(model.steps) - 1)]
        if step.sleep:
            await asyncio.sleep(step.sleep)
        if step.status:
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}},
                                status_code=step.status)
        if step.call or step.calls:
            made = [step.call] if step.call else step.calls or []
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{index}" + (f"_{n}" if n else ""), "type": "function",
                 "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for n, (name, args) in enumerate(made)]}
        else:
            message = {"role": "assistant", "content": step.say}
        return {"id": f"chatcmpl-{index}", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if step.call or step.calls else "stop"}],
                "usage": {"prompt_tokens": 100 + index, "completion_tokens": 10, "total_tokens": 110 + index}}

    with LiveServer(app) as server:
        model.base_url = f"{server.url}/v1"
        yield model
