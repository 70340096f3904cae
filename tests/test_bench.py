"""`nextslot bench core --quick` runs end to end: a smoke test, no timing is asserted."""
from __future__ import annotations

from evals.bench_core import run_bench_core
from nextslot.settings import Settings


def test_quick_core_bench_runs_in_its_own_database_and_prints_every_figure(database_url, capsys):
    # the bench makes (and drops) its own throwaway database on the server this URL points at
    assert run_bench_core(Settings(database_url=database_url), quick=True) == 0

    out = capsys.readouterr().out
    for heading in ("machine:", "PostgreSQL", "seeded", "measurement", "find_slots: a week",
                    "book: uncontended", "bare SQL booking", "application overhead", "racers for one slot",
                    "concurrent writers", "bare SQL writers", "rate / bare SQL's rate", "SQL statements",
                    "bookings/s", "dropped nextslot_bench_"):
        assert heading in out, f"{heading!r} missing from:\n{out}"
    assert "FAIL" not in out


def test_quick_tools_bench_runs_a_real_server_and_prints_every_figure(database_url, capsys):
    from evals.bench_tools import run_bench_tools

    assert run_bench_tools(Settings(database_url=database_url), quick=True) == 0
    out = capsys.readouterr().out
    for heading in ("machine:", "MCP streamable HTTP: find_available_slots", "MCP streamable HTTP: book_appointment",
                    "Vapi webhook: find_available_slots", "Vapi webhook: book_appointment", "30 booked, 0 slot_taken",
                    "clients racing for one slot", "(its CPU meanwhile", "a neighbour's booking, alone",
                    "while another business storms (100)", "a neighbour's slot search, alone",
                    "clients search a crowded business", "dropped nextslot_bench_"):
        assert heading in out, f"{heading!r} missing from:\n{out}"


def test_quick_chat_bench_answers_every_message_through_real_processes(database_url, capsys):
    from evals.bench_chat import run_bench_chat

    assert run_bench_chat(Settings(database_url=database_url), quick=True) == 0
    out = capsys.readouterr().out
    for heading in ("machine:", "message to reply taken by Twilio, guided flow",
                    "message to reply taken by Twilio, model (instant)", "a burst: guided flow", "a second by two",
                    "the webhook's answer to Twilio", "60 messages answered", "dropped nextslot_bench_"):
        assert heading in out, f"{heading!r} missing from:\n{out}"
    assert "FAIL" not in out


def test_quick_capacity_bench_prints_every_figure_beside_bare_sql(database_url, capsys):
    from evals.bench_capacity import run_bench_capacity

    assert run_bench_capacity(Settings(database_url=database_url), quick=True) == 0
    out = capsys.readouterr().out
    for heading in ("machine:", "load average", "find_slots: a week", "book: new customer", "bare SQL booking",
                    "slot searches / s per server core", "bookings / s per database core", "writers on this machine",
                    "stored per booking", "dropped nextslot_bench_"):
        assert heading in out, f"{heading!r} missing from:\n{out}"
    assert "FAIL" not in out


def test_rival_bench_refuses_without_the_address_of_a_floyd_engine(capsys):
    from nextslot.cli import main

    assert main(["bench", "rival"]) == 2
    assert '"error": "missing_floyd"' in capsys.readouterr().err


def test_rival_bench_finds_the_process_serving_an_address_to_read_its_cpu():
    import os

    from fastapi import FastAPI

    from evals.bench_rival import listening_pid
    from evals.loopback import LiveServer, free_port

    with LiveServer(FastAPI()) as server:  # served by this very process
        assert listening_pid(server.url) == os.getpid()
    assert listening_pid(f"http://127.0.0.1:{free_port()}") is None
