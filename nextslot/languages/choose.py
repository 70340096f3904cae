"""Which of our languages to speak: a stated one (a page's `lang=`, a tool's `language`), the customer's
record, the browser's Accept-Language, the business's default; anything else is ignored, never echoed."""
from __future__ import annotations

import re

from nextslot.languages.catalogs import LANGUAGES

TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
MAX_HEADER = 1000  # a longer Accept-Language is someone else's experiment: the default answers it
MAX_RANGES = 30


def known(value: object) -> str | None:
    """Our language code for a tag ('es', 'es-MX', 'DE_at'), or None for anything else (long, odd, unknown)."""
    if not isinstance(value, str) or len(value) > 35 or not TAG.match(value):
        return None
    primary = value.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best of our languages in an Accept-Language header (RFC 9110 quality values), or None."""
    if not header or len(header) > MAX_HEADER:
        return None
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")[:MAX_RANGES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
                if not 0 <= quality <= 1 or len(value.strip()) > 5:
                    quality = -1.0  # malformed: this range does not count
        language = known(tag.strip())
        if language is None or quality <= 0:
            continue
        candidate = (quality, -position, language)  # equal quality: the earlier range wins
        if best is None or candidate > best:
            best = candidate
    return best[2] if best else None


def choose(*candidates: str | None, default: str = "en") -> str:
    """The first candidate that is one of our languages, else the default (else English)."""
    for candidate in candidates:
        if (language := known(candidate)) is not None:
            return language
    return known(default) or "en"
