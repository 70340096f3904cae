"""The translated sentences: one gettext catalog per language (locale/<lang>/LC_MESSAGES/messages.po),
read once with Babel. English is the source text itself.

Extract new strings with `pybabel extract -F babel.cfg -o nextslot/languages/messages.pot .` and merge them
with `pybabel update -i nextslot/languages/messages.pot -d nextslot/languages/locale`; a test fails while
any string of the templates or the code has no translation in a catalog.
"""
from __future__ import annotations

import gettext as stdlib_gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "es", "fr", "de")  # the same as the messages' (reminders/templates.py)
NAMES = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch"}  # each in its own words
LOCALE_DIR = Path(__file__).parent / "locale"


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def translator(language: str) -> stdlib_gettext.NullTranslations:
    """The language's translations (English and unknown languages: the source text)."""
    if language not in LANGUAGES or language == "en":
        return NullTranslations()
    with catalog_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: an unchecked guess is not shown
    compiled.seek(0)
    return Translations(compiled)


def gettext(language: str, message: str, **values: object) -> str:
    """`message` in the language, with `%(name)s` placeholders filled."""
    text = translator(language).gettext(message)
    return text % values if values else text


def ngettext(language: str, singular: str, plural: str, n: int, **values: object) -> str:
    text = translator(language).ngettext(singular, plural, n)
    return text % {"num": n, **values}


def N_(message: str) -> str:  # noqa: N802 - the name gettext's extractors look for
    """Mark a string for extraction where it is defined; it is translated where it is shown."""
    return message
