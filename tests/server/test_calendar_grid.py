"""The console's calendar grid on days whose clocks change: every span that holds real time is drawn."""
from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from nextslot.schemas.api import Span
from nextslot.server.console.calendar_grid import row_of, spans

NEW_YORK = ZoneInfo("America/New_York")
FALL_BACK = date(2026, 11, 1)  # 01:00-02:00 happens twice


def local(hour: int, minute: int, utc_hour: int) -> datetime:
    return datetime(2026, 11, 1, utc_hour, minute, tzinfo=UTC).astimezone(NEW_YORK)


def test_a_span_from_the_first_1_30_to_the_second_is_drawn():
    first, second = local(1, 30, 5), local(1, 30, 6)  # 05:30Z (EDT) and 06:30Z (EST): both read 01:30
    assert first.replace(tzinfo=None) == second.replace(tzinfo=None)
    drawn = spans(0, FALL_BACK, [Span(starts_at=first, ends_at=second), Span(starts_at=second, ends_at=local(2, 30, 7))],
                  "booking", NEW_YORK)
    assert [(b.first_row, b.last_row) for b in drawn] == [(18, 19), (18, 30)]  # on the wall clock's rows
    assert row_of(second, FALL_BACK, NEW_YORK, up=False) == 18


def test_spans_outside_the_day_or_empty_are_not_drawn():
    empty = local(1, 30, 5)
    outside = Span(starts_at=datetime(2026, 11, 2, 15, tzinfo=UTC), ends_at=datetime(2026, 11, 2, 16, tzinfo=UTC))
    assert spans(0, FALL_BACK, [Span(starts_at=empty, ends_at=empty), outside], "booking", NEW_YORK) == []
