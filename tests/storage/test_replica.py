"""Availability reads on a real streaming replica, writes on the primary, and a lagging replica's stale slot refused.

The test makes its own two PostgreSQL 15 clusters in a temporary directory: a scratch primary (wal_level=replica)
and a standby fed by `pg_basebackup -R`, each on a free loopback port. It takes about 10-20 s; it is skipped when
the server binaries are not on this machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, create_engine, text

from evals.loopback import free_port
from nextslot.core.business.config import apply_config
from nextslot.core.results import Booked, Slots, SlotTaken
from nextslot.runtime import build_service
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for
from nextslot.storage.migrate import upgrade
from nextslot.storage.uow import SqlAlchemyUnitOfWork

pytestmark = pytest.mark.storage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
READ_APP, WRITE_APP = "nextslot-read-test", "nextslot-write-test"  # application_name of each engine's sessions


def server_bin() -> Path | None:
    candidates = [Path("/usr/lib/postgresql/15/bin")]
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres")):
            return folder
    return None


def as_server_user() -> list[str] | None:
    """PostgreSQL refuses to run as root: then run its tools as the `postgres` user, if there is one."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return [runuser, "-u", "postgres", "--"] if runuser else None


@dataclass
class Clusters:
    primary_url: str
    replica_url: str
    primary: Engine
    replica: Engine


def run(prefix: list[str], *args: str | Path) -> None:
    subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True, timeout=120)


def caught_up(primary: Engine, replica: Engine, timeout: float = 60) -> None:
    with primary.connect() as conn:
        target = conn.execute(text("select pg_current_wal_lsn()")).scalar()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with replica.connect() as conn:
            if conn.execute(text("select pg_last_wal_replay_lsn() >= cast(:lsn as pg_lsn)"), {"lsn": target}).scalar():
                return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


@pytest.fixture(scope="module")
def clusters() -> Iterator[Clusters]:
    folder, prefix = server_bin(), as_server_user()
    if folder is None or prefix is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) or no non-root user to run them")
    root = Path(tempfile.mkdtemp(prefix="nextslot-replication-"))  # not under pytest's root-only folder
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    primary_dir, replica_dir = root / "primary", root / "replica"
    primary_port, replica_port = free_port(), free_port()
    run(prefix, folder / "initdb", "-D", primary_dir, "-U", "postgres", "--auth=trust", "--no-sync")
    with (primary_dir / "postgresql.conf").open("a") as conf:  # the replica copies it; its port is given apart
        conf.write(f"port={primary_port}\nlisten_addresses='127.0.0.1'\nunix_socket_directories='{root}'\n"
                   "wal_level=replica\nmax_wal_senders=4\nfsync=off\nshared_buffers=32MB\nmax_connections=60\n")
    started: list[Path] = []
    try:
        run(prefix, folder / "pg_ctl", "-D", primary_dir, "-l", root / "primary.log", "-w", "-t", "60", "start")
        started.append(primary_dir)
        primary_url = f"postgresql+psycopg://postgres@127.0.0.1:{primary_port}/nextslot"
        admin = create_engine(primary_url.replace("/nextslot", "/postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("create database nextslot"))
        admin.dispose()
        upgrade(primary_url)
        run(prefix, folder / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
            "-D", replica_dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fast: no spread checkpoint to wait for
        run(prefix, folder / "pg_ctl", "-D", replica_dir, "-l", root / "replica.log", "-o", f"-p {replica_port}",
            "-w", "-t", "60", "start")
        started.append(replica_dir)
        replica_url = f"postgresql+psycopg://postgres@127.0.0.1:{replica_port}/nextslot"
        primary, replica = engine_for(primary_url), engine_for(replica_url)
        with replica.connect() as conn:
            assert conn.execute(text("select pg_is_in_recovery()")).scalar() is True
        yield Clusters(primary_url, replica_url, primary, replica)
        primary.dispose()
        replica.dispose()
    finally:
        for data in reversed(started):
            run(prefix, folder / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def clinic(url: str) -> int:
    data = yaml.safe_load((EXAMPLES / "clinic.yaml").read_text())
    data["business"]["slug"] = f"clinic-{uuid.uuid4().hex[:8]}"
    engine = engine_for(url)
    try:
        result = apply_config(SqlAlchemyUnitOfWork(build_session_factory(engine)), BusinessConfig.model_validate(data))
    finally:
        engine.dispose()
    assert not hasattr(result, "code"), result
    return result.business_id


def sessions(engine: Engine, app: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select count(*) from pg_stat_activity where application_name = :app"),
                            {"app": app}).scalar_one()


def test_slot_searches_read_the_replica_and_a_stale_slot_is_refused_by_the_primary(clusters):
    business = clinic(clusters.primary_url)
    caught_up(clusters.primary, clusters.replica)
    service = build_service(Settings(database_url=f"{clusters.primary_url}?application_name={WRITE_APP}", pool_size=2,
                                     read_database_url=f"{clusters.replica_url}?application_name={READ_APP}"))
    query = SlotQuery(service="consultation", resources=["dr-patel", "room-1"], limit=20)

    before = service.find_slots(business, query)
    assert isinstance(before, Slots) and len(before.slots) >= 3
    # the search ran on the replica (its pooled session is still there); the service has not touched the primary
    assert sessions(clusters.replica, READ_APP) >= 1
    assert sessions(clusters.primary, WRITE_APP) == 0 and sessions(clusters.primary, READ_APP) == 0

    with clusters.replica.connect() as conn:  # the replica falls behind: WAL arrives but is not replayed
        conn.execute(text("select pg_wal_replay_pause()"))
        conn.commit()
    try:
        taken = before.slots[0]  # and a later time that does not overlap it (with its buffer)
        also_taken = next(s for s in before.slots if s.starts_at.utc >= taken.ends_at + timedelta(minutes=10))
        for n, slot in enumerate((taken, also_taken)):
            made = service.book(business, BookingCreate(
                service="consultation", starts_at=slot.starts_at.utc, resources=["dr-patel", "room-1"],
                customer=CustomerIn(name=f"First {n}", phone=f"+4479111200{n:02d}")))
            assert isinstance(made, Booked), made

        assert sessions(clusters.primary, WRITE_APP) >= 1 and sessions(clusters.replica, WRITE_APP) == 0
        # the lagging replica still shows both times free ...
        stale = service.find_slots(business, query)
        assert isinstance(stale, Slots)
        assert {s.starts_at.utc for s in stale.slots} >= {taken.starts_at.utc, also_taken.starts_at.utc}
        # ... the primary refuses the first, and its alternatives are fresh: the other booked time is not offered
        late = service.book(business, BookingCreate(
            service="consultation", starts_at=taken.starts_at.utc, resources=["dr-patel", "room-1"],
            customer=CustomerIn(name="Too Late", phone="+447911129999")))
        assert isinstance(late, SlotTaken), late
        offered = {a.starts_at.utc for a in late.alternatives}
        assert offered and not offered & {taken.starts_at.utc, also_taken.starts_at.utc}
        with clusters.primary.connect() as conn:
            assert conn.execute(text("select count(*) from bookings where business_id = :b"),
                                {"b": business}).scalar_one() == 2
    finally:
        with clusters.replica.connect() as conn:
            conn.execute(text("select pg_wal_replay_resume()"))
            conn.commit()

    caught_up(clusters.primary, clusters.replica)
    fresh = service.find_slots(business, query)
    assert isinstance(fresh, Slots)
    assert not {s.starts_at.utc for s in fresh.slots} & {taken.starts_at.utc, also_taken.starts_at.utc}


def test_the_read_engine_refuses_writes_even_when_its_url_names_the_primary(database_url):
    """Its transactions are READ ONLY, a statement run on its own's too (as a reader's unit of work runs them): a
    read path that wrote by mistake fails at once, not only on a replica."""
    from sqlalchemy.exc import DBAPIError

    from nextslot.storage.engine import build_session_factory, engine_for
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    engine = engine_for(database_url, pool_size=1, read_only=True)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("show transaction_read_only")).scalar() == "on"
            with pytest.raises(DBAPIError, match="read-only transaction"):
                conn.execute(text("update businesses set name = name"))
        with SqlAlchemyUnitOfWork(build_session_factory(engine), statements_alone=True) as uow:
            assert uow.session.connection().connection.dbapi_connection.autocommit is True
            with pytest.raises(DBAPIError, match="read-only transaction"):
                uow.session.execute(text("update businesses set name = name"))
    finally:
        engine.dispose()
