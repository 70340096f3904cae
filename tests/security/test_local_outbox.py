"""The local outbox (`/outbox`, on under `nextslot up` without Twilio or SMTP) shows customers' manage links, so it
answers this machine only: a loopback client asking for a loopback name, never a page whose own domain was made to
resolve to 127.0.0.1 (DNS rebinding), whose requests come from loopback with that domain as Host."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings


@pytest.mark.parametrize("path", ["/outbox", "/outbox.json"])
def test_the_local_outbox_answers_loopback_names_only(service, tmp_path, path):
    app = create_app(Settings(local_outbox=True, data_dir=tmp_path), service=service)
    for host, status in (("127.0.0.1:8000", 200), ("localhost:8000", 200), ("[::1]:8000", 200),
                         ("rebind.attacker.example", 403), ("rebind.attacker.example:8000", 403)):
        answer = TestClient(app, base_url=f"http://{host}", client=("127.0.0.1", 50000)).get(path)
        assert answer.status_code == status, (host, answer.status_code)
    assert TestClient(app, client=("192.0.2.7", 50000)).get(path).status_code == 403
