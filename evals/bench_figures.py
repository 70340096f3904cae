"""What the benchmark reports: timed samples, percentiles, the results table and the machine."""
from __future__ import annotations

import gc
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import psycopg
import sqlalchemy


class BenchFailure(Exception):
    """The core gave a wrong answer, or the run could not go ahead: the figures would mean nothing."""


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    name: str
    n: int | None = None
    p50: str = ""
    p99: str = ""
    target: str = ""
    verdict: str = ""
    note: str = ""


class Stopwatch:
    """Times calls, and notes the full garbage collections that fell inside them (CPython's usual p99)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.full_collections: list[float] = []  # how long each took
        self._collecting_since = 0.0
        gc.collect()  # the set-up's garbage is not the measured code's to collect

    def time(self, call: Callable[[], Any]) -> Any:
        gc.callbacks.append(self._watch)
        started = perf_counter()
        try:
            return call()
        finally:
            self.samples.append(perf_counter() - started)
            gc.callbacks.remove(self._watch)

    def _watch(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._collecting_since = perf_counter()
            else:
                self.full_collections.append(perf_counter() - self._collecting_since)

    def gc_note(self) -> str:
        if not self.full_collections:
            return "no full GC pass in the samples"
        return (f"{len(self.full_collections)} sample(s) included a full GC pass "
                f"({', '.join(ms(t) for t in self.full_collections)})")


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p99(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(value: float, limit: float) -> str:
    return "ok" if value < limit else "OVER"


def latency_row(name: str, watch: Stopwatch, target_ms: float | None = None, note: str = "") -> Row:
    samples = watch.samples
    note = f"{note}; {watch.gc_note()}" if note else watch.gc_note()
    if target_ms is None:
        return Row(name, len(samples), ms(p50(samples)), ms(p99(samples)), note=note)
    return Row(name, len(samples), ms(p50(samples)), ms(p99(samples)), f"p99 < {target_ms:g} ms",
               verdict(p99(samples), target_ms / 1000), note)


def columns(lines: list[list[str]], align: str) -> list[str]:
    """Cells as aligned text, a column per character of `align` ('<' left, '>' right)."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(align))]
    return ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(line, align, widths)).rstrip() for line in lines]


def print_table(rows: list[Row]) -> None:
    lines = [["measurement", "n", "p50", "p99", "target", ""]]
    lines += [[r.name, f"{r.n:,}" if r.n else "", r.p50, r.p99, r.target, r.verdict] for r in rows]
    indent = max(len(line[0]) for line in lines) + 4
    for text, note in zip(columns(lines, "<>>><<"), [""] + [r.note for r in rows]):
        print(text)
        if note:
            print(" " * indent + note)


def machine(dsn: str) -> list[str]:
    """Where the figures come from: they mean little without it."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    ram = "? GiB"
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        ram = f"{kib / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    with psycopg.connect(dsn) as conn:
        server = conn.execute("show server_version").fetchone()[0]
        fsync, commit = (conn.execute(f"show {name}").fetchone()[0] for name in ("fsync", "synchronous_commit"))
        round_trip = p50([timed(lambda: conn.execute("select 1").fetchone()) for _ in range(200)])
    loop = min(timed(lambda: sum(range(1_000_000))) for _ in range(5))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine: {cpu}, {cores} cores, {ram} RAM, {platform.system()} {platform.release()}",
        f"PostgreSQL {server} (fsync {fsync}, synchronous_commit {commit}); Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}",
        f"speed check, to compare runs: SELECT 1 round trip {round_trip * 1e6:.0f} µs, "
        f"sum(range(1_000_000)) {ms(loop)} (a shared or busy machine shows here first)",
    ]


def timed(call: Callable[[], Any]) -> float:
    started = perf_counter()
    call()
    return perf_counter() - started
