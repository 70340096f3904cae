"""`nextslot bench load`: many clients booking at once on every channel against several `nextslot serve`
processes and two `nextslot scheduler` processes sharing one PostgreSQL, with faults injected; then the
invariants, checked from the database.

MCP agents (the SDK's client over streamable HTTP), booking-page visitors (the page's real form) and staff
tools (/v1 with an API key) book in closed loops, plus bursts of clients from every channel released at one
popular slot. The schedulers send confirmations to a fake Twilio API and a real SMTP server on loopback.
Faults: a server killed with SIGKILL and started again, every PostgreSQL connection dropped twice, Twilio
answering 500s and then hanging. Everything runs on this machine, in a throwaway database.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from evals.bench_db import throwaway_database
from evals.bench_figures import BenchFailure, columns, machine, ms, p50, p99
from evals.bench_processes import NextslotProcess, ServerProcess, fleet
from evals.fakes import FakeSmtpServer, FakeTwilio
from evals.load_channels import Outcome
from evals.load_checks import Check, check_invariants, wait_for_drain
from evals.load_cpu import CpuSampler, postgres_pids
from evals.load_faults import Faults
from evals.load_plan import burst_targets, no_whatsapp, seed_offers
from evals.load_run import AGENTS, CHANNELS, STAFF, VISITORS, LoadRun, Scale
from nextslot.core.service import BookingService
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for, libpq_dsn

FULL = Scale(seconds=60, clients={AGENTS: 12, VISITORS: 8, STAFF: 4}, bursts=10, burst_size=24)
QUICK = Scale(seconds=12, clients={AGENTS: 3, VISITORS: 3, STAFF: 2}, bursts=3, burst_size=9)
SCHEDULERS = 2
CHANNEL_NAMES = {"mcp": AGENTS, "page": VISITORS, "staff": STAFF}
DRAIN_TIMEOUT = 90  # seconds for the schedulers to send what is due after the load stops
MESSAGE_RETRY_SECONDS = 2  # instead of 30: messages refused during the Twilio outage go again within the drain


@dataclass(frozen=True)
class LoadResult:
    scale: Scale
    servers: int
    wall: float
    cpu: dict[str, float]  # CPU seconds used during the load: servers, schedulers, PostgreSQL, clients and fakes
    outcomes: list[Outcome]
    reads: dict[str, int]
    bursts: list[tuple[str, str, int, int]]  # service, slot, booked in the burst, bookings at that time in the end
    faults: list[tuple[float, str]]
    checks: list[Check]
    server_memory: list[tuple[str, float | None]]  # each server's resident MB after the load and the drain


SERVER_MEMORY_TARGET_MB = 250


def run_bench_load(settings: Settings, quick: bool = False, faults: bool = True, json_path: Path | None = None,
                   servers: int = 2, log_dir: Path | None = None, channel: str | None = None) -> int:
    """Run the load test in a throwaway database; 0 when every invariant held. With a `channel` ("mcp", "page"
    or "staff"), only that channel's steady clients run, 8 of them and no bursts: what one channel costs."""
    scale = QUICK if quick else FULL
    if channel is not None:
        only = CHANNEL_NAMES[channel]
        scale = replace(scale, clients={name: 8 if name == only else 0 for name in CHANNELS}, bursts=0,
                        burst_size=0)
    title = (f"nextslot load benchmark{' (quick)' if quick else ''}{'' if faults else ' without faults'}"
             f"{f', {channel} only' if channel else ''}")
    with throwaway_database(settings, title) as url:
        lines = machine(libpq_dsn(url))
        for line in lines:
            print(line)
        try:
            result = run_load(url, scale, faults, servers, log_dir)
        except BenchFailure as failure:
            print(f"FAIL {failure}")
            return 1
        print_report(result)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(as_json(result, lines), indent=2))
        print(f"results written to {json_path}")
    return 0 if all(c.ok for c in result.checks) else 1


def run_load(url: str, scale: Scale, inject_faults: bool, servers: int, log_dir: Path | None) -> LoadResult:
    dsn = libpq_dsn(url)
    rng = random.Random(7)
    offers = seed_offers(url)
    engine = engine_for(url, pool_size=1)
    try:
        targets = burst_targets(BookingService(build_session_factory(engine)), offers, scale.bursts, rng)
    finally:
        engine.dispose()
    with FakeTwilio() as twilio, FakeSmtpServer() as smtp:
        twilio.fail_whatsapp(numbers=no_whatsapp)
        server_env, scheduler_env = environments(url, twilio, smtp)
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        with fleet(servers, SCHEDULERS, server_env, scheduler_env, log_dir) as (serving, sending):
            run = LoadRun(offers, [s.base for s in serving], scale, targets, rng)
            faults = Faults(serving, twilio, dsn, scale.seconds) if inject_faults else None
            with CpuSampler(cpu_groups(serving, sending, dsn)) as sampler:
                wall = asyncio.run(drive(run, faults, scale.seconds))
            cpu = sampler.seconds()
            drained, waited = wait_for_drain(dsn, DRAIN_TIMEOUT)
            memory = [(s.name, s.resident_mb) for s in serving]
            checks = [*check_invariants(dsn, run.outcomes, run.unclear_reads, twilio, smtp, drained, waited),
                      processes_check([*serving, *sending], restarted=inject_faults)]
    bursts = [(offer.service, slot, booked, held) for (offer, slot, booked), held
              in zip(run.burst_log, bookings_at(dsn, [(offer.service, slot) for offer, slot, _ in run.burst_log]))]
    return LoadResult(scale, servers, wall, cpu, run.outcomes, run.reads, bursts, faults.log if faults else [],
                      checks, memory)


def cpu_groups(serving: list[ServerProcess], sending: list[NextslotProcess],
               dsn: str) -> dict[str, Callable[[], list[int]]]:
    def pids(processes: Sequence[NextslotProcess]) -> Callable[[], list[int]]:
        return lambda: [p.proc.pid for p in processes if p.proc is not None]  # a restarted server's new pid too

    return {"servers": pids(serving), "schedulers": pids(sending), "PostgreSQL": postgres_pids(dsn),
            "clients and fakes": lambda: [os.getpid()]}


def bookings_at(dsn: str, slots: list[tuple[str, str]]) -> list[int]:
    """Live bookings of each (service, start) in the end, whichever client made them."""
    with psycopg.connect(dsn) as conn:
        return [conn.execute("select count(*) from bookings b join services s on s.id = b.service_id"
                             " where s.key = %s and b.starts_at = %s and b.status in ('booked', 'confirmed')",
                             (service, start)).fetchone()[0] for service, start in slots]


def environments(url: str, twilio: FakeTwilio, smtp: FakeSmtpServer) -> tuple[dict[str, str], dict[str, str]]:
    """Settings of the servers and the schedulers: one database and one secret (links signed by one process are
    read by another); the schedulers send to the fakes."""
    common = {"NEXTSLOT_DATABASE_URL": url, "NEXTSLOT_SECRET_KEY": secrets.token_urlsafe(32), "NEXTSLOT_POOL_SIZE": "5",
              # one business's slot-search budget and an API key's rate are for a hostile tenant or a runaway
              # agent; here every client is the benchmark's, and all of a business's agents share its one key
              "NEXTSLOT_RATE_LIMIT_SLOT_SEARCHES_PER_BUSINESS": "100000/minute",
              "NEXTSLOT_RATE_LIMIT_PER_KEY": "100000/minute"}
    fakes = {**twilio.settings(), **smtp.settings()}
    channels = {f"NEXTSLOT_{name.upper()}": str(value) for name, value in fakes.items()}
    return common, {**common, **channels, "NEXTSLOT_DISPATCH_INTERVAL_SECONDS": "0.5",
                    "NEXTSLOT_MESSAGE_RETRY_SECONDS": str(MESSAGE_RETRY_SECONDS)}


async def drive(run: LoadRun, faults: Faults | None, seconds: float) -> float:
    started = time.monotonic()
    await asyncio.gather(run.run(started, started + seconds), *([faults.run(started)] if faults else []))
    return time.monotonic() - started


def processes_check(processes: list[NextslotProcess], restarted: bool) -> Check:
    down = [p for p in processes if not p.alive]
    name = "every server and scheduler process up at the end"
    if down:
        names = ", ".join(p.name for p in down)
        return Check(name, False, f"not running: {names}; {down[0].name}'s last output: {down[0].tail(500)}")
    return Check(name, True, f"{len(processes)} processes{' (a killed server was started again)' if restarted else ''}")


# --- the report ---------------------------------------------------------------------------------------


def channel_rows(result: LoadResult) -> list[list[str]]:
    rows = [["channel", "requests", "booked", "slot_taken", "rejected", "gave up", "retried", "req/s", "p50", "p99"]]
    for name in (*CHANNELS, "all", "  in bursts"):
        got = [o for o in result.outcomes if name in (o.channel, "all") or (o.burst and name == "  in bursts")]
        if not got:
            continue
        kinds = Counter(o.kind for o in got)
        times = [o.seconds for o in got]
        rows.append([name, f"{len(got):,}", f"{kinds['booked']:,}", f"{kinds['slot_taken']:,}",
                     f"{kinds['rejected']:,}", f"{kinds['gave_up']:,}", f"{sum(1 for o in got if o.retries):,}",
                     "" if name == "  in bursts" else f"{len(got) / result.wall:.1f}", ms(p50(times)), ms(p99(times))])
    return rows


def print_report(result: LoadResult) -> None:
    scale = result.scale
    clients = ", ".join(f"{n} {name}" for name, n in scale.clients.items())
    print(f"{result.servers} `nextslot serve` and {SCHEDULERS} `nextslot scheduler` processes on one PostgreSQL; "
          f"clients in this process on the same cores: {clients} in closed loops, and "
          f"{f'{scale.bursts} bursts of {scale.burst_size} clients at one popular slot each' if scale.bursts else 'no bursts'}"
          f"; {scale.seconds:g} s of load")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    used = sum(result.cpu.values())
    requests = len(result.outcomes) or 1
    asked = requests + sum(result.reads.values())  # a client that finds nothing on its day reads more: per booking
    # request alone, a faster read can look like no change (its clients read more days in the same time)
    print(f"CPU used during the load: {used:.0f} s in {result.wall:.0f} s, {used / (result.wall * cores):.0%} of "
          f"this machine's {cores} cores; per booking request (its slot search included): "
          + ", ".join(f"{name} {seconds * 1000 / requests:.0f} ms" for name, seconds in result.cpu.items())
          + f"; the servers' per booking or read: {result.cpu.get('servers', 0) * 1000 / asked:.1f} ms")
    if result.faults:
        print("faults injected:")
        for at, what in sorted(result.faults):
            print(f"  +{at:5.1f} s  {what}")
    print()
    for line in columns(channel_rows(result), "<>>>>>>>>>"):
        print(line)
    refused = Counter(f"{o.channel}: {o.detail}" for o in result.outcomes if o.kind == "rejected")
    if refused:
        print("rejected, by code: " + ", ".join(f"{code} {n}" for code, n in refused.most_common()))
    reasons = Counter(r for o in result.outcomes for r in o.retries)
    if reasons:
        print("retried attempts, by what the client saw: "
              + ", ".join(f"{reason} {n}" for reason, n in reasons.most_common()))
    print("latency: first attempt to final answer, retries included; reads (untimed): "
          + ", ".join(f"{n:,} {channel}" for channel, n in result.reads.items()))
    wins = ", ".join(f"{booked}/{held}" for _, _, booked, held in result.bursts) or "none"
    print(f"bursts, booked in the burst / bookings starting then in the end (a steady client's booking may have "
          f"taken the slot, or part of it, first): {wins}")
    sizes = ", ".join(f"{name} {'?' if mb is None else f'{mb:.0f}'} MB" for name, mb in result.server_memory)
    over = [mb for _, mb in result.server_memory if mb is None or mb >= SERVER_MEMORY_TARGET_MB]
    print(f"server memory after the load (resident): {sizes}; target < {SERVER_MEMORY_TARGET_MB} MB per server "
          f"{'OVER' if over else 'ok'}")
    print()
    for check in result.checks:
        print(f"{'PASS' if check.ok else 'FAIL'} {check.name}: {check.detail}")


def as_json(result: LoadResult, machine_lines: list[str]) -> dict[str, Any]:
    header, *rows = channel_rows(result)
    return {
        "machine": machine_lines, "scale": asdict(result.scale), "servers": result.servers,
        "schedulers": SCHEDULERS, "wall_seconds": round(result.wall, 2),
        "cpu_seconds": {name: round(seconds, 2) for name, seconds in result.cpu.items()},
        "channels": [dict(zip(header, row)) for row in rows],
        "faults": [{"at": round(at, 2), "what": what} for at, what in sorted(result.faults)],
        "bursts": [{"service": s, "slot": slot, "booked_in_burst": b, "bookings_in_the_end": n}
                   for s, slot, b, n in result.bursts],
        "checks": [asdict(c) for c in result.checks],
        "server_memory_mb": {name: None if mb is None else round(mb, 1) for name, mb in result.server_memory},
    }


if __name__ == "__main__":
    sys.exit(run_bench_load(Settings(), quick="--quick" in sys.argv, faults="--no-faults" not in sys.argv,
                            log_dir=Path("artifacts/bench_load_logs") if "--logs" in sys.argv else None))
