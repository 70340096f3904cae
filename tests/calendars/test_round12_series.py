"""Round 12: recurring series over Microsoft Graph, Google and CalDAV when they are deleted, cut short, moved or lose
one occurrence, and series data stored by an earlier release. Graph through a loopback fake that answers
calendarView/delta for a series the way Graph does, Google through the loopback fake (the real client libraries),
CalDAV on Radicale; the real booking service on PostgreSQL."""
from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from evals.fake_microsoft import FakeMicrosoft, _when
from nextslot.calendars.connections import add_calendar
from nextslot.calendars.providers import build_registry
from nextslot.calendars.sync import Synced, sync_calendar
from nextslot.storage.tables import ExternalEvent
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.calendars import test_google, test_microsoft
from tests.calendars.test_round11_followups import SeriesGoogle
from tests.calendars.test_round11_sync import POISON, staff_zone
from tests.calendars.test_sync import MON, at, busy, okafor_starts, trusted

TUE, WED, THU = (MON + timedelta(days=n) for n in (1, 2, 3))


class GraphSeries(FakeMicrosoft):
    """The fake Graph, with recurring series as calendarView/delta lists them: the series master, with its own
    properties and the first occurrence's times, and each occurrence with only its id, type, seriesMasterId, start
    and end (Graph gives occurrences no showAs, answer or isAllDay of their own). `drop` takes items out without a
    trace, as Graph may for an occurrence cancelled, or left behind when the series moves: only the master comes
    back changed. A master can also be left out of calendarView (`listed=False`, as for a series begun before the
    window): GET me/events/{id} still gives it."""

    def __init__(self) -> None:
        super().__init__()
        self.unlisted: dict[str, dict[str, Any]] = {}
        self._server.server.config.app.router.routes.append(
            Route("/v1.0/me/events/{eid}", self._get_event, methods=["GET"]))

    def add_recurring(self, subject: str, start: datetime, end: datetime, days: int, push: bool = True,
                      listed: bool = True, **fields: Any) -> tuple[str, list[str]]:
        """A daily series: its master and its occurrences' ids."""
        master = "AAMk" + secrets.token_hex(12)
        body = {"id": master, "subject": subject, "start": _when(start), "end": _when(end), "showAs": "busy",
                "isAllDay": False, "isCancelled": False, "type": "seriesMaster",
                "responseStatus": {"response": "organizer"}, **fields}
        if listed:
            self._store(body)
        else:
            self.unlisted[master] = body
        occurrences = [self.occurrence(master, start + timedelta(days=n), end + timedelta(days=n))
                       for n in range(days)]
        if push:
            self.notify()
        return master, occurrences

    def occurrence(self, master: str, start: datetime, end: datetime) -> str:
        eid = "AAMk" + secrets.token_hex(12)
        self._store({"id": eid, "type": "occurrence", "seriesMasterId": master, "start": _when(start),
                     "end": _when(end)})
        return eid

    async def _get_event(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        with self.lock:
            found = self.unlisted.get(request.path_params["eid"]) or self.events.get(request.path_params["eid"])
        if found is None or found.get("@deleted"):
            return JSONResponse({"error": {"code": "ErrorItemNotFound", "message": "Not found"}}, status_code=404)
        return JSONResponse(found)

    def drop(self, *ids: str) -> None:
        with self.lock:
            for eid in ids:
                self.events.pop(eid)
                self.changed.pop(eid)


@pytest.fixture(scope="module")
def microsoft_server() -> Iterator[GraphSeries]:  # the conftest's `microsoft` empties it before each test
    with GraphSeries() as fake:
        yield fake


@pytest.fixture(scope="module")
def google_server() -> Iterator[SeriesGoogle]:  # a deleted series comes back as the series' id only
    with SeriesGoogle() as fake:
        yield fake


@pytest.fixture
def graph_registry(microsoft):
    return build_registry(test_microsoft.settings_for(microsoft, calendar_push=False), test_microsoft.SECRET)


def graph_calendar(microsoft, registry, session_factory, clinic: int, clock) -> int:
    calendar_id = test_microsoft.connect(microsoft, registry, session_factory, clinic, clock())
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, Synced) and result.read == "window", result
    return calendar_id


def synced(session_factory, calendar_id: int, clock, registry) -> Synced:
    result = sync_calendar(session_factory, calendar_id, clock(), registry=registry)
    assert isinstance(result, Synced), result
    return result


def as_stored_before(session_factory, calendar_id: int, *keys: str) -> None:
    """Make the calendar's stored events look as an earlier release stored them, without these keys."""
    with session_factory() as s:
        for row in s.scalars(select(ExternalEvent).where(ExternalEvent.calendar_id == calendar_id)):
            data = json.loads(row.data)
            for key in keys:
                data.pop(key, None)
            row.data = json.dumps(data, sort_keys=True)
        s.commit()


# --- Microsoft Graph ----------------------------------------------------------------------------------


@pytest.mark.parametrize("occurrences_listed", [False, True], ids=["master-only", "with-occurrences"])
def test_round12_a_graph_series_deleted_as_a_whole_frees_every_occurrence_at_the_next_sync(
        microsoft, graph_registry, session_factory, clinic, clock, occurrences_listed):
    """A deleted series comes back in the delta as its master `@removed`; its occurrences may or may not be listed.
    Before the fix, occurrences not listed kept blocking their times until the next day's full read."""
    master, occurrences = microsoft.add_recurring("Weekly review", at(11), at(12), days=3)
    microsoft.add("Dentist", at(15), at(16))
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(15), at(16)), (at(11, day=TUE),
                                                  at(12, day=TUE)), (at(11, day=WED), at(12, day=WED))]
    microsoft.remove(master)
    if occurrences_listed:
        for occurrence in occurrences:
            microsoft.remove(occurrence, push=False)
    else:
        microsoft.drop(*occurrences)
    synced(session_factory, calendar_id, clock, graph_registry)
    assert busy(session_factory, calendar_id) == [(at(15), at(16))]


def test_round12_a_graph_series_is_read_with_its_masters_free_busy_answer_and_all_day_flag(
        microsoft, graph_registry, service, session_factory, clinic, clock):
    """Graph's occurrences carry no showAs, response, isAllDay or isCancelled: before the fix a series marked free,
    declined, or cancelled by its organiser blocked every occurrence, and an all-day series blocked UTC days
    instead of the staff member's own."""
    staff_zone(session_factory, clinic, "Europe/Berlin")
    microsoft.add_recurring("Focus time", at(11), at(12), days=2, showAs="free")
    microsoft.add_recurring("Board meeting", at(13), at(14), days=2, responseStatus={"response": "declined"})
    microsoft.add_recurring("Called off", at(16), at(17), days=2, isCancelled=True)  # the organiser cancelled it
    microsoft.add_recurring("Conference", THU, THU + timedelta(days=1), days=1, isAllDay=True)
    microsoft.add_recurring("Clinic", at(15), at(16), days=2)  # an ordinary series blocks each occurrence
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    berlin_thursday = (datetime(2026, 11, 25, 23, tzinfo=UTC), datetime(2026, 11, 26, 23, tzinfo=UTC))
    assert busy(session_factory, calendar_id) == [(at(15), at(16)), (at(15, day=TUE), at(16, day=TUE)),
                                                  berlin_thursday]
    assert {at(11), at(13), at(16)} <= okafor_starts(service, clinic)


def test_round12_a_graph_series_whose_master_calendarview_leaves_out_is_read_with_that_master(
        microsoft, graph_registry, service, session_factory, clinic, clock):
    """calendarView may list a series' occurrences without its master (one begun before the window): before the
    fix a long-running series marked free ("Working from home", "Focus time") blocked every occurrence. The master
    is looked up once and kept with the events."""
    microsoft.add_recurring("Working from home", at(10), at(18), days=2, listed=False, showAs="free")
    microsoft.add_recurring("Ward round", at(11), at(12), days=1, listed=False)
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]
    microsoft.requests.clear()
    microsoft.add("Dentist", at(15), at(16))
    synced(session_factory, calendar_id, clock, graph_registry)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(15), at(16))]
    assert [r for r in microsoft.requests if r[1].startswith("/v1.0/me/events/")] == []  # kept, not asked again


def test_round12_a_graph_series_master_does_not_block_its_first_time_once_that_occurrence_is_cancelled(
        microsoft, graph_registry, session_factory, clinic, clock):
    """Graph lists the series master with its first occurrence's times: before the fix the master itself was read
    as busy time, so a cancelled first occurrence still blocked."""
    master, occurrences = microsoft.add_recurring("Ward round", at(11), at(12), days=3)
    microsoft.drop(occurrences[0])  # Monday's is cancelled
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    assert busy(session_factory, calendar_id) == [(at(11, day=TUE), at(12, day=TUE)),
                                                  (at(11, day=WED), at(12, day=WED))]


def test_round12_a_graph_occurrence_cancelled_or_a_series_moved_without_a_removal_frees_the_old_times(
        microsoft, graph_registry, session_factory, clinic, clock):
    """Graph may report a cancelled occurrence, or a series moved to other times, only as its master changed: the
    old occurrences are simply no longer there. Before the fix they kept blocking until the next day's full read."""
    master, occurrences = microsoft.add_recurring("Ward round", at(11), at(12), days=3)
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    microsoft.drop(occurrences[1])  # Tuesday's cancelled
    microsoft.change(master, subject="Ward round (not on Tuesday)")
    synced(session_factory, calendar_id, clock, graph_registry)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(11, day=WED), at(12, day=WED))]

    microsoft.drop(occurrences[0], occurrences[2])  # the series moves to the afternoon
    moved = [microsoft.occurrence(master, at(14, day=day), at(15, day=day)) for day in (MON, TUE)]
    microsoft.change(master, start=at(14), end=at(15))
    synced(session_factory, calendar_id, clock, graph_registry)
    assert busy(session_factory, calendar_id) == [(at(14), at(15)), (at(14, day=TUE), at(15, day=TUE))]
    assert len(moved) == 2


def test_round12_graph_events_stored_before_series_ids_are_read_again_so_a_deleted_series_frees_its_times(
        microsoft, graph_registry, session_factory, clinic, clock):
    """Events stored by the last release carry no series id: their series' deletion cannot be matched to them, so
    the first change read after the upgrade reads the window in full."""
    master, occurrences = microsoft.add_recurring("Weekly review", at(11), at(12), days=2)
    microsoft.add("Dentist", at(15), at(16))
    calendar_id = graph_calendar(microsoft, graph_registry, session_factory, clinic, clock)
    as_stored_before(session_factory, calendar_id, "series", "type")
    microsoft.remove(master)
    microsoft.drop(*occurrences)
    synced(session_factory, calendar_id, clock, graph_registry)
    assert busy(session_factory, calendar_id) == [(at(15), at(16))]


# --- Google ---------------------------------------------------------------------------------------------


def test_round12_google_events_stored_before_series_ids_are_read_again_so_a_deleted_series_frees_its_times(
        google, google_registry, session_factory, clinic, clock):
    """Google may report a deleted series as the series' own id only. Occurrences stored before series ids were
    kept (before round 11) could not be matched to it and blocked until that day's full read; the first change
    read after the upgrade now reads the window in full, once."""
    series = google.add("Weekly review", at(11), at(12), recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    google.add("Dentist", at(15), at(16))
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    synced(session_factory, calendar_id, clock, google_registry)
    as_stored_before(session_factory, calendar_id, "series")
    google.cancel(series)
    assert synced(session_factory, calendar_id, clock, google_registry).read == "window"
    assert busy(session_factory, calendar_id) == [(at(15), at(16))]
    google.add("Physio", at(13), at(14))  # the stored events carry series ids again: changes alone from now on
    assert synced(session_factory, calendar_id, clock, google_registry).read == "changes"


def test_round12_a_google_series_cut_short_frees_the_occurrences_it_no_longer_has(
        google, google_registry, session_factory, clinic, clock):
    """A series cut short ("this and following" deleted) lists its remaining occurrences as changed; Google need
    not list the ones cut off. Before the fix they kept blocking until the next day's full read."""
    series = google.add("Ward round", at(11), at(12), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    calendar_id = test_google.connect(google, google_registry, session_factory, clinic, clock())
    synced(session_factory, calendar_id, clock, google_registry)
    google.change(series, recurrence=["RRULE:FREQ=DAILY;COUNT=1"])
    synced(session_factory, calendar_id, clock, google_registry)
    assert busy(session_factory, calendar_id) == [(at(11), at(12))]


# --- CalDAV -------------------------------------------------------------------------------------------


SERIES = "DTSTART:20261123T110000Z\r\nDTEND:20261123T120000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\n"


@pytest.fixture
def caldav_series(radicale, session_factory, clinic, clock):
    """A calendar on Radicale with a daily series Monday to Wednesday, 11:00-12:00, synced once."""
    work = radicale.calendar("okafor", f"work-{uuid.uuid4().hex[:8]}")
    work.save_event(POISON.format(uid="round", body=SERIES))
    calendar_id = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor", str(work.url),
                               allow_private=True, now=clock())
    assert isinstance(sync_calendar(session_factory, calendar_id, clock(), connect=trusted), Synced)
    assert busy(session_factory, calendar_id) == [(at(11, day=day), at(12, day=day)) for day in (MON, TUE, WED)]
    return work, calendar_id


def caldav_synced(session_factory, calendar_id: int, clock) -> Synced:
    result = sync_calendar(session_factory, calendar_id, clock(), connect=trusted)
    assert isinstance(result, Synced) and result.read == "changes", result
    return result


def rewrite(work, body: str) -> None:
    [event] = work.events()
    event.data = POISON.format(uid="round", body=body)
    event.save()


def test_round12_a_caldav_series_deleted_frees_every_occurrence(caldav_series, session_factory, clock):
    work, calendar_id = caldav_series
    [event] = work.events()
    event.delete()
    caldav_synced(session_factory, calendar_id, clock)
    assert busy(session_factory, calendar_id) == []


def test_round12_a_caldav_series_cut_short_or_with_a_date_excluded_frees_those_occurrences(
        caldav_series, session_factory, clock):
    work, calendar_id = caldav_series
    rewrite(work, SERIES.replace("COUNT=3", "UNTIL=20261124T110000Z"))
    caldav_synced(session_factory, calendar_id, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(11, day=TUE), at(12, day=TUE))]
    rewrite(work, SERIES + "EXDATE:20261124T110000Z\r\n")
    caldav_synced(session_factory, calendar_id, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(11, day=WED), at(12, day=WED))]


def test_round12_a_caldav_occurrence_cancelled_or_moved_alone_frees_its_time(caldav_series, session_factory, clock):
    work, calendar_id = caldav_series
    cancelled = ("END:VEVENT\r\nBEGIN:VEVENT\r\nUID:round\r\nDTSTAMP:20260101T000000Z\r\n"
                 "RECURRENCE-ID:20261124T110000Z\r\nDTSTART:20261124T110000Z\r\nDTEND:20261124T120000Z\r\n"
                 "STATUS:CANCELLED\r\n")
    rewrite(work, SERIES + cancelled)
    caldav_synced(session_factory, calendar_id, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(11, day=WED), at(12, day=WED))]
    moved = cancelled.replace("DTSTART:20261124T110000Z\r\nDTEND:20261124T120000Z\r\nSTATUS:CANCELLED",
                              "DTSTART:20261124T150000Z\r\nDTEND:20261124T160000Z")
    rewrite(work, SERIES + moved)
    caldav_synced(session_factory, calendar_id, clock)
    assert busy(session_factory, calendar_id) == [(at(11), at(12)), (at(15, day=TUE), at(16, day=TUE)),
                                                  (at(11, day=WED), at(12, day=WED))]
