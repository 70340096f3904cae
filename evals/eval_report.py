"""What an eval run records and reports, for the scripted agent and a live model alike: per scenario the
score from the database, the tool calls and their errors, turns and tool latency; a table and a JSON file."""
from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from evals.bench_figures import p99

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Call:
    step: str  # the scripted step it stands for (a live model's call is matched to one by tool, in order)
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
    errors_expected: int = 0  # the error the scenario is about (a step's expect_error)
    errors_unexpected: int = 0
    turns: int = 0  # the caller's turns
    latency_ms_p50: float = 0.0
    latency_ms_p99: float = 0.0
    latency_ms_max: float = 0.0
    error_codes: dict[str, int] = field(default_factory=dict)  # invalid_arguments, unknown_tool, unknown_service...
    model_requests: int = 0  # live mode: chat completions asked of the model
    failures: list[str] = field(default_factory=list)  # why it did not pass
    notes: list[str] = field(default_factory=list)  # what happened that the score does not judge
    calls: list[Call] = field(default_factory=list)


def record(result: ScenarioResult, call: Call) -> None:
    """Add a tool call: an error the scenario is about counts as expected, any other as unexpected."""
    result.calls.append(call)
    if call.error:
        result.error_codes[call.error] = result.error_codes.get(call.error, 0) + 1
        if call.error == call.expected_error:
            result.errors_expected += 1
        else:
            result.errors_unexpected += 1


def summarize(result: ScenarioResult) -> ScenarioResult:
    """Fill in the call count and latency figures; a scenario passes when nothing failed."""
    times = [c.ms for c in result.calls]
    result.tool_calls = len(times)
    if times:
        result.latency_ms_p50 = round(statistics.median(times), 2)
        result.latency_ms_p99 = round(p99(times), 2)
        result.latency_ms_max = round(max(times), 2)
    result.passed = not result.failures
    return result


def table(results: list[ScenarioResult]) -> str:
    """The per-scenario table and a totals line."""
    lines = [f"{'scenario':<40} {'result':<6} {'calls':>5} {'err ok':>6} {'err bad':>7} {'turns':>5} "
             f"{'p50 ms':>7} {'p99 ms':>7}"]
    for r in results:
        lines.append(f"{r.name:<40} {'pass' if r.passed else 'FAIL':<6} {r.tool_calls:>5} {r.errors_expected:>6} "
                     f"{r.errors_unexpected:>7} {r.turns:>5} {r.latency_ms_p50:>7.1f} {r.latency_ms_p99:>7.1f}")
        lines += [f"    - {f}" for f in r.failures]
        lines += [f"    . {n}" for n in r.notes]
    times = [c.ms for r in results for c in r.calls]
    passed = sum(r.passed for r in results)
    codes = sum((Counter(r.error_codes) for r in results), Counter())
    lines.append(f"{passed}/{len(results)} scenarios passed; {len(times)} tool calls, "
                 f"{sum(r.errors_expected for r in results)} expected and "
                 f"{sum(r.errors_unexpected for r in results)} unexpected tool errors; tool latency p50 "
                 f"{statistics.median(times) if times else 0:.1f} ms, p99 {p99(times) if times else 0:.1f} ms")
    if codes:
        lines.append("tool errors by code: " + ", ".join(f"{code} {n}" for code, n in sorted(codes.items())))
    return "\n".join(lines)


def write_json(results: list[ScenarioResult], path: Path, mode: str = "scripted",
               about: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ran_at": datetime.now(UTC).isoformat(), "mode": mode, **(about or {}),
                                "passed": sum(r.passed for r in results), "total": len(results),
                                "turns": sum(r.turns for r in results),
                                "tool_calls": sum(r.tool_calls for r in results),
                                "errors_unexpected": sum(r.errors_unexpected for r in results),
                                "scenarios": [asdict(r) for r in results]}, indent=2))


Play = Callable[[dict[str, Any], sessionmaker[Session]], ScenarioResult]


def run_suite(settings: Any, scenarios: list[dict[str, Any]], play: Play, json_path: Path, mode: str,
              who: str, about: dict[str, Any] | None = None) -> int:
    """Play every scenario on a throwaway database, print the table, write the JSON; exit 1 if any failed."""
    from evals.bench_db import throwaway_database
    from nextslot.storage.engine import build_session_factory, engine_for

    with throwaway_database(settings, f"nextslot agent evals ({mode})") as url:
        engine = engine_for(url)
        try:
            started = time.perf_counter()
            factory = build_session_factory(engine)
            results = [play(s, factory) for s in scenarios]
            elapsed = time.perf_counter() - started
        finally:
            engine.dispose()
    print(table(results))
    print(f"ran {len(results)} scenarios in {elapsed:.1f} s ({who}, real tools, PostgreSQL)")
    write_json(results, json_path, mode, about)
    print(f"results written to {json_path}")
    return 0 if all(r.passed for r in results) else 1
