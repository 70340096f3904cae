"""Secret link tokens, contacts and URL passwords stay out of the logs: uvicorn's access log of a live server,
and our own lines."""
from __future__ import annotations

import logging
import secrets

import httpx2
import pytest

from nextslot.redaction import redact_path, redact_text
from nextslot.settings import Settings


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_log():
    """uvicorn's access logger at INFO (the tests' servers run at WARNING), its lines collected."""
    access = logging.getLogger("uvicorn.access")
    lines, level = Lines(), access.level
    yield access, lines
    access.removeHandler(lines)
    access.setLevel(level)


def test_a_live_servers_access_log_shows_no_link_token_in_full(live_server, access_log):
    access, lines = access_log
    signature = secrets.token_urlsafe(16)
    token = f"{secrets.token_urlsafe(12)}.{signature}"  # a signed link's shape: payload.signature
    paths = [f"/ics/{token}.ics", f"/ics/booking/{token}.ics", f"/m/{token}", f"/m/{token}/move?from=2026-11-24",
             f"/w/{token}", f"/pay/{token}", f"/b/some-clinic/booked/{token}",
             f"/console/x/login?next=/console/x&token={token}"]
    server = live_server(settings=Settings(secret_key="redaction-tests"))
    access.setLevel(logging.INFO)  # after uvicorn's own set-up, which the server has done by now
    access.addHandler(lines)
    with server, httpx2.Client(base_url=server.url) as http:
        for path in paths:
            http.get(path)

    assert len(lines.lines) == len(paths)  # the access log was really written, one line a request
    assert not [line for line in lines.lines if token in line or signature in line]
    assert all(token[:4] + "…" in line for line in lines.lines)
    assert "from=2026-11-24" in lines.lines[3]  # what is not secret stays readable


def test_paths_without_secrets_are_left_alone():
    assert redact_path("/b/riverside-clinic/consultation?from=2026-11-24") == \
        "/b/riverside-clinic/consultation?from=2026-11-24"
    assert redact_path("/v1/bookings?code=Y7CTDJ&limit=5") == "/v1/bookings?code=Y7CT…&limit=5"


def test_free_text_for_a_log_loses_phones_emails_and_url_passwords():
    text = redact_text("sms: 21211 The 'To' number +44 7911 123456 is not valid; email ann.lee@example.com; "
                       "PROPFIND https://okafor:hunter2@dav.example/cal/ failed")
    assert "7911 123456" not in text and "ann.lee@example.com" not in text and "hunter2" not in text
    assert "21211" in text and "dav.example/cal/" in text


def test_oauth_consent_requests_and_refresh_tokens_are_cut_short_in_access_logs():
    from nextslot.redaction import redact_path

    logged = redact_path("/console/acme/connect?request=eyJhbGciOiJsecretvalue&x=1")
    assert logged == "/console/acme/connect?request=eyJh…&x=1"
    assert "nsr_abcdefgh" not in redact_path("/token?refresh_token=nsr_abcdefgh")
