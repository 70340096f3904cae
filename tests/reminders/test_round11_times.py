"""Round 11: when messages speak about time. Every zone over 2026-2029, read back from the words; reminders across
clock changes, moves and cancels; hostile names in the texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nextslot.languages.local_times import local_when
from nextslot.reminders.templates import render, spoken_when
from nextslot.schemas.spoken import MONTHS, REPEATS, WEEKDAYS
from nextslot.schemas.times import spoken_time

ZONES = sorted(available_timezones() - {"Factory", "localtime"})
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_REPEATS = (" before the clocks go back", " after the clocks go back")


@cache
def transitions(key: str) -> tuple[datetime, ...]:
    """The zone's offset changes between 2026 and 2029: found a day at a time, then to the minute."""
    zone, found = ZoneInfo(key), []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    while at < datetime(2030, 1, 1, tzinfo=UTC):
        low, high = at, at + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(minutes=1):
                mid = (low + (high - low) / 2).replace(second=0, microsecond=0)
                if low.astimezone(zone).utcoffset() == mid.astimezone(zone).utcoffset():
                    low = mid
                else:
                    high = mid
            found.append(high)
        at += timedelta(days=1)
    return tuple(found)


def read_back(words: str, language: str, zone: ZoneInfo, year: int) -> datetime:
    """The instant a customer in `zone` understands from the message's words (the year is not said)."""
    if language == "en":
        weekdays, months, repeats = EN_WEEKDAYS, EN_MONTHS, EN_REPEATS
        m = re.fullmatch(r"(\w+) (\d+) (\w+) at (\d+)(?::(\d\d))? (am|pm)(.*)", words)
        assert m, words
        weekday, day, month, hour, minute, half, note = m.groups()
        hour = int(hour) % 12 + (12 if half == "pm" else 0)
    else:
        weekdays, months, repeats = WEEKDAYS[language], MONTHS[language], REPEATS[language]
        # 'martes 24 de noviembre a las 09:00', 'mardi 24 novembre à 09:00', 'Dienstag, 24. November um 09:00'
        m = re.fullmatch(r"(\w+),? (\d+)\.? (?:de )?(\w+) (?:a las|à|um) (\d\d):(\d\d)(.*)", words)
        assert m, words
        weekday, day, month, hour, minute, note = m.groups()
    wall = datetime(year, months.index(month) + 1, int(day), int(hour), int(minute or 0))
    assert weekdays[wall.weekday()] == weekday, f"{words}: {wall:%A}"
    assert note in ("", *repeats), words
    fold = repeats.index(note) if note else 0
    local = wall.replace(tzinfo=zone, fold=fold)
    if not note:  # no note: the clocks show this wall time once only
        assert local.utcoffset() == local.replace(fold=1).utcoffset(), f"{words} ({zone.key}) is said twice"
    return local.astimezone(UTC)


instants = st.datetimes(min_value=datetime(2026, 1, 2), max_value=datetime(2029, 12, 30)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)


@st.composite
def zone_and_instant(draw) -> tuple[str, datetime]:
    """Any zone; half the time an instant within two hours of one of its clock changes (where mistakes live)."""
    key = draw(st.sampled_from(ZONES))
    changes = transitions(key)
    if changes and draw(st.booleans()):
        change = draw(st.sampled_from(changes))
        return key, change + timedelta(minutes=draw(st.integers(-120, 120)))
    return key, draw(instants)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_and_instant(), st.sampled_from(("en", "es", "fr", "de")))
@example(("America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)), "en")  # the first 01:30
@example(("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)), "de")  # the second
@example(("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 45, tzinfo=UTC)), "fr")  # a half-hour fall-back
@example(("America/Santiago", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)), "es")  # the midnight that never was
@example(("Pacific/Chatham", datetime(2026, 4, 4, 14, 0, tzinfo=UTC)), "en")  # +13:45 -> +12:45
@example(("Asia/Kathmandu", datetime(2027, 12, 31, 18, 15, tzinfo=UTC)), "es")  # +5:45, the new year's midnight
def test_a_message_says_a_time_the_customer_reads_back_as_the_booking_instant_in_every_zone(case, language):
    key, instant = case
    zone = ZoneInfo(key)
    words = spoken_when(instant, zone, language)
    assert read_back(words, language, zone, instant.astimezone(zone).year) == instant, (key, words)
    if language == "en":  # the tools' and pages' phrase is the messages' English one
        assert local_when(instant, zone, "en") == words


@settings(max_examples=120, deadline=None)
@given(zone_and_instant(), st.sampled_from(("en", "es", "fr", "de")))
def test_the_same_instant_is_said_alike_however_its_datetime_is_written(case, language):
    """A start written in the zone's own wall time (a slot search's, a local input's) is the same instant as its
    UTC form: the words must not depend on the form, nor on which form was said first."""
    key, instant = case
    zone = ZoneInfo(key)
    other = instant.astimezone(zone)  # same instant; on a fall-back night, fold=1 for the second showing
    assert spoken_when(other, zone, language) == spoken_when(instant, zone, language)
    assert spoken_time(other, zone) == spoken_time(instant, zone)


def test_the_second_showing_of_a_repeated_time_is_not_said_as_the_first_when_it_comes_second():
    """spoken_time's cache took an aware local datetime with fold=1 for the fold=0 one (Python compares and hashes
    two datetimes of the same tzinfo by wall time), so whichever showing was said first named both."""
    zone = ZoneInfo("Europe/Berlin")
    first = datetime(2027, 10, 31, 2, 30, tzinfo=zone)
    second = first.replace(fold=1)
    assert second - first == timedelta(0) and second.timestamp() - first.timestamp() == 3600
    said_first = spoken_time(first, zone)
    said_second = spoken_time(second, zone)
    assert said_first.endswith("before the clocks go back") and said_second.endswith("after the clocks go back")
    assert spoken_when(second, zone, "de").endswith("(nach der Zeitumstellung)")


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_a_reminder_across_a_skipped_midnight_names_the_day_the_customer_lives(language):
    """Santiago skips 00:00-01:00 on 6 Sep 2026: a 10:00 booking that day is 'Sunday 6', and the reminder a day
    before (24 real hours: 09:00 local on the 5th) still names the booking's own day and time."""
    zone = ZoneInfo("America/Santiago")
    start = datetime(2026, 9, 6, 10, 0, tzinfo=zone).astimezone(UTC)
    words = spoken_when(start, zone, language)
    assert read_back(words, language, zone, 2026) == start
    assert {
        "en": "Sunday 6 September",
        "es": "domingo 6 de septiembre",
        "fr": "dimanche 6 septembre",
        "de": "Sonntag, 6. September",
    }[language] in words
    body = render("reminder", language, {"service": "Cut", "business": "Salon", "when": words, "code": "ABC"}).body
    assert words in body


# --- reminders against the outbox: when they are due, and never for a time the booking no longer has -------------

TUESDAY_9 = datetime.fromisoformat("2026-11-24T09:00:00+00:00")


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def channels():
    from tests.reminders.test_dispatcher import ScriptedChannel

    return {name: ScriptedChannel(name) for name in ("whatsapp", "sms", "email")}


@pytest.fixture
def dispatcher(session_factory, channels, clock):
    from nextslot.reminders.dispatcher import Dispatcher

    return Dispatcher(session_factory, channels, clock=clock, receipt_timeout=timedelta(minutes=15))


def book(service, business: int, start: datetime = TUESDAY_9, **customer) -> str:
    from nextslot.schemas.commands import BookingCreate, CustomerIn

    who = {"name": "Ann Lee", "phone": "+447911123456", "email": "ann@example.com", **customer}
    result = service.book(business, BookingCreate(service="consultation", starts_at=start, customer=CustomerIn(**who)))
    return result.booking.code


def sent_bodies(channels) -> list[str]:
    return [m.body for name in ("whatsapp", "sms", "email") for m in channels[name].sent]


def test_a_reminder_awaiting_its_receipt_is_not_sent_again_on_sms_after_the_booking_is_cancelled(
    service, clinic, dispatcher, channels, clock
):
    """WhatsApp took the reminder but no receipt came; the customer cancelled meanwhile. The receipt timeout moved
    the reminder to SMS, which told a cancelled booking's customer to come ("Reply C to confirm")."""
    from nextslot.schemas.commands import BookingChange

    code = book(service, clinic)
    dispatcher.dispatch_due()  # the confirmation
    clock.now = TUESDAY_9 - timedelta(hours=24)
    assert dispatcher.dispatch_due() == 1 and "Reminder" in channels["whatsapp"].sent[-1].body
    service.cancel(clinic, BookingChange(code=code))
    dispatcher.dispatch_due()  # the cancel notice
    assert "is cancelled" in channels["whatsapp"].sent[-1].body
    clock.now += timedelta(minutes=16)
    dispatcher.give_up_waiting()  # neither WhatsApp message got a receipt
    dispatcher.dispatch_due()
    assert not [b for b in [m.body for m in channels["sms"].sent] if "Reminder" in b or "you're booked" in b], [
        m.body for m in channels["sms"].sent
    ]


def test_a_reminder_of_the_old_time_awaiting_its_receipt_is_not_sent_again_after_a_move(
    service, clinic, dispatcher, channels, clock, session_factory
):
    """The 2 h reminder of 09:00 went out on WhatsApp; the booking moved to next week. No receipt: the fallback must
    not send a '2 hours before' reminder at 07:15 for a time a week away (nor one for the old time)."""
    from sqlalchemy import update

    from nextslot.schemas.commands import BookingReschedule
    from nextslot.storage.tables import Notification

    code = book(service, clinic)
    dispatcher.dispatch_due()
    clock.now = TUESDAY_9 - timedelta(hours=2)
    with session_factory() as s:  # the day-before reminder went out and was delivered long ago
        s.execute(
            update(Notification)
            .where(
                Notification.business_id == clinic,
                Notification.kind == "reminder",
                Notification.due_at == TUESDAY_9 - timedelta(hours=24),
            )
            .values(status="delivered")
        )
        s.commit()
    assert dispatcher.dispatch_due() == 1  # the 2 h one
    reminders_before = sum("Reminder" in b for b in sent_bodies(channels))
    assert reminders_before == 1
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=TUESDAY_9 + timedelta(days=7)))
    dispatcher.dispatch_due()  # the move notice
    clock.now += timedelta(minutes=16)
    dispatcher.give_up_waiting()
    dispatcher.dispatch_due()
    assert sum("Reminder" in b for b in sent_bodies(channels)) == reminders_before, sent_bodies(channels)
    # the new time's own reminders still come, once each, at 24 h and 2 h before it
    for hours in (24, 2):
        clock.now = TUESDAY_9 + timedelta(days=7) - timedelta(hours=hours)
        assert dispatcher.dispatch_due() == 1 and dispatcher.dispatch_due() == 0
        assert "Tuesday 1 December at 9 am" in channels["whatsapp"].sent[-1].body


def test_the_day_before_reminder_is_24_real_hours_before_across_a_clock_change(
    service, clinic, dispatcher, channels, clock, session_factory
):
    """The README's offsets are minutes before the start: a Monday 09:00 London booking after the clocks went back
    on Sunday is reminded 24 real hours before (Sunday 09:00 GMT, 10:00 BST clock reading never used), exactly
    once, and never after the start."""
    from sqlalchemy import select

    from nextslot.storage.tables import Notification

    start = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # Monday; BST ended 25 Oct 01:00 UTC
    clock.now = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
    book(service, clinic, start, phone="+447911123499")
    with session_factory() as s:
        due = sorted(
            n.due_at
            for n in s.scalars(
                select(Notification).where(Notification.business_id == clinic, Notification.kind == "reminder")
            )
        )
    assert due == [start - timedelta(hours=24), start - timedelta(hours=2)]
    dispatcher.dispatch_due()
    clock.now = start - timedelta(hours=24, seconds=1)
    assert dispatcher.dispatch_due() == 0
    clock.now = start + timedelta(minutes=1)  # the scheduler slept through both: neither goes out late
    assert dispatcher.dispatch_due() == 0 and not [b for b in sent_bodies(channels) if "Reminder" in b]


def test_the_same_offset_listed_twice_reminds_once(make_business, service, dispatcher, channels, clock):
    """Offsets [1440, 1440] (a typo in a config) queued two reminders at the same instant: the customer got two."""
    from tests.conftest import example

    config = example("clinic")
    config["business"]["reminder_offsets_minutes"] = [1440, 1440, 120]
    business = make_business(config)
    book(service, business, phone="+447911123498")
    dispatcher.dispatch_due()
    clock.now = TUESDAY_9 - timedelta(hours=24)
    dispatcher.dispatch_due()
    clock.now = TUESDAY_9 - timedelta(hours=2)
    dispatcher.dispatch_due()
    assert sum("Reminder" in b for b in sent_bodies(channels)) == 2, sent_bodies(channels)


# --- hostile names in the texts -------------------------------------------------------------------------------------

EMBEDDINGS, ISOLATES, PDF, PDI = "\u202a\u202b\u202d\u202e", "\u2066\u2067\u2068", "\u202c", "\u2069"


def bidi_open_at(text: str, index: int) -> list[str]:
    """The directional embeddings, overrides and isolates still open at `index` (UAX #9's stack, simplified)."""
    stack: list[str] = []
    for char in text[:index]:
        if char in EMBEDDINGS:
            stack.append(char)
        elif char in ISOLATES:
            stack.append(char)
        elif char == PDF and stack and stack[-1] in EMBEDDINGS:
            stack.pop()
        elif char == PDI and any(c in ISOLATES for c in stack):
            while stack.pop() not in ISOLATES:
                pass
        elif char in "\n\u2029":
            stack.clear()
    return stack


def test_a_right_to_left_override_in_a_customers_name_does_not_turn_the_staff_members_times_around(
    make_business, service, dispatcher, channels, clock
):
    """A customer named '\u202eAnn' (RIGHT-TO-LEFT OVERRIDE, never closed): the staff notice says '... with
    {customer} (code ...) has moved from 9 am to 10 am', and every character after the name, the times included,
    was shown mirrored ('ma 01'). Values are isolated now, so an override ends with the value."""
    from nextslot.schemas.commands import BookingCreate, BookingReschedule, CustomerIn
    from tests.conftest import example

    config = example("clinic")
    config["resources"][0]["email"] = "patel@clinic.example"
    business = make_business(config)
    code = service.book(
        business,
        BookingCreate(
            service="consultation",
            starts_at=TUESDAY_9,
            resources=["dr-patel"],
            customer=CustomerIn(name="\u202eAnn \u2067Lee\u202b", phone="+447911123497"),
        ),
    ).booking.code
    service.reschedule(business, BookingReschedule(code=code, starts_at=TUESDAY_9 + timedelta(hours=1)))
    dispatcher.dispatch_due()
    [notice] = [m for m in channels["email"].sent if m.to == "patel@clinic.example"]
    at = notice.body.index("Tuesday 24 November at 9 am")
    assert bidi_open_at(notice.body, at) == [], notice.body
    assert "Ann" in notice.body and "Lee" in notice.body  # the name is kept, only contained
    [own] = [m for m in channels["whatsapp"].sent if "moved" in m.body]  # the customer's own notice likewise
    assert bidi_open_at(own.body, own.body.index("Tuesday 24 November at 10 am")) == []


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_the_longest_names_a_customer_can_give_make_a_text_that_fits_one_sms_request(
    make_business, service, dispatcher, channels, language
):
    """Every name is at most 200 characters (schemas), so the default texts stay under Twilio's 1,600."""
    from tests.conftest import example

    config = example("clinic")
    config["business"]["name"] = "B" * 200
    config["services"][0]["name"] = "S" * 200
    business = make_business(config)
    book(service, business, name="😀" * 200, phone="+447911123496", language=language, email=None)
    dispatcher.dispatch_due()
    [message] = channels["whatsapp"].sent
    assert "😀" * 200 in message.body and len(message.body) < 1600


@pytest.mark.parametrize(
    ("given", "words"),
    [("es-MX", "martes 24 de noviembre a las 09:00"), ("FR", "mardi 24 novembre à 09:00"), ("de-AT", "Dienstag, 24. November")],
)
def test_a_regional_or_capitalised_language_gets_its_language_not_english(
    given, words, service, clinic, dispatcher, channels
):
    """The tools read 'es-MX' as Spanish (schemas.spoken.language_of); the messages took only 'es' and told a
    Mexican customer her time in English."""
    book(service, clinic, phone="+447911123495", language=given)
    dispatcher.dispatch_due()
    [message] = channels["whatsapp"].sent
    assert words in message.body and "Tuesday" not in message.body, message.body


def test_a_reply_is_answered_in_the_regional_language_the_customer_gave(service, clinic, uow):
    """The reply webhook's answer ('Gracias, tu cita ... el martes 24 de noviembre a las 09:00 ...') took 'es-MX' for
    a language it does not speak, and answered in English."""
    from nextslot.core.customers.replies import sender
    from nextslot.reminders.reply_words import ANSWERS

    book(service, clinic, phone="+447911123494", language="es-MX")
    assert sender(uow, "+447911123494", tuple(ANSWERS)).language == "es"


def test_a_waitlist_offer_tried_again_on_another_channel_says_the_minutes_left_and_never_after_it_lapsed(
    service, make_business, session_factory, channels, clock
):
    """The offer went out on WhatsApp with 'Reply YES within 15 minutes'; no receipt came, so it went out again on
    SMS still promising 15 minutes (with the default 15-minute receipt wait: as the offer lapsed). A second try
    says the minutes still left, and none goes out once the offer has lapsed or been answered."""
    from sqlalchemy import select

    from nextslot.reminders.dispatcher import Dispatcher
    from nextslot.storage.tables import Notification
    from tests.reminders.test_waitlist_offers import offered_nine

    dispatcher = Dispatcher(session_factory, channels, clock=clock, receipt_timeout=timedelta(minutes=10))
    clinic, _entry, offer = offered_nine(service, make_business, session_factory, "+44791112490", "Wanda")
    dispatcher.dispatch_due()
    [first] = [m for m in channels["whatsapp"].sent if "just opened up" in m.body]
    assert "within 15 minutes" in first.body
    clock.now += timedelta(minutes=10)  # WhatsApp never confirmed it
    dispatcher.give_up_waiting()
    dispatcher.dispatch_due()
    [again] = [m for m in channels["sms"].sent if "just opened up" in m.body]
    assert "within 5 minutes" in again.body, again.body
    channels["sms"].sent.clear()
    clock.now = offer.expires_at + timedelta(minutes=6)  # nor did SMS; the offer lapsed meanwhile
    dispatcher.give_up_waiting()
    dispatcher.dispatch_due()
    assert not [m for name in channels for m in channels[name].sent if "just opened up" in m.body and m is not first]
    with session_factory() as s:
        [n] = s.scalars(select(Notification).where(Notification.offer_id == offer.id)).all()
    assert n.status == "void" and n.business_id == clinic


def test_a_waitlist_offer_already_answered_is_not_offered_again_on_the_next_channel(
    service, make_business, session_factory, channels, clock
):
    from nextslot.reminders.dispatcher import Dispatcher
    from nextslot.reminders.inbound import handle_reply
    from tests.reminders.test_waitlist_offers import offered_nine

    dispatcher = Dispatcher(session_factory, channels, clock=clock, receipt_timeout=timedelta(minutes=5))
    offered_nine(service, make_business, session_factory, "+44791112480", "Wanda")
    dispatcher.dispatch_due()
    assert "booked" in handle_reply(service, "whatsapp", "+447911124801", "YES", "SMr11offer").lower()
    clock.now += timedelta(minutes=6)  # the offer's receipt never came, but she answered it
    dispatcher.give_up_waiting()
    dispatcher.dispatch_due()
    assert not [m for m in channels["sms"].sent if "just opened up" in m.body], channels["sms"].sent


def test_after_a_scheduler_outage_only_the_latest_due_reminder_goes_out(service, clinic, dispatcher, channels, clock):
    """The scheduler was down from the day before until two hours before: the 24 h and the 2 h reminders were both
    due, and the customer got the same reminder twice in the same second."""
    book(service, clinic, phone="+447911123493")
    dispatcher.dispatch_due()  # the confirmation
    clock.now = TUESDAY_9 - timedelta(hours=2)
    dispatcher.dispatch_due()
    dispatcher.dispatch_due()
    assert sum("Reminder" in b for b in sent_bodies(channels)) == 1, sent_bodies(channels)


@settings(max_examples=150, deadline=None)
@given(zone_and_instant(), st.sampled_from(("en", "es", "fr", "de")))
def test_the_two_showings_of_a_repeated_wall_time_are_told_apart_in_pages_and_messages(case, language):
    """local_when (pages, tools) and spoken_when (messages): two instants the clocks show alike never read alike."""
    key, instant = case
    zone = ZoneInfo(key)
    local = instant.astimezone(zone)
    twin = local.replace(fold=1 - local.fold)
    if twin.utcoffset() == local.utcoffset():
        return  # shown once: nothing to tell apart
    twin_instant = twin.astimezone(UTC)
    assert twin_instant != instant
    assert local_when(instant, zone, language) != local_when(twin_instant, zone, language)
    assert spoken_when(instant, zone, language) != spoken_when(twin_instant, zone, language)


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
@pytest.mark.parametrize(
    ("key", "first"),
    [
        ("America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("Australia/Lord_Howe", datetime(2027, 4, 3, 14, 40, tzinfo=UTC)),  # 01:40 twice, half an hour apart
        ("America/Havana", datetime(2026, 11, 1, 4, 30, tzinfo=UTC)),  # 00:30 twice: midnight repeats
    ],
)
def test_every_repeated_wall_time_is_told_apart_in_every_language(key, first, language):
    zone = ZoneInfo(key)
    local = first.astimezone(zone)
    assert local.fold == 0 and local.replace(fold=1).utcoffset() != local.utcoffset()
    second = local.replace(fold=1).astimezone(UTC)
    for say in (local_when, spoken_when):
        assert say(first, zone, language) != say(second, zone, language), (say.__name__, say(first, zone, language))


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
def test_a_move_to_a_later_day_gives_every_language_a_link_that_lives_until_the_new_time(
    language, service, clinic, session_factory, channels, clock
):
    """A manage link expires at the start it was written for. The confirmation's link dies at the old time, so a
    booking moved a week later needs the move notice's link: only the English notice carried one, and a Spanish,
    French or German customer had nothing that worked for that week."""
    from nextslot.core.links import Links, LinkTarget
    from nextslot.reminders.dispatcher import Dispatcher
    from nextslot.schemas.commands import BookingReschedule

    links = Links("round11-secret", "https://book.example")
    dispatcher = Dispatcher(session_factory, channels, clock=clock, links=links)
    code = book(service, clinic, phone="+447911123492", language=language)
    later = TUESDAY_9 + timedelta(days=7)
    service.reschedule(clinic, BookingReschedule(code=code, starts_at=later))
    dispatcher.dispatch_due()
    [notice] = [m for m in channels["whatsapp"].sent if code in m.body]
    found = re.search(r"https://book\.example/m/([^\s?]+)", notice.body)  # her language may follow (?lang=)
    assert found, notice.body
    target = links.read("manage", found[1].rstrip("."), TUESDAY_9 + timedelta(days=1))  # after the old time
    assert isinstance(target, LinkTarget) and target.expires_at == later, target
