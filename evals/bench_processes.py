"""`nextslot serve` and `nextslot scheduler` as real processes (their own interpreters, as in production),
for the benchmarks: started on free loopback ports, killed on purpose, stopped at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2

from evals.bench_figures import BenchFailure
from evals.load_cpu import cpu_seconds
from evals.loopback import free_port

START_TIMEOUT = 60  # seconds for a server to answer /health (a busy 2-core machine starts them slowly)


class NextslotProcess:
    """One `nextslot <command>` process; its output goes to a file, not a pipe (a pipe nobody reads would stall
    a chatty process), and its tail is shown when it fails."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path | None = None):
        self.name, self.args, self.env = name, args, {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        # kept in log_dir when given (appended across restarts), else thrown away at the end
        self.log = (log_dir / f"{name.replace(' ', '-')}.log").open("a+b") if log_dir else tempfile.TemporaryFile()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "nextslot.cli", *self.args], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def resident_mb(self) -> float | None:
        """The process's resident memory (VmRSS) now, in MB; None when it is not running or not on Linux."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text() if self.alive and self.proc else ""
        except OSError:
            return None
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
        return None if kb is None else kb / 1024

    @property
    def cpu_seconds(self) -> float | None:
        """The CPU time (user + system) the process has used so far; None when it is not running or not on Linux."""
        return cpu_seconds(self.proc.pid) if self.alive and self.proc else None

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye, as when a machine dies."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 2000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-chars:]

    def close(self) -> None:
        self.stop()
        self.log.close()


class ServerProcess(NextslotProcess):
    """`nextslot serve` on its own loopback port; `start` returns once /health answers."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(name, ["serve", "--port", str(self.port)], env, log_dir)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        # one client for all the polls, without TLS: each new client would load the CA bundle (~0.1 s of CPU)
        with httpx2.Client(timeout=1, verify=False) as http:
            while True:
                try:
                    if http.get(f"{self.base}/health").status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                if not self.alive or time.monotonic() > deadline:
                    self.kill()
                    raise BenchFailure(f"{self.name} did not start: {self.tail()}")
                time.sleep(0.1)


def start_servers(servers: list[ServerProcess]) -> None:
    """Start them all, then wait for each: they start side by side."""
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready()


@contextmanager
def server_process(url: str, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """`nextslot serve` on a free loopback port (with `env`'s settings besides the database), stopped at the end."""
    server = ServerProcess("the server", {**(env or {}), "NEXTSLOT_DATABASE_URL": url})
    with closing_all([server]):
        start_servers([server])
        yield server


@contextmanager
def fleet(servers: int, schedulers: int, server_env: Mapping[str, str], scheduler_env: Mapping[str, str],
          log_dir: Path | None = None) -> Iterator[tuple[list[ServerProcess], list[NextslotProcess]]]:
    """Several `nextslot serve` and `nextslot scheduler` processes side by side, as a scaled-out deployment."""
    serving = [ServerProcess(f"server {i + 1}", server_env, log_dir) for i in range(servers)]
    sending = [NextslotProcess(f"scheduler {i + 1}", ["scheduler"], scheduler_env, log_dir)
               for i in range(schedulers)]
    with closing_all([*serving, *sending]):
        for scheduler in sending:
            scheduler.start()
        start_servers(serving)
        yield serving, sending


@contextmanager
def closing_all(processes: list[NextslotProcess]) -> Iterator[list[NextslotProcess]]:
    """Stop every process at the end, even on error."""
    with ExitStack() as stack:
        for p in processes:
            stack.callback(p.close)
        yield processes
