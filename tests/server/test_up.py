"""`nextslot up` as a real process: an empty database migrated and loaded, a server and a scheduler running,
a booking made through MCP over HTTP, its confirmation in the local outbox, and SIGINT stopping everything."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from nextslot.storage.engine import create_database, drop_database
from tests.conftest import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def empty_database(database_url):
    url = make_url(database_url).set(database=f"nextslot_up_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    create_database(url)
    yield url
    drop_database(url)


def children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def read_banner(process: subprocess.Popen, log: Path, timeout: float = 180) -> str:
    """What `up` printed, once the claude_desktop_config.json snippet is complete (the children's logs go to the
    same file, as they go to the same terminal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "claude_desktop_config.json" in text and re.search(r"^}$", text, re.M):
            return text[:re.search(r"^}$", text, re.M).end()]
        if process.poll() is not None:
            raise AssertionError("`nextslot up` ended early:\n" + text)
        time.sleep(0.2)
    raise AssertionError("no banner in time:\n" + log.read_text())


async def test_up_runs_a_server_and_a_scheduler_that_send_a_booking_confirmation_then_stop_on_sigint(
        empty_database, tmp_path):
    port = free_port()
    env = {**os.environ, "NEXTSLOT_DATABASE_URL": empty_database, "NEXTSLOT_DATA_DIR": str(tmp_path / "data"),
           "NEXTSLOT_DISPATCH_INTERVAL_SECONDS": "0.5", "PYTHONUNBUFFERED": "1"}
    for name in ("NEXTSLOT_TWILIO_ACCOUNT_SID", "NEXTSLOT_SMTP_HOST", "NEXTSLOT_PUBLIC_URL"):
        env.pop(name, None)
    log = tmp_path / "up.log"
    with log.open("a") as out:  # O_APPEND: the three processes' lines never overwrite each other
        up = subprocess.Popen([sys.executable, "-m", "nextslot.cli", "up", "--port", str(port)], env=env,
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        banner = read_banner(up, log)
        assert "loaded the examples: riverside-clinic, northside-garage" in banner
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/b/riverside-clinic" in banner and f"{base}/outbox" in banner
        key = re.search(r"Authorization: Bearer (nsk_\S+)", banner).group(1)
        email, password = re.search(r"sign in as (\S+) / (\S+)", banner).groups()
        snippet = banner[banner.index("claude_desktop_config.json"):]
        desktop = json.loads(snippet[snippet.index("\n{") + 1:])
        assert desktop["mcpServers"]["riverside-clinic"]["env"]["NEXTSLOT_API_KEY"] == key
        server, scheduler = children_of(up.pid)

        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as mcp:
            slots = (await mcp.call_tool("find_available_slots", {"service": "consultation"})).structured_content
            booked = (await mcp.call_tool("book_appointment", {
                "service": "consultation", "starts_at": slots["slots"][0]["starts_at"], "customer_name": "Ada Up",
                "phone": "+447911123456", "idempotency_key": "up-1"})).structured_content
        assert booked["outcome"] == "booked", booked
        code = booked["appointment"]["code"]

        async with httpx2.AsyncClient(base_url=base, timeout=30) as page:
            for _ in range(240):  # the scheduler sends within a few dispatch ticks
                messages = (await page.get("/outbox.json")).json()["messages"]
                if any(code in m["body"] for m in messages):
                    break
                await anyio.sleep(0.5)
            else:
                raise AssertionError(f"no confirmation in the local outbox: {messages}")
            [sent] = [m for m in messages if code in m["body"]]
            assert sent["channel"] == "whatsapp" and sent["to"] == "+447911123456"  # the customer's first channel
            assert code in (await page.get("/outbox")).text
            # one scrape shows both processes (multiprocess mode): the server's booking, the scheduler's send (counted
            # once its attempt is recorded, just after the outbox showed the message: scraped again until then)
            token = re.search(r"metrics: .* Bearer (\S+)", banner).group(1)
            sent_count = ("nextslot_message_deliveries_total", (("channel", "whatsapp"), ("outcome", "accepted")))
            for _ in range(60):
                scraped = await page.get("/metrics", headers={"Authorization": f"Bearer {token}"})
                assert scraped.status_code == 200
                samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                           for f in text_string_to_metric_families(scraped.text) for s in f.samples}
                if sent_count in samples:
                    break
                await anyio.sleep(0.5)
            assert samples[("nextslot_bookings_total", (("code", ""), ("operation", "book"),
                                                        ("outcome", "booked")))] == 1
            assert samples[sent_count] >= 1
            assert (await page.get("/metrics")).status_code == 401
            signed_in = await page.post("/console/riverside-clinic/login", data={"email": email, "password": password},
                                        headers={"Origin": base})
            assert signed_in.status_code == 303 and "nextslot_console=" in signed_in.headers["set-cookie"]

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert not alive(server) and not alive(scheduler)
        assert "stopping the server and the scheduler" in log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
