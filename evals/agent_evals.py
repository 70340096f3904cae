"""Agent scenario evals: scripted callers played through the real tool layer, scored from the database.

Each scenario in `evals/scenarios/*.yaml` is data: a persona and goal, a business (an example plus
overrides), a setup (other callers' bookings, no-shows, waitlist wishes), the tool calls a deterministic
agent makes (arguments may point at earlier results: `$find.slots[0].starts_at`, `$last.appointment.code`;
a step may run only `if` an earlier result says so), and the end state expected in the database. The
score comes from the database rows, never from the transcript: a booking the agent announced but that is
not there fails. A scenario's `says` lines are what the caller tells a live model (`evals/live_agent.py`).
"""
from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from evals.eval_report import ROOT, Call, ScenarioResult, record, run_suite, summarize
from evals.eval_scoring import check_state
from nextslot.core.business.config import apply_config
from nextslot.core.results import Rejected
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.config import BusinessConfig
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import execute

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
class Stage:
    """A scenario's world once set up, before the agent's first word."""
    config: dict[str, Any]  # the business as loaded (example plus overrides)
    business_id: int
    service: BookingService
    clock: FrozenClock
    ctx: ToolContext  # the caller's side: channel and caller id
    others: ToolContext  # staff and other callers
    results: dict[str, Any]  # replies so far by step id (the setup's, then the agent's), `$last`


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
    """Overrides win; mappings merge key by key, lists of entries with a `key` (services, resources) entry by
    entry (an unknown key is added), anything else is replaced."""
    if isinstance(base, dict) and isinstance(overrides, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in overrides.items()}}
    if keyed(base) and keyed(overrides):
        given = {o["key"]: o for o in overrides}
        known = {b["key"] for b in base}
        return [merged(b, given[b["key"]]) if b["key"] in given else copy.deepcopy(b) for b in base] + [
            copy.deepcopy(o) for o in overrides if o["key"] not in known]
    return copy.deepcopy(overrides)


def keyed(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "key" in v for v in value)


def business_config(scenario: dict[str, Any]) -> dict[str, Any]:
    """The scenario's business: an example plus overrides, under a fresh slug."""
    config = yaml.safe_load((EXAMPLES / f"{scenario['business']}.yaml").read_text())
    config = merged(config, scenario.get("overrides") or {})
    config["business"]["slug"] = f"{config['business']['slug']}-eval-{uuid.uuid4().hex[:8]}"
    conversations = config["business"].get("details", {}).get("conversations")
    if conversations and conversations.get("numbers"):  # a number names one business: each run's has its own
        conversations["numbers"] = [f"+4420{uuid.uuid4().int % 10**8:08d}"]
    return config


def create_business(session_factory: sessionmaker[Session], config: dict[str, Any]) -> int:
    """Load the business; return its id."""
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


def stage(scenario: dict[str, Any], session_factory: sessionmaker[Session], clock: FrozenClock,
          channel: str = "eval") -> Stage:
    """Create the scenario's business, set its clock and play its setup (other callers, no-shows, time)."""
    clock.now = datetime.fromisoformat(scenario["now"]) if scenario.get("now") else DEFAULT_NOW
    service = BookingService(session_factory, clock=clock)
    caller = scenario.get("caller") or {}
    config = business_config(scenario)
    business_id = create_business(session_factory, config)
    # a caller id is the caller's own number, proved as the voice webhooks prove it: its bookings answer as hers
    caller_ctx = ToolContext(service, business_id, caller.get("channel", channel), caller_phone=caller.get("caller_id"))
    world = Stage(config, business_id, service, clock, caller_ctx.proving(caller.get("caller_id")),
                  ToolContext(service, business_id, "staff"), {})
    for action in scenario.get("setup") or []:
        background(action, world)
    return world


def score(scenario: dict[str, Any], world: Stage, session_factory: sessionmaker[Session],
          result: ScenarioResult) -> None:
    """Compare the database with the scenario's expected end state."""
    result.failures += check_state(session_factory, world.business_id,
                                   resolve(scenario.get("expect") or {}, world.results))


def step_name(step: dict[str, Any], index: int) -> str:
    return step.get("id", f"step{index}")


def run_scenario(scenario: dict[str, Any], session_factory: sessionmaker[Session],
                 clock: FrozenClock) -> ScenarioResult:
    """Play one scenario on a fresh business and score the database afterwards."""
    result = ScenarioResult(scenario["name"], passed=False)
    try:
        world = stage(scenario, session_factory, clock)
        for index, step in enumerate(scenario["steps"], 1):
            if "background" in step:
                background(step["background"], world)
                continue
            if not condition_met(step.get("if"), world.results):
                continue
            if step.get("caller") or not result.turns:
                result.turns += 1
            play(step, step_name(step, index), world, result)
        score(scenario, world, session_factory, result)
    except (LookupError, ValueError) as problem:
        result.failures.append(f"script broke: {problem}")
    return summarize(result)


def play(step: dict[str, Any], name: str, world: Stage, result: ScenarioResult) -> None:
    """Make one tool call, time it, keep its reply as `$name` and `$last`, and note what was not as expected."""
    results = world.results
    tool = resolve(step["tool"], results)
    args = resolve(step.get("args") or {}, results)
    started = time.perf_counter()
    reply = execute(tool, args, world.ctx)
    ms = (time.perf_counter() - started) * 1000
    results[name] = results["last"] = reply.data
    expected = step.get("expect_error")
    got = None if reply.ok else reply.data["error"]["code"]
    record(result, Call(name, tool, reply.ok, got, expected, round(ms, 2)))
    if got and got != expected:
        result.failures.append(f"{name}: unexpected {got}: {reply.data['error']['message']}")
    elif expected and not got:
        result.failures.append(f"{name}: expected error {expected}, got {reply.data.get('outcome', 'a result')}")
    for ref, wanted in resolve(step.get("expect") or {}, results).items():
        try:
            value = lookup(results, ref)
        except LookupError:
            value = None
        if value != wanted:
            result.failures.append(f"{name}: {ref} is {value!r}, expected {wanted!r}")


def background(action: dict[str, Any], world: Stage) -> None:
    """What happens around the agent: other callers book, customers miss appointments, time passes."""
    (kind, spec), = action.items()
    spec = resolve(spec, world.results)
    clock = world.clock
    if kind == "no_show":  # staff mark it once it has started, at the booking's own time
        now = clock.now
        booking = world.results[spec["booking"]]["appointment"]
        clock.now = datetime.fromisoformat(booking["starts_at"]) + timedelta(minutes=1)
        try:
            marked = world.service.mark_no_show(world.business_id, BookingChange(code=booking["code"], source="staff"))
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
    reply = execute(tool, args, world.others)
    if not reply.ok or reply.data.get("outcome") == "slot_taken":
        raise ValueError(f"setup {kind} {spec.get('id', '')} failed: {reply.data}")
    if "id" in spec:
        world.results[spec["id"]] = reply.data


def run_all(scenarios: list[dict[str, Any]], session_factory: sessionmaker[Session],
            clock: FrozenClock | None = None) -> list[ScenarioResult]:
    clock = clock or FrozenClock()
    return [run_scenario(s, session_factory, clock) for s in scenarios]


def run_evals(settings: Any, only: str | None = None, json_path: Path | None = None) -> int:
    """`nextslot eval`: every scenario (or one) on a throwaway database; exit 1 if any failed."""
    clock = FrozenClock()
    return run_suite(settings, load_scenarios(only=only), lambda s, factory: run_scenario(s, factory, clock),
                     json_path or ROOT / "artifacts" / "agent_evals.json", "scripted", "scripted agent")


__all__ = ["FrozenClock", "Stage", "load_scenarios", "stage", "score", "run_scenario", "background", "run_all",
           "run_evals"]
