"""The booking pages' pure helpers: times by the visitor's day, DST, parameters, branding contrast."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from nextslot.core.results import Opening
from nextslot.server.page_context import branding, contrast, visitor_for
from nextslot.server.page_times import by_day, duration, parse_day, parse_slot_param, zone_choices

NEW_YORK = ZoneInfo("America/New_York")


def slot(instant: datetime) -> Opening:
    return Opening(instant)


def test_times_are_grouped_by_the_visitors_own_day():
    late = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # Monday 10:30 pm in New York, Tuesday in Tokyo
    [monday] = by_day([slot(late)], NEW_YORK)
    [tuesday] = by_day([slot(late)], ZoneInfo("Asia/Tokyo"))
    assert (monday.label, monday.slots[0].clock) == ("Monday 23 November", "10:30 pm")
    assert (tuesday.label, tuesday.slots[0].clock) == ("Tuesday 24 November", "12:30 pm")
    assert monday.slots[0].at == "2026-11-24T03:30:00Z" and monday.slots[0].label == "10:30 pm, Monday 23 November"


def test_a_clock_time_the_night_repeats_says_which_of_the_two_it_is():
    first, second = datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    [day] = by_day([slot(first), slot(second)], NEW_YORK)  # 1:30 am EDT, then 1:30 am EST
    assert [s.clock for s in day.slots] == ["1:30 am before the clocks go back", "1:30 am after the clocks go back"]
    santiago = ZoneInfo("America/Santiago")  # zone names there are "-03" and "-04": nothing to say aloud
    first, second = datetime(2026, 4, 5, 2, 30, tzinfo=UTC), datetime(2026, 4, 5, 3, 30, tzinfo=UTC)
    [day] = by_day([slot(first), slot(second)], santiago)
    assert [s.label for s in day.slots] == ["11:30 pm before the clocks go back, Saturday 4 April",
                                            "11:30 pm after the clocks go back, Saturday 4 April"]


def test_only_instants_with_an_offset_and_real_dates_are_accepted_back():
    assert parse_slot_param("2026-11-24T15:00:00Z") == datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert parse_slot_param("2026-11-24T10:00:00-05:00") == datetime(2026, 11, 24, 15, tzinfo=UTC)
    for bad in (None, "", "2026-11-24T15:00:00", "tomorrow", "9" * 50):
        assert parse_slot_param(bad) is None
    assert parse_day("2026-11-24") is not None and parse_day("2026-13-01") is None and parse_day("x") is None


def test_durations_read_naturally():
    assert [duration(m) for m in (30, 60, 90, 45)] == ["30 min", "1 h", "1 h 30 min", "45 min"]


def test_the_zone_picker_keeps_the_visitors_zone_and_a_bad_zone_falls_back_to_the_default():
    assert "America/Boise" in zone_choices("America/Boise") and zone_choices()[0] == "UTC"
    assert "Not/AZone" not in zone_choices("Not/AZone")
    assert visitor_for("Asia/Tokyo", None, None, NEW_YORK).zone.key == "Asia/Tokyo"
    fallback = visitor_for("Europe", "../../etc/passwd", "1", NEW_YORK)
    assert (fallback.zone, fallback.chosen, fallback.embed) == (NEW_YORK, False, True)
    assert fallback.link("/b/x", at="1") == "/b/x?embed=1&at=1"


def test_a_grids_links_are_the_links_the_visitor_would_get_one_by_one():
    at = "2026-11-24T15:00:00Z"
    for visitor in (visitor_for(None, None, None, NEW_YORK), visitor_for("Asia/Tokyo", None, "1", NEW_YORK, "north"),
                    replace(visitor_for("Europe/Paris", None, None, NEW_YORK), language="fr", language_chosen=True)):
        assert visitor.link_each("/b/x/y/book", "at")(at) == visitor.link("/b/x/y/book", at=at)


def test_brand_colours_keep_text_and_slot_borders_readable():
    dark, light = branding({"colour": "#0b3d91"}), branding({"color": "#fff3b0"})
    assert (dark.on_colour, dark.line) == ("#ffffff", "#0b3d91")
    assert (light.on_colour, light.line) == ("#111111", "#1a1a1a")
    assert contrast(dark.colour, dark.on_colour) >= 4.5 and contrast(light.colour, light.on_colour) >= 4.5
    assert branding({"colour": "blue"}).colour is None and branding({"logo_url": "http://x/logo.png"}).logo_url is None
    assert branding("not a dict").colour is None


def test_the_grid_offers_later_days_only_up_to_the_furthest_day_a_visitor_may_page_to(service, make_business):
    from datetime import timedelta

    from nextslot.server.slot_grid import DAYS_SHOWN, FURTHEST, slot_grid
    from tests.core.test_branch_zones import coasts

    business = make_business(coasts())
    today = service.now().astimezone(NEW_YORK).date()
    first = slot_grid(service, business, "cut", NEW_YORK, None)
    assert first.later == today + timedelta(days=DAYS_SHOWN)
    furthest = slot_grid(service, business, "cut", NEW_YORK, "2999-01-01")  # clamped to the furthest day
    assert furthest.first_day == today + FURTHEST and furthest.later is None  # it linked to the same days again
