"""The agent scenario evals: every scenario passes through the real tools on PostgreSQL, and the scorer
fails a scenario whose expected end state is not what the database holds."""
from __future__ import annotations

import copy
import json

import pytest

from evals.agent_evals import load_scenarios, run_scenario
from evals.eval_report import table, write_json

SCENARIOS = load_scenarios()


def test_there_are_at_least_thirty_scenarios_with_distinct_names():
    assert len(SCENARIOS) >= 30 and len({s["name"] for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_every_scenario_reaches_its_expected_end_state(scenario, session_factory, clock):
    result = run_scenario(scenario, session_factory, clock)
    assert result.passed, table([result])
    assert result.errors_unexpected == 0 and result.tool_calls >= 1


def test_a_wrong_expected_end_state_is_reported_as_a_failure(session_factory, clock, tmp_path):
    right = next(s for s in SCENARIOS if s["name"] == "simple-consultation")
    wrong = copy.deepcopy(right)
    (phone, (booking,)), = wrong["expect"]["bookings_of"].items()
    booking["starts_at"] = "2026-11-24T09:00:00+00:00"
    booking["status"] = "cancelled"
    wrong["expect"]["waitlist_of"] = {phone: [{"service": "consultation"}]}
    wrong["steps"][0]["expect_error"] = "unknown_service"  # a call that succeeds but should have failed

    result = run_scenario(wrong, session_factory, clock)

    assert not result.passed
    assert any("starts_at" in f for f in result.failures) and any("status" in f for f in result.failures)
    assert any("waitlist" in f for f in result.failures)
    assert any("expected error unknown_service" in f for f in result.failures)
    assert run_scenario(right, session_factory, clock).passed
    write_json([result], tmp_path / "evals.json")
    saved = json.loads((tmp_path / "evals.json").read_text())
    assert (saved["passed"], saved["total"], saved["scenarios"][0]["passed"]) == (0, 1, False)


def test_a_booking_the_agent_never_made_fails_the_scenario(session_factory, clock):
    right = next(s for s in SCENARIOS if s["name"] == "simple-consultation")
    silent = {**copy.deepcopy(right), "steps": right["steps"][:1]}  # finds slots, never books
    result = run_scenario(silent, session_factory, clock)
    assert not result.passed and any("has 0 bookings" in f for f in result.failures)


def test_the_eval_command_refuses_unknown_scenarios_and_a_live_run_without_a_model(capsys):
    from nextslot.cli import main

    assert main(["eval", "--only", "no-such-scenario"]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "unknown_scenario"
    assert main(["eval", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "missing_model"
