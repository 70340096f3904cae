"""Live agent evals: a model behind any OpenAI-compatible endpoint plays the agent's side of each scenario.

The caller's side comes from the scenario: its `says` lines (placeholders such as `{$mine.appointment.code}`
filled from the setup), else its steps' `caller` lines, one line a turn, each after the model's reply. The
model sees the registry's strict function tools and chooses them itself; every call runs through the real tool
layer. Its calls are matched to the scripted steps by tool, in order: that is how other callers act where the
script puts them (a background action runs right after the call matching the step before it, or just before
the call matching the step after it) and how an error the scenario is about counts as expected. The score is
the offline one: the rows in the database, never the transcript.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openai
from sqlalchemy.orm import Session, sessionmaker

from evals.agent_evals import FrozenClock, Stage, background, load_scenarios, lookup, resolve, score, stage, step_name
from evals.eval_report import ROOT, Call, ScenarioResult, record, run_suite, summarize
from nextslot.tools.openai_tools import chat_tools, run_tool_call
from nextslot.tools.registry import TOOLS, execute

PLACEHOLDER = re.compile(r"\{(\$[^{}]+)\}")
REFERENCE = re.compile(r"\$([A-Za-z_][\w-]*)")
MAX_REQUESTS_PER_TURN = 8  # a model still calling tools after this many requests has lost its way
LOCAL_API_KEY = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) accept any key


class EndpointError(Exception):
    """The model's endpoint could not be used: unreachable, refused the key, timed out, or answered nonsense."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str | None = None  # None: the openai package's default (OPENAI_BASE_URL, else api.openai.com)
    api_key: str | None = None
    timeout: float = 120.0
    max_retries: int = 2

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.api_key or LOCAL_API_KEY, base_url=self.base_url, timeout=self.timeout,
                             max_retries=self.max_retries)


# --- the endpoint ----------------------------------------------------------------------------------


def endpoint_error(error: openai.OpenAIError, where: str) -> EndpointError:
    """Say what went wrong with the endpoint, in the CLI's structured-error terms."""
    if isinstance(error, openai.APITimeoutError):
        return EndpointError("endpoint_timeout", f"{where} did not answer in time.")
    if isinstance(error, openai.APIConnectionError):
        return EndpointError("endpoint_unreachable", f"Could not connect to {where}: {error.__cause__ or error}.")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return EndpointError("endpoint_refused_key", f"{where} refused the API key ({error.status_code}): give "
                                                     "--api-key or set OPENAI_API_KEY.")
    if isinstance(error, openai.NotFoundError):
        return EndpointError("endpoint_not_found", f"{where} answered 404 ({error.message}): check --base-url "
                                                   "(it usually ends in /v1) and --model.")
    if isinstance(error, openai.APIStatusError):
        return EndpointError("endpoint_error", f"{where} answered {error.status_code}: {error.message}")
    return EndpointError("endpoint_error", f"{where}: {error}")


def preflight(client: openai.OpenAI) -> None:
    """Fail fast, before a database is made, when the endpoint is unreachable or refuses the key.

    A server without /models is fine: the first chat request tells the rest."""
    try:
        client.with_options(max_retries=0).models.list()
    except (openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError) as error:
        raise endpoint_error(error, str(client.base_url)) from None
    except openai.APIError:
        pass


def complete(client: openai.OpenAI, model: str, messages: list[dict[str, Any]],
             tools: list[dict[str, Any]]) -> Any:
    """Ask the model for its next message."""
    try:
        response = client.chat.completions.create(model=model, messages=messages, tools=tools)
    except openai.OpenAIError as error:
        raise endpoint_error(error, str(client.base_url)) from None
    if not response.choices:
        raise EndpointError("endpoint_error", f"{client.base_url} answered without a message: {response}")
    return response.choices[0].message


# --- the conversation ------------------------------------------------------------------------------


def caller_lines(scenario: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """What the caller says, a line a turn: `says`, else the steps' `caller` lines, with `{$ref}` filled in."""
    lines = scenario.get("says") or [s["caller"] for s in scenario["steps"] if s.get("caller")]
    return [PLACEHOLDER.sub(lambda m: str(lookup(results, m.group(1))), line) for line in lines]


def system_prompt(world: Stage) -> str:
    business = world.config["business"]
    zone = ZoneInfo(business["timezone"])
    now = world.clock.now.astimezone(zone)
    address = (business.get("details") or {}).get("address")
    lines = [f"You are the booking agent answering calls for {business['name']}"
             + (f", {address}." if address else "."),
             f"Its time zone is {business['timezone']}; it is now {now:%A} {now.day} {now:%B %Y, %H:%M} there.",
             "Use the tools for everything about services, times, bookings and the caller's appointments. Never "
             "say that something was booked, moved or cancelled unless a tool result says so.",
             "When the caller has asked for something and given what it needs, do it with the tools right away "
             "rather than asking them to confirm. If a tool reports a problem, fix what you can and try again, "
             "or tell the caller what their options are. Keep replies short."]
    if world.ctx.caller_phone:
        lines.append(f"The caller is calling from {world.ctx.caller_phone} (caller id); the tools use this number "
                     "when you give no phone.")
    return "\n".join(lines)


class Script:
    """Where the conversation stands in the scenario's script: the model's calls are matched to the scripted
    steps by tool, in order, so background actions run at the offline point and expected errors are known."""

    def __init__(self, scenario: dict[str, Any], world: Stage, result: ScenarioResult):
        self.steps, self.world, self.result = scenario["steps"], world, result
        self.next = 0  # the first step not yet passed
        self.pending = [i for i, s in enumerate(self.steps) if "background" in s]

    def tool_of(self, step: dict[str, Any]) -> str | None:
        try:
            return resolve(step["tool"], self.world.results)
        except LookupError:  # a tool named by an earlier answer the model never got
            return None

    def match(self, tool: str) -> int | None:
        return next((i for i in range(self.next, len(self.steps))
                     if "background" not in self.steps[i] and self.tool_of(self.steps[i]) == tool), None)

    def following(self, start: int) -> int:
        """The first agent step from `start` on (the number of steps if none)."""
        return next((i for i in range(start, len(self.steps)) if "background" not in self.steps[i]), len(self.steps))

    def call(self, call: Any) -> dict[str, Any]:
        """Run one of the model's tool calls, with whatever the script has happen around it."""
        index = self.match(call.function.name)
        step = self.steps[index] if index is not None else {}
        if index is not None:
            self.happen(before=index)
        started = time.perf_counter()
        reply = run_tool_call(call, self.world.ctx)
        ms = (time.perf_counter() - started) * 1000
        if index is None:
            name = f"unscripted{len(self.result.calls) + 1}"
        else:
            name = step_name(step, index + 1)
            self.world.results[name] = reply.data
            self.next = index + 1
            self.happen(before=self.following(self.next))
        self.world.results["last"] = reply.data
        error = None if reply.ok else reply.data["error"]["code"]
        record(self.result, Call(name, call.function.name, reply.ok, error, step.get("expect_error"), round(ms, 2)))
        return {"role": "tool", "tool_call_id": call.id, "content": reply.text()}

    def happen(self, before: int) -> None:
        """Run the background actions the script puts before step `before` that have not run yet."""
        for index in [i for i in self.pending if i < before]:
            self.pending.remove(index)
            action = self.steps[index]["background"]
            self.look_up_for(action)
            try:
                background(action, self.world)
            except (LookupError, ValueError) as problem:
                self.result.notes.append(f"background action {index + 1} could not run: {problem}")

    def look_up_for(self, action: dict[str, Any]) -> None:
        """An action that needs a search the model never made (`$find.slots.0`) gets it made on the other
        caller's side, with the script's own arguments: the other caller looked too."""
        for ref in REFERENCE.findall(json.dumps(action)):
            step = next((s for s in self.steps if s.get("id") == ref), None)
            spec = TOOLS.get(self.tool_of(step)) if step else None
            if ref in self.world.results or spec is None or not spec.read_only:
                continue
            try:
                self.world.results[ref] = execute(spec.name, resolve(step.get("args") or {}, self.world.results),
                                                  self.world.others).data
            except LookupError:
                continue

    def unreached(self) -> None:
        for index in self.pending:
            self.result.notes.append(f"background action {index + 1} never ran: the conversation did not get there")


def converse(client: openai.OpenAI, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
             script: Script, max_requests: int) -> None:
    """One caller turn: let the model call tools until it answers in words."""
    for _ in range(max_requests):
        message = complete(client, model, messages, tools)
        script.result.model_requests += 1
        calls = [c for c in message.tool_calls or [] if c.type == "function"]
        messages.append({"role": "assistant", "content": message.content,
                         **({"tool_calls": [{"id": c.id, "type": "function",
                                             "function": {"name": c.function.name,
                                                          "arguments": c.function.arguments}} for c in calls]}
                            if calls else {})})
        if not calls:
            return
        messages += [script.call(c) for c in calls]
    script.result.notes.append(f"turn {script.result.turns}: still calling tools after {max_requests} requests")


def run_live_scenario(scenario: dict[str, Any], session_factory: sessionmaker[Session], clock: FrozenClock,
                      client: openai.OpenAI, model: str,
                      max_requests: int = MAX_REQUESTS_PER_TURN) -> ScenarioResult:
    """Let the model take the scenario's call on a fresh business and score the database afterwards."""
    result = ScenarioResult(scenario["name"], passed=False)
    try:
        world = stage(scenario, session_factory, clock, channel="openai")
        script = Script(scenario, world, result)
        script.happen(before=script.following(0))  # what the script has happen before the agent's first call
        messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(world)}]
        tools = chat_tools()
        for line in caller_lines(scenario, world.results):
            result.turns += 1
            messages.append({"role": "user", "content": line})
            converse(client, model, messages, tools, script, max_requests)
        script.unreached()
        score(scenario, world, session_factory, result)
    except (LookupError, ValueError) as problem:
        result.failures.append(f"script broke: {problem}")
    return summarize(result)


def run_live_evals(settings: Any, endpoint: Endpoint, only: str | None = None, json_path: Path | None = None) -> int:
    """`nextslot eval --model M [--base-url U]`: every scenario (or one) with the model as the agent."""
    scenarios = load_scenarios(only=only)
    client = endpoint.client()
    preflight(client)
    clock = FrozenClock()
    return run_suite(settings, scenarios, lambda s, factory: run_live_scenario(s, factory, clock, client,
                                                                               endpoint.model),
                     json_path or ROOT / "artifacts" / "agent_evals_live.json", "live",
                     f"{endpoint.model} at {client.base_url}",
                     {"model": endpoint.model, "base_url": str(client.base_url)})
