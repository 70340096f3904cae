"""Keep the catalogs in step with the code: `python -m nextslot.languages.extract` finds every translatable
string (the public pages' templates, strings marked in code) and adds the new ones to each language's catalog
with an empty translation, marking the ones no longer used as obsolete. Then translate the empty ones."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from nextslot.languages.catalogs import LANGUAGES, catalog_path

PACKAGE = Path(__file__).resolve().parent.parent
# where customer-facing text lives: the public pages and their Python, the agent tools, these modules
SOURCES = (
    ("server", [("templates/page/**.html", "jinja2.ext:babel_extract"),
                ("templates/offers/**.html", "jinja2.ext:babel_extract"), ("*.py", "python")]),
    ("tools", [("*.py", "python")]),
    ("languages", [("*.py", "python")]),
)
# `gettext(language, message)` and `ngettext(language, singular, plural, n)` take the language first
KEYWORDS = {"_": None, "N_": None, "gettext": (2,), "ngettext": (2, 3)}
JINJA = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
OPTIONS = {"templates/page/**.html": JINJA, "templates/offers/**.html": JINJA}


def found() -> Iterator[tuple[str | tuple[str, ...], str]]:
    """(message, where) for every translatable string in the sources."""
    for folder, methods in SOURCES:
        root = PACKAGE / folder
        for filename, lineno, message, _comments, _context in extract_from_dir(
                root, methods, OPTIONS, keywords=KEYWORDS, strip_comment_tags=True):
            yield message, f"{folder}/{filename}:{lineno}"


def template() -> Catalog:
    catalog = Catalog(project="nextslot", fuzzy=False)
    for message, where in found():
        path, _, line = where.rpartition(":")
        catalog.add(message, locations=[(path, int(line))])
    return catalog


def update() -> None:
    source = template()
    for language in LANGUAGES[1:]:
        path = catalog_path(language)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=language)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, project="nextslot", fuzzy=False)
        catalog.update(source, no_fuzzy_matching=True)
        with path.open("wb") as po:
            write_po(po, catalog, width=120, sort_output=True, ignore_obsolete=True, include_lineno=False)


if __name__ == "__main__":
    update()
