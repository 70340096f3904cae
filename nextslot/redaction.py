"""What must not reach a log: the secret tokens in our links, contacts, passwords in URLs.

A token in a URL is the whole key to what it opens (a year of the calendar for an ICS feed, a booking for a
manage link), and access logs are kept long and read by many. Tokens are cut to a short prefix (enough to
match a log line to a link someone reports), phone numbers and emails masked, URL credentials dropped.
"""
from __future__ import annotations

import logging
import re

KEEP = 4  # characters of a token left in the log
# the routes whose path segment after the prefix is a secret token (manage, offer, pay, feeds, confirmation): the
# whole segment, since a signed link's token is `payload.signature` and the signature is its secret part
TOKEN_PATH = re.compile(r"^(/(?:m|w|pay/local|pay|ics/booking|ics|b/[^/?]+/booked)/)([^/?]+)")
TOKEN_QUERY = re.compile(  # `request`: a signed OAuth authorization request on its way to consent
    r"([?&](?:token|t|key|secret|signature|sig|session_id|api_key|code|request|refresh_token)=)([^&#]*)", re.I)
PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")
# each starts only where its run of letters starts: tried from every point of a 16 KB run (a request's path) they
# scanned to its end each time, seconds of the event loop's thread for one line
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL_CREDENTIALS = re.compile(r"(?<!\w)(\w+://)[^/@\s]+@")


def shortened(token: str) -> str:
    return token[:KEEP] + "…" if len(token) > KEEP else token


def redact_path(path: str) -> str:
    """A request path with its query, as the access log prints it, with every secret shortened."""
    path = TOKEN_PATH.sub(lambda m: m.group(1) + shortened(m.group(2)), path, count=1)
    return TOKEN_QUERY.sub(lambda m: m.group(1) + shortened(m.group(2)), path)


def redact_text(text: str) -> str:
    """Free text bound for a log (a provider's error message, an exception): no contacts, no URL passwords."""
    text = URL_CREDENTIALS.sub(r"\1…@", text)
    text = EMAIL.sub(lambda m: m.group(0)[:2] + "…@…", text)
    return PHONE.sub(lambda m: m.group(0)[:3] + "…" + m.group(0)[-2:], text)


class RedactedAccessLog(logging.Filter):
    """For uvicorn's access logger, whose records carry (client, method, path with query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Put the filter on uvicorn's access logger (once), however the server was started."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactedAccessLog) for f in access.filters):
        access.addFilter(RedactedAccessLog())
