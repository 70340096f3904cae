"""Engine and session factory. PostgreSQL only: embedded by default, a server when configured."""
from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from nextslot.settings import Settings
from nextslot.storage.embedded import embedded_base_url


def resolve_database_url(settings: Settings) -> str:
    """Return the configured URL, or start the embedded server and make sure its database exists."""
    if settings.database_url:
        return settings.database_url
    url = embedded_base_url(settings.data_dir).format(db=settings.database_name)
    create_database(url, exist_ok=True)
    return url


def build_engine(settings: Settings) -> Engine:
    return engine_for(resolve_database_url(settings), pool_size=settings.pool_size)


def build_read_engine(settings: Settings) -> Engine | None:
    """An engine on the read replica, when one is configured; its transactions are read-only."""
    if not settings.read_database_url:
        return None
    return engine_for(settings.read_database_url, pool_size=settings.pool_size, read_only=True)


def engine_for(url: str, pool_size: int = 5, read_only: bool = False) -> Engine:
    # sessions in UTC: instants come back as UTC datetimes whatever the server default is. hide_parameters: a
    # statement's values (webhook secrets, customers' contacts) stay out of SQL logging and of the text of a
    # failed statement's exception, which reaches tracebacks and incident logs
    # READ COMMITTED whatever the server's default (a managed PostgreSQL may set another): a claimer that waited
    # for a lock must then see the winner's committed claim, and each statement reads what is committed when it
    # starts, which the answer to a taken time relies on (alternatives.slot_taken)
    # read_only: every transaction of the connection is READ ONLY, a statement run on its own's too (a replica
    # refuses writes anyway; this also holds if the URL names a primary by mistake)
    options = "-c timezone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True, isolation_level="READ COMMITTED",
        connect_args={"options": options},
    )
    event.listen(engine, "checkout", closed_while_pooled)
    event.listen(engine, "checkout", in_transaction_mode)
    return engine


def in_transaction_mode(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out every connection in transaction mode, even one a unit of work left running its statements on their
    own (`SqlAlchemyUnitOfWork.reads_first`) when an error cut its block short: whoever takes it next expects its
    writes to commit or roll back together."""
    if dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def closed_while_pooled(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out no connection the server dropped while it sat in the pool (a restart, a failover, a terminated
    backend), without a round trip: an idle connection has nothing to read unless the server said goodbye (it
    sends a FATAL error and closes), so a readable socket means dead. The pool then connects afresh. What this
    cannot see (a connection cut silently mid-route) fails its statement, which `outage.py` calls unreachable and
    retries, as it did when a ping did this job for one round trip per checkout."""
    pgconn = dbapi_connection.pgconn
    if pgconn.status != psycopg.pq.ConnStatus.OK or dbapi_connection.closed:
        raise DisconnectionError("the database connection was closed while pooled")
    idle = select.poll()
    idle.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if idle.poll(0):
        raise DisconnectionError("the server closed the database connection while it was pooled")


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    # objects stay readable after commit: results are built from them after the transaction
    return sessionmaker(engine, expire_on_commit=False)


def libpq_dsn(url: str, database: str | None = None) -> str:
    """Turn a SQLAlchemy URL into a libpq connection string (optionally for another database)."""
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError(f"the database URL names no database: {make_url(url)!r}")
    return name


def create_database(url: str, exist_ok: bool = False) -> None:
    name = database_name(url)
    with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and exist_ok:
            return
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
