"""Every log line `nextslot serve` writes passes through the scrubber (emails, URL passwords, tokens cut), on the
event loop's own thread. Two of its patterns tried every starting point of a long run of letters and scanned to
its end from each: quadratic. One unauthenticated request for a 16 KB path (what uvicorn lets through) cost about
two seconds of the process's only event loop, for every tenant; 40 KB about ten.

The test formats the request's own log record, as the server's JSON log does, and checks that what must be masked
still is. It is no timing claim: the texts are long enough (60-100 KB) that the quadratic patterns ran for half a
minute and more, and SIGALRM stops a run at ten seconds, a thousand times what the linear scrubber needs, so a hang fails
the test instead of stalling the suite."""
from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.telemetry.logs import JsonFormatter, scrub

HANG_SECONDS = 10.0  # the linear scrubber takes milliseconds for these lines; the quadratic one, a minute or more
LONG = 100_000


class OverBudget(Exception):
    pass


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    def stop(*_: object) -> None:
        raise OverBudget(f"scrubbing still ran after {seconds} s: quadratic again")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_request_for_a_long_path_is_logged_in_linear_time_with_its_email_masked(service):
    kept, logger = Kept(), logging.getLogger("nextslot.http")
    logger.addHandler(kept)
    logger.setLevel(logging.INFO)
    path = "/" + "a" * 60_000 + "/ann.lee@example.com"  # about as long as the client lets a URL be
    try:
        with TestClient(create_app(Settings(secret_key="log-scrub-tests"), service=service),
                        base_url="http://127.0.0.1:8000") as client:
            assert client.get(path).status_code == 404
    finally:
        logger.removeHandler(kept)
    [record] = [r for r in kept.records if "a" * 1000 in r.getMessage()]
    with budget(HANG_SECONDS):
        line = JsonFormatter().format(record)
    assert "ann.lee@example.com" not in line and "an…@…" in line


@pytest.mark.parametrize("hostile", [
    "x" * LONG,  # a run of letters with no @ or :// anywhere
    "x" * LONG + "@",  # an @ at its end with no domain
    "x" * LONG + "://",  # a scheme mark with no credentials after it
    "ab://" * (LONG // 5),  # scheme marks over and over
])
def test_the_scrubber_is_linear_in_whatever_text_it_is_given(hostile):
    said = " write to bo@example.org at https://bo:hunter2@example.net/"
    with budget(HANG_SECONDS):
        scrub(hostile + said)
    assert scrub(hostile[:200] + said).endswith(" write to bo…@… at https://…@example.net/")
