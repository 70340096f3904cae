"""The catalogs are complete: every customer-facing string of the pages' templates and of the code is
translated in every language, with the same placeholders, and dates read the local way."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from nextslot.languages import gettext, local_day, local_when
from nextslot.languages.catalogs import LANGUAGES, catalog_path
from nextslot.languages.extract import found

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# the same word in the language and in English: not a missed translation
SAME = {"es": {"Chat", "No", "Error:"}, "fr": {"Chat", "Message"},
        "de": {"Chat", "Name", "Link", "Status", "Problem:"}}


def catalog(language: str):
    with catalog_path(language).open("rb") as po:
        return read_po(po, locale=language)


def ids(message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def strings(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def test_the_sources_have_translatable_strings():
    assert len({m if isinstance(m, str) else m[0] for m, _ in found()}) > 150


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_every_string_in_the_code_is_translated(language):
    translated = {ids(m)[0]: m for m in catalog(language) if m.id}
    wanted = {(m if isinstance(m, str) else m[0]): where for m, where in found()}
    missing = sorted(f"{where}: {text}" for text, where in wanted.items()
                     if text not in translated or not all(strings(translated[text])) or translated[text].fuzzy)
    assert not missing, "run `python -m nextslot.languages.extract` and translate:\n" + "\n".join(missing)


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_translations_keep_the_placeholders_and_are_not_english(language):
    for message in catalog(language):
        if not message.id:
            continue
        for text in strings(message):
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(ids(message)[0])), message.id
            if text == ids(message)[0]:
                assert text in SAME[language], f"{language}: {text!r} is still English"


def test_dates_and_times_are_said_the_local_way():
    instant = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    madrid = ZoneInfo("Europe/Madrid")
    assert local_when(instant, madrid, "es") == "martes, 8 de diciembre, 10:00"
    assert local_when(instant, madrid, "fr") == "mardi 8 décembre à 10:00"
    assert local_when(instant, madrid, "de") == "Dienstag, 8. Dezember, 10:00 Uhr"
    assert local_when(instant, madrid, "en") == "Tuesday 8 December at 10 am"
    assert local_day(date(2026, 11, 23), "de") == "Montag, 23. November"


def test_a_time_the_clocks_show_twice_says_which_in_the_language():
    berlin = ZoneInfo("Europe/Berlin")  # 25 October 2026: 02:30 happens twice
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert local_when(first, berlin, "de") == "Sonntag, 25. Oktober, 02:30 Uhr (vor der Zeitumstellung)"
    assert local_when(second, berlin, "de") == "Sonntag, 25. Oktober, 02:30 Uhr (nach der Zeitumstellung)"
    assert local_when(first, berlin, "es") != local_when(second, berlin, "es")


def test_an_unknown_language_reads_english():
    assert gettext("xx", "Pick a time") == "Pick a time"
