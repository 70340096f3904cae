"""Where the load test's CPU goes: the servers, the schedulers, PostgreSQL and the clients all share the same
cores, so the throughput is set by the CPU each booking costs them together. Sampled from /proc (Linux only)."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SAMPLE_SECONDS = 0.5


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU of a process so far; None when it is gone (or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime and stime, fields 14 and 15 of stat


@dataclass
class CpuSampler:
    """Samples the CPU of named groups of processes twice a second while the load runs. A process that exits
    (a killed server) keeps what it used up to its last sample; one started meanwhile counts from its start."""

    groups: dict[str, Callable[[], Iterable[int]]]  # group name -> the pids in it now
    _first: dict[tuple[str, int], float] = field(default_factory=dict)
    _last: dict[tuple[str, int], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuSampler:
        self.sample(starting=True)
        self._thread = threading.Thread(target=self._run, name="cpu sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def sample(self, starting: bool = False) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                used = cpu_seconds(pid)
                if used is None:
                    continue
                self._first.setdefault((name, pid), used if starting else 0.0)
                self._last[(name, pid)] = used

    def seconds(self) -> dict[str, float]:
        """CPU seconds each group used while sampled."""
        used = dict.fromkeys(self.groups, 0.0)
        for (name, pid), last in self._last.items():
            used[name] += last - self._first[(name, pid)]
        return used


def postgres_pids(dsn: str) -> Callable[[], list[int]]:
    """The database server's processes as it lists them (backends and its own background processes); asked
    again at most every few seconds, since backends come and go with the pools."""
    known: list[int] = []
    asked = 0

    def pids() -> list[int]:
        nonlocal asked
        asked += 1
        if asked % 6 == 1:
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    known[:] = [pid for (pid,) in conn.execute("select pid from pg_stat_activity")
                                if pid != conn.info.backend_pid]
            except psycopg.Error:
                pass  # dropped by a fault: the last list stands
        return known

    return pids
