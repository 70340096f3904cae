"""Which database errors mean "out of reach for a moment, send it again", on real PostgreSQL connections."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from nextslot.storage.engine import engine_for
from nextslot.storage.outage import database_unreachable, on_fresh_connection

pytestmark = pytest.mark.storage


def dropped() -> OperationalError:
    """As SQLAlchemy raises it when the connection broke under a statement."""
    return OperationalError("COMMIT", {}, psycopg.OperationalError("server closed the connection unexpectedly"),
                            connection_invalidated=True)


def test_a_connection_terminated_by_the_server_is_unreachable_and_bad_data_is_not(engine):
    with engine.connect() as victim:
        pid = victim.execute(text("select pg_backend_pid()")).scalar()
        with engine.connect() as admin:
            admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as lost:
            victim.execute(text("select 1"))
    with engine.connect() as conn, pytest.raises(DBAPIError) as bad:
        conn.execute(text("select 1 / 0"))

    assert database_unreachable(lost.value)
    assert not database_unreachable(bad.value) and not database_unreachable(ValueError("no database here"))


def test_a_statement_psycopg_cannot_send_is_not_an_outage_but_a_refused_connection_is(engine):
    """More parameters than the protocol allows (a huge list in the input) is an OperationalError too."""
    with engine.connect() as conn, pytest.raises(DBAPIError) as too_many:
        conn.execute(text("select 1 where 1 in :ids").bindparams(bindparam("ids", expanding=True)),
                     {"ids": list(range(70_000))})
    refused = create_engine(engine.url.set(port=1))  # nothing listens on port 1
    with pytest.raises(DBAPIError) as unreachable:
        refused.connect()

    assert not database_unreachable(too_many.value)
    assert database_unreachable(unreachable.value)


def test_a_lock_or_statement_past_its_timeout_is_too_busy_for_now_not_a_bug(engine):
    """A deployment's lock_timeout or statement_timeout: nothing was done and the same request may come again (it
    was a 500 with no Retry-After)."""
    with engine.connect() as holder, engine.connect() as waiter:
        holder.execute(text("create temporary table held (id int)"))
        holder.execute(text("insert into held values (1)"))
        holder.execute(text("select pg_advisory_lock(424242)"))
        waiter.execute(text("set lock_timeout = '100ms'"))
        with pytest.raises(DBAPIError) as locked:
            waiter.execute(text("select pg_advisory_lock(424242)"))
        waiter.rollback()
        waiter.execute(text("set statement_timeout = '50ms'"))
        with pytest.raises(DBAPIError) as slow:
            waiter.execute(text("select pg_sleep(1)"))
        holder.execute(text("select pg_advisory_unlock(424242)"))
    assert database_unreachable(locked.value) and database_unreachable(slow.value)


def test_a_write_is_tried_again_after_a_dropped_connection_but_not_after_a_bug():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise dropped()
        return "recorded"

    assert on_fresh_connection(flaky) == "recorded" and len(calls) == 3
    with pytest.raises(ZeroDivisionError):
        on_fresh_connection(lambda: 1 / 0)
    with pytest.raises(OperationalError):
        on_fresh_connection(lambda: (_ for _ in ()).throw(dropped()), tries=2)


def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout_without_a_round_trip(engine):
    pooled = engine_for(engine.url.render_as_string(hide_password=False), pool_size=1)
    try:
        with pooled.connect() as conn:
            pid = conn.execute(text("select pg_backend_pid()")).scalar()
        with engine.connect() as admin:  # the idle pooled connection's backend goes, as in a restart
            admin.execute(text("select pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        with pooled.connect() as conn:
            assert conn.execute(text("select pg_backend_pid()")).scalar() != pid
    finally:
        pooled.dispose()


def test_a_rows_statement_past_its_timeout_fails_alone_and_the_run_goes_on(session_factory):
    """A batch job's row that meets a lock or a statement timeout (too busy for now, a 503 to a client) is that row's
    trouble: its savepoint rolls back and the next row runs. Only a lost connection ends the run."""
    from nextslot.storage.alone import Failed, in_savepoint

    with session_factory() as s:
        s.execute(text("set local statement_timeout = '50ms'"))
        slow = in_savepoint(s, lambda: s.execute(text("select pg_sleep(1)")), "row %s failed", "slow")
        next_one = in_savepoint(s, lambda: s.execute(text("select 42")).scalar(), "row %s failed", "next")
    assert isinstance(slow, Failed) and slow.error == "OperationalError"
    assert next_one == 42
    with pytest.raises(OperationalError):  # a dropped connection is everyone's trouble: it still ends the run
        in_savepoint(session_factory(), lambda: (_ for _ in ()).throw(dropped()), "row %s failed", "gone")
