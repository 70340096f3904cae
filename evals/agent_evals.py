"""Agent scenario evals: scripted callers played through the real tool layer, scored from the database.

Each scenario in `evals/scenarios/*.yaml` is data: a persona and goal, a business (an example plus
overrides), a setup (other callers' bookings, no-shows, waitlist wishes), the tool calls a deterministic
agent makes (arguments may point at earlier results: `$find.slots[0].starts_at`, `$last.appointment.code`;
a step may run only `if` an earlier result says so), and the end state expected in the database. The
score comes from the database rows, never from the transcript: a booking the agent announced but that is
not there fails.
"""
from __future__ import annotations

import copy
import json
import re
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from evals.eval_scoring import check_state
from nextslot.core.business_config import apply_config
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.config import BusinessConfig
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
EXAMPLES = ROOT / "examples"
DEFAULT_NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday morning, as in the tests
CODE_ALPHABET = "ACDEFHJKMNPRTWXY34679"


class FrozenClock:
    """The scenario's clock: it only moves when a setup step moves it."""

    def __init__(self, now: datetime = DEFAULT_NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Call:
    step: str
    tool: str
    ok: bool
    error: str | None
    expected_error: str | None
    ms: float


@dataclass
class ScenarioResult:
    name: str
    passed: bool
    tool_calls: int = 0
    errors_expected: int = 0
    errors_unexpected: int = 0
    turns: int = 0
    latency_ms_p50: float = 0.0
    latency_ms_max: float = 0.0
    failures: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)


# --- loading ---------------------------------------------------------------------------------------


def load_scenarios(directory: Path = SCENARIOS, only: str | None = None) -> list[dict[str, Any]]:
    """Read every scenario (a file holds one mapping or a list of them), sorted by file then order."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for scenario in data if isinstance(data, list) else [data]:
            found.append({**scenario, "file": path.name})
    names = [s["name"] for s in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"scenario names used twice: {sorted(duplicates)}")
    if only is not None:
        found = [s for s in found if s["name"] == only]
        if not found:
            raise LookupError(f"no scenario named {only!r}; there are: {', '.join(names)}")
    return found


def merged(base: Any, overrides: Any) -> Any:
    """Overrides win; mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overrides, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in overrides.items()}}
    return copy.deepcopy(overrides)


def create_business(session_factory: sessionmaker[Session], scenario: dict[str, Any]) -> int:
    """Load the scenario's business (an example plus overrides) under a fresh slug; return its id."""
    config = yaml.safe_load((EXAMPLES / f"{scenario['business']}.yaml").read_text())
    config = merged(config, scenario.get("overrides") or {})
    config["business"]["slug"] = f"{config['business']['slug']}-eval-{uuid.uuid4().hex[:8]}"
    result = apply_config(SqlAlchemyUnitOfWork(session_factory), BusinessConfig.model_validate(config))
    if isinstance(result, Rejected):
        raise ValueError(f"the business config was refused: {result}")
    return result.business_id


# --- references: $step.path ------------------------------------------------------------------------

PATH_PART = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def lookup(results: dict[str, Any], ref: str) -> Any:
    """`$find.slots.0.starts_at` (or `slots[0]`) -> that value of step `find`'s reply; `|mistype` changes the
    last symbol of a booking code to the next one in the code alphabet."""
    ref, _, transform = ref[1:].partition("|")
    parts = [int(m.group(2)) if m.group(2) is not None else int(m.group(1))
             if re.fullmatch(r"-?\d+", m.group(1)) else m.group(1) for m in PATH_PART.finditer(ref)]
    value: Any = results
    for part in parts:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            raise LookupError(f"${ref} is not in the earlier results") from None
    if transform == "mistype":
        symbol = value[-1]
        value = value[:-1] + CODE_ALPHABET[(CODE_ALPHABET.index(symbol) + 1) % len(CODE_ALPHABET)]
    elif transform:
        raise ValueError(f"unknown transform |{transform}")
    return value


def resolve(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str) and re.match(r"\$[A-Za-z_]", value):  # "$25.00" stays money
        return lookup(results, value)
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def condition_met(condition: dict[str, Any] | None, results: dict[str, Any]) -> bool:
    """`if: {"$last.outcome": slot_taken}`: every reference equals its value (a missing one never does)."""
    for ref, wanted in (condition or {}).items():
        try:
            if lookup(results, ref) != wanted:
                return False
        except LookupError:
            return False
    return True


# --- running ---------------------------------------------------------------------------------------


def run_scenario(scenario: dict[str, Any], session_factory: sessionmaker[Session],
                 clock: FrozenClock) -> ScenarioResult:
    """Play one scenario on a fresh business and score the database afterwards."""
    clock.now = datetime.fromisoformat(scenario["now"]) if scenario.get("now") else DEFAULT_NOW
    service = BookingService(session_factory, clock=clock)
    caller = scenario.get("caller") or {}
    result = ScenarioResult(scenario["name"], passed=False)
    results: dict[str, Any] = {}
    try:
        business_id = create_business(session_factory, scenario)
        ctx = ToolContext(service, business_id, caller.get("channel", "eval"), caller_phone=caller.get("caller_id"))
        others = ToolContext(service, business_id, "staff")
        for action in scenario.get("setup") or []:
            background(action, results, others, service, clock)
        for index, step in enumerate(scenario["steps"], 1):
            if "background" in step:
                background(step["background"], results, others, service, clock)
                continue
            if not condition_met(step.get("if"), results):
                continue
            if step.get("caller") or not result.turns:
                result.turns += 1
            play(step, step.get("id", f"step{index}"), results, ctx, result)
        result.failures += check_state(session_factory, business_id, resolve(scenario.get("expect") or {}, results))
    except (LookupError, ValueError) as problem:
        result.failures.append(f"script broke: {problem}")
    times = [c.ms for c in result.calls]
    result.tool_calls = len(result.calls)
    result.latency_ms_p50 = round(statistics.median(times), 2) if times else 0.0
    result.latency_ms_max = round(max(times), 2) if times else 0.0
    result.passed = not result.failures
    return result


def play(step: dict[str, Any], name: str, results: dict[str, Any], ctx: ToolContext, result: ScenarioResult) -> None:
    """Make one tool call, time it, keep its reply as `$name` and `$last`, and note what was not as expected."""
    tool = resolve(step["tool"], results)
    args = resolve(step.get("args") or {}, results)
    started = time.perf_counter()
    reply = execute(tool, args, ctx)
    ms = (time.perf_counter() - started) * 1000
    results[name] = results["last"] = reply.data
    expected = step.get("expect_error")
    got = None if reply.ok else reply.data["error"]["code"]
    result.calls.append(Call(name, tool, reply.ok, got, expected, round(ms, 2)))
    if got and got == expected:
        result.errors_expected += 1
    elif got:
        result.errors_unexpected += 1
        result.failures.append(f"{name}: unexpected {got}: {reply.data['error']['message']}")
    elif expected:
        result.failures.append(f"{name}: expected error {expected}, got {reply.data.get('outcome', 'a result')}")
    for ref, wanted in resolve(step.get("expect") or {}, results).items():
        try:
            value = lookup(results, ref)
        except LookupError:
            value = None
        if value != wanted:
            result.failures.append(f"{name}: {ref} is {value!r}, expected {wanted!r}")


def background(action: dict[str, Any], results: dict[str, Any], ctx: ToolContext, service: BookingService,
               clock: FrozenClock) -> None:
    """What happens around the agent: other callers book, customers miss appointments, time passes."""
    (kind, spec), = action.items()
    spec = resolve(spec, results)
    if kind == "no_show":  # staff mark it once it has started, at the booking's own time
        now = clock.now
        booking = results[spec["booking"]]["appointment"]
        clock.now = datetime.fromisoformat(booking["starts_at"]) + timedelta(minutes=1)
        try:
            marked = service.mark_no_show(ctx.business_id, BookingChange(code=booking["code"], source="staff"))
        finally:
            clock.now = now
        if isinstance(marked, Rejected):
            raise ValueError(f"setup no_show refused: {marked}")
        return
    if kind == "clock":
        clock.now = datetime.fromisoformat(spec)
        return
    tool = {"book": "book_appointment", "waitlist": "join_waitlist", "cancel": "cancel_appointment",
            "hold": "hold_slot"}[kind]
    args = {k: v for k, v in spec.items() if k != "id"}
    reply = execute(tool, args, ctx)
    if not reply.ok or reply.data.get("outcome") == "slot_taken":
        raise ValueError(f"setup {kind} {spec.get('id', '')} failed: {reply.data}")
    if "id" in spec:
        results[spec["id"]] = reply.data


# --- reporting -------------------------------------------------------------------------------------


def run_all(scenarios: list[dict[str, Any]], session_factory: sessionmaker[Session],
            clock: FrozenClock | None = None) -> list[ScenarioResult]:
    clock = clock or FrozenClock()
    return [run_scenario(s, session_factory, clock) for s in scenarios]


def table(results: list[ScenarioResult]) -> str:
    """The per-scenario table and a totals line."""
    lines = [f"{'scenario':<40} {'result':<6} {'calls':>5} {'err ok':>6} {'err bad':>7} {'turns':>5} "
             f"{'p50 ms':>7} {'max ms':>7}"]
    for r in results:
        lines.append(f"{r.name:<40} {'pass' if r.passed else 'FAIL':<6} {r.tool_calls:>5} {r.errors_expected:>6} "
                     f"{r.errors_unexpected:>7} {r.turns:>5} {r.latency_ms_p50:>7.1f} {r.latency_ms_max:>7.1f}")
        lines += [f"    - {f}" for f in r.failures]
    times = [c.ms for r in results for c in r.calls]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} scenarios passed; {len(times)} tool calls, "
                 f"{sum(r.errors_expected for r in results)} expected and "
                 f"{sum(r.errors_unexpected for r in results)} unexpected tool errors; tool latency p50 "
                 f"{statistics.median(times) if times else 0:.1f} ms, max {max(times, default=0):.1f} ms")
    return "\n".join(lines)


def write_json(results: list[ScenarioResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ran_at": datetime.now(UTC).isoformat(), "mode": "scripted",
                                "passed": sum(r.passed for r in results), "total": len(results),
                                "scenarios": [asdict(r) for r in results]}, indent=2))


def run_evals(settings: Any, only: str | None = None, json_path: Path | None = None) -> int:
    """`nextslot eval`: every scenario (or one) on a throwaway database; exit 1 if any failed."""
    from evals.bench_db import throwaway_database
    from nextslot.storage.engine import build_session_factory, engine_for

    scenarios = load_scenarios(only=only)
    with throwaway_database(settings, "nextslot agent evals") as url:
        engine = engine_for(url)
        try:
            started = time.perf_counter()
            results = run_all(scenarios, build_session_factory(engine))
            elapsed = time.perf_counter() - started
        finally:
            engine.dispose()
    print(table(results))
    print(f"ran {len(results)} scenarios in {elapsed:.1f} s (scripted agent, real tools, PostgreSQL)")
    path = json_path or ROOT / "artifacts" / "agent_evals.json"
    write_json(results, path)
    print(f"results written to {path}")
    return 0 if all(r.passed for r in results) else 1


__all__ = ["FrozenClock", "ScenarioResult", "load_scenarios", "run_scenario", "run_all", "table", "write_json",
           "run_evals"]
