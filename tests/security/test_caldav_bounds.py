"""CalDAV reads against servers an attacker runs on loopback: a trickled answer, a gigabyte, an endless chunked
answer, a gzip bomb. Each read ends within its one time limit and reads no more than the cap; a sync records
a short category, and the production reader refuses internal addresses through the shared guard."""
from __future__ import annotations

import gzip

import pytest

from nextslot.calendars.bounded_session import AnswerTooLarge, TimeUp, calendar_failure
from nextslot.calendars.caldav import CalDavReader
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.sync import SyncFailed, sync_calendar
from nextslot.storage.tables import ExternalCalendar
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.security.conftest import Listener
from tests.security.hostile import HostileServer, answer, pour, pour_chunked, trickle

MULTISTATUS = (b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/cal/</d:href>'
               b"<d:propstat><d:prop><d:sync-token>t1</d:sync-token></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
               b"</d:propstat></d:response></d:multistatus>")
ANSWER = (b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n"
          % len(MULTISTATUS)) + MULTISTATUS


def test_a_server_trickling_its_answer_is_cut_off_at_the_time_limit():
    """A byte every 0.05 s: no read waits long, but the whole answer would take 20 s."""
    with HostileServer(trickle(ANSWER, every=0.05)) as server:
        with CalDavReader(f"{server.url}/cal/", allow_private=True, time_limit=1.0) as reader, \
                pytest.raises(TimeUp) as failed:
            reader.state()
        assert not server.finished.is_set() and server.sent < len(ANSWER)
    assert calendar_failure(failed.value) == "timeout"


def test_a_well_behaved_answer_within_the_limits_is_read():
    """The bounds are not a wall: the same answer, sent at once, is read."""
    with HostileServer(trickle(ANSWER, every=0)) as server, \
            CalDavReader(f"{server.url}/cal/", allow_private=True, time_limit=5.0) as reader:
        assert reader.state().sync_token == "t1"


@pytest.mark.parametrize("behaviour", [pour, pour_chunked], ids=["a gigabyte declared", "endless chunks"])
def test_an_answer_past_the_size_cap_is_not_read_further(behaviour):
    with HostileServer(behaviour) as server:
        with CalDavReader(f"{server.url}/cal/", allow_private=True, max_bytes=1 << 20) as reader, \
                pytest.raises(AnswerTooLarge) as failed:
            reader.state()
        sent = server.sent
    assert sent < 64 << 20  # what socket buffers took before the reader hung up, not the gigabyte
    assert calendar_failure(failed.value).startswith("answer too large")


def test_a_gzip_bomb_counts_at_its_unpacked_size():
    bomb = gzip.compress(b"<" * (8 << 20))  # 8 MB unpacked from a few kilobytes
    with HostileServer(answer(207, {"Content-Type": "application/xml", "Content-Encoding": "gzip"}, bomb)) as server, \
            CalDavReader(f"{server.url}/cal/", allow_private=True, max_bytes=1 << 20) as reader, \
            pytest.raises(AnswerTooLarge):
        reader.state()
    assert len(bomb) < 1 << 20


def test_a_sync_against_a_trickling_server_records_a_timeout_and_no_exception_text(session_factory, make_business,
                                                                                   clock):
    business = make_business("clinic")
    with HostileServer(trickle(ANSWER, every=0.05)) as server:
        calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), business, "dr-okafor",
                                   f"{server.url}/cal/", allow_private=True)
        bounded = lambda source: CalDavReader(source.url, allow_private=True, time_limit=1.0)  # noqa: E731
        failed = sync_calendar(session_factory, calendar_id, clock.now, bounded)
    assert isinstance(failed, SyncFailed) and failed.error == "timeout"
    with session_factory() as s:
        assert s.get(ExternalCalendar, calendar_id).last_error == "timeout"


def test_the_production_sync_refuses_an_internal_calendar_and_says_only_that(session_factory, make_business,
                                                                             clock):
    """Registered while private targets were allowed (or under another DNS answer): the scheduler's reader
    connects to nothing, and the staff see a category, not the addresses the name resolved to."""
    business = make_business("clinic")
    inside = Listener()
    try:
        calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), business, "dr-okafor",
                                   f"http://localhost:{inside.port}/cal/", allow_private=True)
        failed = sync_calendar(session_factory, calendar_id, clock.now)
    finally:
        inside.close()
    assert inside.accepted == 0
    assert isinstance(failed, SyncFailed) and failed.error == "refused: internal address"
