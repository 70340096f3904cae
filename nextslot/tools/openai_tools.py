"""OpenAI function calling, generated from the registry: strict tools for Chat Completions and the Responses
API, and a dispatcher that runs a response's tool calls and returns the results to send back.

The schemas come from the openai package's own helpers, so they follow its strict-mode rules
(every field required, optional ones nullable, no additional properties).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import openai

from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, ToolReply, execute


def chat_tools() -> list[dict[str, Any]]:
    """Every tool as a strict Chat Completions function, for `chat.completions.create(tools=...)`."""
    return [openai.pydantic_function_tool(spec.input_model, name=spec.name, description=spec.description)
            for spec in TOOLS.values()]


def responses_tools() -> list[dict[str, Any]]:
    """Every tool as a strict Responses API function, for `responses.create(tools=...)`."""
    return [openai.pydantic_responses_function_tool(spec.input_model, name=spec.name, description=spec.description)
            for spec in TOOLS.values()]


def run_tool_calls(response: Any, ctx: ToolContext) -> list[dict[str, Any]]:
    """Run the function calls of a Chat Completions response (or its message) or of a Responses API response;
    return the tool results to append to the conversation, in call order. Give ctx the channel "openai".

    Arguments the model got wrong come back as error JSON in the result, so it can correct itself.
    Each call's id is its idempotency key (unless the model sent one): dispatching the same response
    twice replays the first answers and never books twice.
    """
    if hasattr(response, "output"):  # Responses API
        return [{"type": "function_call_output", "call_id": item.call_id,
                 "output": execute(item.name, item.arguments, keyed(ctx, item.call_id)).text()}
                for item in response.output if item.type == "function_call"]
    message = response.choices[0].message if hasattr(response, "choices") else response
    return [{"role": "tool", "tool_call_id": call.id, "content": run_tool_call(call, ctx).text()}
            for call in message.tool_calls or [] if call.type == "function"]


def run_tool_call(call: Any, ctx: ToolContext) -> ToolReply:
    """Run one Chat Completions function call (its id is the idempotency key unless the model sent one)."""
    return execute(call.function.name, call.function.arguments, keyed(ctx, call.id))


def keyed(ctx: ToolContext, call_id: str) -> ToolContext:
    return replace(ctx, idempotency_key=ctx.idempotency_key or f"openai:{call_id}")
