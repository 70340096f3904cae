"""Live agent evals end to end: the real `openai` client talks to a fake model on loopback that reads the tools and
the conversation and answers with scripted tool calls; the live runner runs them through the real tools, has the
other callers act where the scenario says, and scores the database."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from evals.agent_evals import FrozenClock, load_scenarios, resolve
from evals.live_agent import Endpoint, run_live_scenario
from nextslot.cli import main
from nextslot.tools.registry import TOOLS
from tests.conftest import LiveServer, free_port

SCENARIOS = {s["name"]: s for s in load_scenarios()}
TUESDAY = "2026-11-24"
Move = tuple[str, str, dict[str, Any] | str]  # a label for `$label` references, the tool, its arguments (or raw text)
Playbook = dict[str, list[list[Move]]]  # the caller's first line -> the calls the model makes in each caller turn

ANN = "Can I see a GP on Tuesday, first thing?"
GUS = "Tuesday first thing?"
KAY = SCENARIOS["service-that-does-not-exist"]["says"][0]
ANN_BOOKS = {ANN: [[("find", "find_available_slots", {"service": "consultation", "date": TUESDAY})],
                   [("book", "book_appointment", {"service": "consultation", "starts_at": "$find.slots.0.starts_at",
                                                  "customer_name": "Ann Lee", "phone": "07911 100001"})]]}
GUS_LOSES_THEN_TAKES_NEXT = {GUS: [
    [("find", "find_available_slots", {"service": "consultation", "date": TUESDAY})],
    [("try", "book_appointment", {"service": "consultation", "starts_at": "$find.slots.0.starts_at",
                                  "customer_name": "Gus Hale", "phone": "07911 100010"})],
    [("next", "book_appointment", {"service": "consultation", "starts_at": "$try.alternatives.0.starts_at",
                                   "customer_name": "Gus Hale", "phone": "07911 100010"})]]}
KAY_SETTLES = {KAY: [
    [("guess", "book_appointment", {"service": "dental cleaning", "starts_at": f"{TUESDAY}T09:00:00+00:00",
                                    "customer_name": "Kay Lund", "phone": "07911 100051"}),
     ("services", "list_services", {})],
    [("typo", "book_appointment", '{"service": "consultation", "starts_at": '),
     ("book", "book_appointment", {"service": "$services.services.0.key", "starts_at": f"{TUESDAY}T09:00:00+00:00",
                                   "customer_name": "Kay Lund", "phone": "07911 100051"})]]}


def answer(playbook: Playbook, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The next assistant message: the turn's next scripted call (one a request, its `$refs` read from the tool
    results in the conversation, every parameter sent as a strict-mode model does), else a short reply."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    turns = playbook[messages[users[0]]["content"]]
    turn = turns[len(users) - 1] if len(users) <= len(turns) else []
    made = sum(m["role"] == "assistant" for m in messages[users[-1]:])
    results = {m["tool_call_id"].split(":")[1]: json.loads(m["content"]) for m in messages if m["role"] == "tool"}
    if made >= len(turn):
        said = json.loads(messages[-1]["content"]) if messages[-1]["role"] == "tool" else {}
        return {"role": "assistant", "content": said.get("say") or "Anything else?"}
    label, tool, args = turn[made]
    if isinstance(args, dict):
        args = resolve(args, results)
        args = json.dumps({name: args.get(name) for name in TOOLS[tool].input_model.model_fields})
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call:{label}:{len(users)}", "type": "function", "function": {"name": tool, "arguments": args}}]}


@contextmanager
def fake_model(playbook: Playbook, key: str | None = None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible endpoint on a free loopback port; yields its base URL and the request bodies."""
    app, requests = FastAPI(), []

    def refused(request: Request) -> JSONResponse | None:
        if key and request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}}, status_code=401)
        return None

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        return refused(request) or {"object": "list", "data": [{"id": "fake-booker", "object": "model",
                                                                "created": 0, "owned_by": "tests"}]}

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        if problem := refused(request):
            return problem
        body = await request.json()
        requests.append(body)
        assert {t["function"]["name"] for t in body["tools"]} == set(TOOLS)
        message = answer(playbook, body["messages"])
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}]}

    with LiveServer(app) as server:
        yield f"{server.url}/v1", requests


def play(name: str, playbook: Playbook, session_factory, **options: Any):
    with fake_model(playbook) as (url, requests):
        client = Endpoint("fake-booker", url, max_retries=0).client()
        return run_live_scenario(SCENARIOS[name], session_factory, FrozenClock(), client, "fake-booker",
                                 **options), requests


def test_a_simple_booking_is_scored_from_the_database(session_factory):
    result, requests = play("simple-consultation", ANN_BOOKS, session_factory)

    assert result.passed, result
    assert (result.turns, result.tool_calls, result.model_requests) == (2, 2, 4)
    assert [c.step for c in result.calls] == ["find", "book"] and result.errors_unexpected == 0
    assert result.latency_ms_p50 > 0 and result.latency_ms_p99 >= result.latency_ms_p50
    system = requests[0]["messages"][0]["content"]
    assert "Riverside Clinic" in system and "Monday 23 November 2026, 08:00" in system
    assert requests[0]["tools"][0]["function"]["strict"] is True


def test_the_other_caller_books_between_the_search_and_the_booking_and_the_alternative_is_taken(session_factory):
    result, requests = play("lost-race-takes-alternative", GUS_LOSES_THEN_TAKES_NEXT, session_factory)

    assert result.passed, result  # Gus at 9:00 and the other caller at 8:30, as the database says
    assert (result.turns, result.tool_calls, result.notes) == (3, 3, [])
    lost = json.loads(requests[3]["messages"][-1]["content"])
    assert lost["outcome"] == "slot_taken" and lost["alternatives"][0]["starts_at"].startswith(f"{TUESDAY}T09:00")


def test_a_model_that_books_without_searching_still_meets_the_other_caller_first(session_factory):
    straight_to_8_30 = ("try", "book_appointment", {"service": "consultation", "starts_at": f"{TUESDAY}T08:30:00Z",
                                                    "customer_name": "Gus Hale", "phone": "07911 100010"})
    skips_search = {GUS: [[], [straight_to_8_30], GUS_LOSES_THEN_TAKES_NEXT[GUS][2]]}
    result, _ = play("lost-race-takes-alternative", skips_search, session_factory)

    assert result.passed, result
    assert [c.step for c in result.calls] == ["try", "step4"]


def test_tool_errors_are_counted_by_kind_and_the_one_the_scenario_is_about_is_expected(session_factory):
    result, _ = play("service-that-does-not-exist", KAY_SETTLES, session_factory)

    assert result.passed, result
    assert result.error_codes == {"unknown_service": 1, "invalid_json": 1}
    assert (result.errors_expected, result.errors_unexpected, result.tool_calls) == (1, 1, 4)


def test_a_booking_only_announced_fails_and_a_model_stuck_calling_tools_is_stopped(session_factory):
    announced, _ = play("simple-consultation", {ANN: [[], []]}, session_factory)
    assert not announced.passed and any("has 0 bookings" in f for f in announced.failures)
    assert (announced.tool_calls, announced.model_requests) == (0, 2)

    looping = {ANN: [[("info", "get_business_info", {})] * 10, []]}
    stuck, _ = play("simple-consultation", looping, session_factory, max_requests=3)
    assert not stuck.passed and stuck.tool_calls == 3
    assert stuck.notes == ["turn 1: still calling tools after 3 requests"]


def test_the_eval_command_runs_a_live_model_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "live.json"
    with fake_model(GUS_LOSES_THEN_TAKES_NEXT) as (url, _):
        code = main(["eval", "--model", "fake-booker", "--base-url", url, "--only", "lost-race-takes-alternative",
                     "--json", str(path)])

    assert code == 0
    out = capsys.readouterr().out
    assert re.search(r"lost-race-takes-alternative\s+pass\s+3", out) and "1/1 scenarios passed" in out
    saved = json.loads(path.read_text())
    assert (saved["mode"], saved["model"], saved["base_url"]) == ("live", "fake-booker", f"{url}/")
    assert (saved["passed"], saved["total"], saved["tool_calls"]) == (1, 1, 3)
    assert saved["scenarios"][0]["turns"] == 3


def test_an_unusable_endpoint_is_a_structured_error(capsys):
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["eval", "--model", "m", "--base-url", unreachable]) == 2
    error = json.loads(capsys.readouterr().err)
    assert error["error"] == "endpoint_unreachable" and unreachable in error["message"]

    with fake_model(ANN_BOOKS, key="the-right-key") as (url, _):
        assert main(["eval", "--model", "m", "--base-url", url, "--api-key", "a-wrong-key"]) == 2
        assert json.loads(capsys.readouterr().err)["error"] == "endpoint_refused_key"
        assert main(["eval", "--model", "m", "--base-url", url.removesuffix("/v1"), "--api-key", "the-right-key",
                     "--only", "simple-consultation"]) == 2  # no /v1: the first chat request is a 404
        assert json.loads(capsys.readouterr().err.splitlines()[-1])["error"] == "endpoint_not_found"


def test_every_scenario_gives_a_live_caller_something_to_say_and_names_only_setup_results():
    for scenario in SCENARIOS.values():
        lines = scenario.get("says") or [s["caller"] for s in scenario["steps"] if s.get("caller")]
        assert lines, scenario["name"]
        setup = {spec.get("id") for action in scenario.get("setup") or [] for spec in action.values()
                 if isinstance(spec, dict)}
        for ref in re.findall(r"\{\$([\w-]+)", " ".join(lines)):
            assert ref in setup, (scenario["name"], ref)
