"""What goes wrong during the load test, on a schedule: Twilio answering 500s and then hanging past the
client's timeout, a server process killed with SIGKILL (and started again), every PostgreSQL connection of
the database dropped, twice."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg

from evals.bench_processes import ServerProcess
from evals.fakes import FakeTwilio

TWILIO_HANG = 12.0  # seconds a hung Twilio request is held: past the channel's 10 s timeout


@dataclass
class Faults:
    """The fault schedule for a run of `seconds`, as fractions of it, and a log of what was done when."""

    servers: list[ServerProcess]
    twilio: FakeTwilio
    dsn: str  # libpq, for the connection that drops the others
    seconds: float
    log: list[tuple[float, str]] = field(default_factory=list)

    def schedule(self) -> list[tuple[float, Callable[[], Awaitable[str]]]]:
        window = max(2.0, self.seconds * 0.1)
        victim = self.servers[0]
        return [
            (0.15, lambda: self.twilio_trouble("errors", window)),
            (0.30, lambda: self.kill(victim)),
            (0.45, self.drop_connections),
            (0.55, lambda: self.restart(victim)),
            (0.65, lambda: self.twilio_trouble("timeouts", window)),
            (0.80, self.drop_connections),
        ]

    async def run(self, started: float) -> None:
        """Inject each fault at its time (on the monotonic clock from `started`), logging what it did."""

        async def at(fraction: float, inject: Callable[[], Awaitable[str]]) -> None:
            await asyncio.sleep(max(0.0, started + fraction * self.seconds - time.monotonic()))
            when = time.monotonic() - started
            self.log.append((when, await inject()))

        await asyncio.gather(*(at(fraction, inject) for fraction, inject in self.schedule()))

    async def twilio_trouble(self, kind: str, seconds: float) -> str:
        self.twilio.outage(kind, seconds, hang=TWILIO_HANG)
        what = "HTTP 500 to every request" if kind == "errors" else f"requests held {TWILIO_HANG:g} s, then 503"
        return f"fake Twilio: {what}, for {seconds:.1f} s"

    async def kill(self, server: ServerProcess) -> str:
        pid = server.proc.pid if server.proc else None
        server.kill()
        return f"kill -9 {server.name} (pid {pid}, {server.base})"

    async def restart(self, server: ServerProcess) -> str:
        began = time.monotonic()
        server.start()
        await asyncio.to_thread(server.wait_ready)
        return f"{server.name} started again on the same port (ready after {time.monotonic() - began:.1f} s)"

    async def drop_connections(self) -> str:
        dropped = await asyncio.to_thread(terminate_backends, self.dsn)
        return f"PostgreSQL: pg_terminate_backend on all {dropped} other connections to the database"


def terminate_backends(dsn: str) -> int:
    """Drop every other connection to this database, as a failover or a restarted PgBouncer would."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()").fetchone()[0]
