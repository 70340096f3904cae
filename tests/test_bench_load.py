"""`nextslot bench load --quick` end to end, faults included: two servers and two schedulers as real processes,
every channel's clients, a server killed, connections dropped, Twilio failing; every invariant must hold."""
from __future__ import annotations

import json

from evals.bench_load import run_bench_load
from nextslot.settings import Settings


def test_quick_load_with_faults_keeps_every_invariant(database_url, capsys, tmp_path):
    # the bench makes (and drops) its own throwaway database on the server this URL points at
    assert run_bench_load(Settings(database_url=database_url), quick=True, json_path=tmp_path / "load.json") == 0

    out = capsys.readouterr().out
    for heading in ("machine:", "faults injected:", "kill -9 server 1", "pg_terminate_backend", "fake Twilio",
                    "MCP agents", "page visitors", "staff API", "p99", "the servers' per booking or read:",
                    "dropped nextslot_bench_"):
        assert heading in out, f"{heading!r} missing from:\n{out}"
    assert "FAIL" not in out
    results = json.loads((tmp_path / "load.json").read_text())
    assert all(check["ok"] for check in results["checks"]) and len(results["checks"]) == 8
    assert {row["channel"].strip() for row in results["channels"]} == {
        "MCP agents", "page visitors", "staff API", "all", "in bursts"}
    assert all(int(row["booked"].replace(",", "")) > 0 for row in results["channels"])
    # where the cores went: every part of the system did work while the load ran; each server's size is known
    assert set(results["cpu_seconds"]) == {"servers", "schedulers", "PostgreSQL", "clients and fakes"}
    assert all(seconds > 0 for seconds in results["cpu_seconds"].values()), results["cpu_seconds"]
    assert all(mb and mb > 0 for mb in results["server_memory_mb"].values()), results["server_memory_mb"]
