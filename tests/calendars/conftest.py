"""The calendar tests' outside servers: Radicale (CalDAV) and loopback fakes of Google and Microsoft, one each per
module (each takes a moment to start), emptied before each test that uses them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from evals.fake_google import FakeGoogle
from evals.fake_microsoft import FakeMicrosoft


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    """One CalDAV server for the module; each test gets its own calendar on it."""
    from tests.calendars.test_sync import Radicale

    server = Radicale(tmp_path_factory.mktemp("radicale"))
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def google_server() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


@pytest.fixture
def google(google_server, monkeypatch) -> FakeGoogle:
    """The fake with an empty calendar; oauthlib allowed plain http (the fake's token endpoint on loopback)."""
    with google_server.lock:
        for kept in (google_server.events, google_server.changed, google_server.channels):
            kept.clear()
        google_server.requests.clear()
        google_server.token_requests.clear()
        google_server.down = False
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    return google_server


@pytest.fixture(scope="module")
def microsoft_server() -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft() as fake:
        yield fake


@pytest.fixture
def microsoft(microsoft_server) -> FakeMicrosoft:
    with microsoft_server.lock:
        for kept in (microsoft_server.events, microsoft_server.changed, microsoft_server.subscriptions):
            kept.clear()
        microsoft_server.requests.clear()
        microsoft_server.token_requests.clear()
        microsoft_server.down = False
    return microsoft_server


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def google_registry(google):
    """The calendar registry pointed at the fake Google, push off."""
    from nextslot.calendars.providers import build_registry
    from tests.calendars import test_google

    return build_registry(test_google.settings_for(google, calendar_push=False), test_google.SECRET)
