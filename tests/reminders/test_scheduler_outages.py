"""A scheduler job whose database is out of reach for a moment (a dropped connection, a failover) ends its run
with a warning and the next run goes on; a bug in a job still reaches the scheduler's error log."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine

from nextslot.core.service import BookingService
from nextslot.reminders.scheduler import build_scheduler, through_outages
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory


class Idle:  # the dispatcher's jobs are not under test here
    def give_up_waiting(self) -> None: ...

    def dispatch_due(self) -> int:
        return 0


def test_every_job_meeting_a_database_out_of_reach_warns_and_returns(engine, clock, caplog):
    unreachable = create_engine(engine.url.set(port=1))  # nothing listens on port 1
    service = BookingService(build_session_factory(unreachable), clock=clock)
    scheduler = build_scheduler(Settings(), service, Idle())
    caplog.set_level(logging.WARNING, logger="nextslot.reminders.scheduler")
    for name in ("calendars", "pushed_calendars", "holds", "deposits", "waitlist"):
        job = scheduler.get_job(name)
        assert job.func(*job.args) is None, name  # before: apscheduler logged an OperationalError's traceback
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("calendars: the database is out of reach (OperationalError)") for m in warned), warned
    assert not any("port" in m or "127.0.0.1" in m for m in warned)  # no connection details in the log
    unreachable.dispose()


def test_a_bug_in_a_job_is_not_taken_for_an_outage():
    with pytest.raises(ZeroDivisionError):
        through_outages("holds", lambda: 1 / 0)
