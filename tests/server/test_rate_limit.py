"""Rate limits over real HTTP: per API key on /v1 and /mcp, each tenant on its own budget; the limiter itself."""
from __future__ import annotations

import threading
import time

import httpx2
import pytest
from limits.storage import MemoryStorage
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from nextslot.server import rate_limit
from nextslot.server.rate_limit import RateLimit, SweptMemoryStorage
from nextslot.settings import Settings

MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def test_a_limit_keeps_identities_apart_charges_writes_more_and_frees_up_with_time():
    limit = RateLimit("3/second", MemoryStorage(), "test")
    assert [limit.take("a") for _ in range(3)] == [0, 0, 0]
    assert limit.take("a") == 1  # whole seconds to wait, never 0
    assert limit.take("b") == 0  # another identity has its own budget
    assert limit.take("c", cost=3) == 0 and limit.take("c") == 1
    time.sleep(1.05)
    assert limit.take("a") == 0


def test_the_storage_starts_no_thread_per_hit_and_still_frees_expired_windows(monkeypatch):
    monkeypatch.setattr(rate_limit, "SWEEP_SECONDS", 0.05)
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    storage = SweptMemoryStorage()
    limit = RateLimit("1000/second", storage, "test")
    monkeypatch.setattr(threading.Thread, "start", counted)
    for i in range(200):  # spaced past the 10 ms after which limits' own storage would start a timer thread
        assert limit.take(f"caller {i % 3}") == 0
        if i % 20 == 0:
            time.sleep(0.011)
    assert started == []
    assert limit.take("caller 0") == 0 and any(storage.events.values())  # counted
    deadline = time.monotonic() + 5
    while any(storage.events.values()) and time.monotonic() < deadline:  # a second on, the sweeper frees them
        time.sleep(0.05)
    assert not any(storage.events.values())
    assert [limit.take("caller 0") for _ in range(2)] == [0, 0]  # and counting goes on


def test_a_rate_that_cannot_be_read_is_refused_with_the_settings():
    with pytest.raises(ValueError, match="rate_limit_per_key"):
        Settings(rate_limit_per_key="lots")


def test_one_key_over_its_limit_gets_429_on_v1_while_another_tenant_goes_on(live_server, make_business, api_key):
    first, second = api_key(make_business("clinic")), api_key(make_business("garage"))
    with live_server(settings=Settings(rate_limit_per_key="5/minute")) as server, httpx2.Client(
            base_url=server.url) as http:
        def config(key: str | None) -> httpx2.Response:
            return http.get("/v1/config", headers={"Authorization": f"Bearer {key}"} if key else {})

        assert [config(first).status_code for _ in range(5)] == [200] * 5
        limited = config(first)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["code"] == "rate_limited" and "5 per 1 minute" in limited.json()["error"]["message"]
        assert config(second).status_code == 200  # another key, its own budget
        assert [config(None).status_code for _ in range(6)] == [401] * 5 + [429]  # no key: counted per address
        assert http.get("/health").status_code == 200  # only the API is limited this way


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_one_key_over_its_limit_gets_a_json_rpc_429_on_mcp_while_another_tenant_goes_on(
        live_server, make_business, api_key, anyio_backend):
    first, second = api_key(make_business("clinic")), api_key(make_business("garage"))
    with live_server(settings=Settings(rate_limit_per_key="5/minute")) as server:
        async with httpx2.AsyncClient(headers={**MCP_HEADERS, "Authorization": f"Bearer {first}"}) as http:
            answers = [await http.post(f"{server.url}/mcp", json=LIST_TOOLS) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        limited = answers[-1]
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["jsonrpc"] == "2.0" and limited.json()["error"]["data"]["code"] == "rate_limited"

        over = httpx2.AsyncClient(headers={"Authorization": f"Bearer {first}"})
        with pytest.raises(ExceptionGroup) as refused:  # the SDK's client shows the reason as is
            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=over)) as client:
                await client.list_tools()
        assert refused.group_contains(MCPError, match="Too many requests")
        other = httpx2.AsyncClient(headers={"Authorization": f"Bearer {second}"})
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=other)) as client:
            assert (await client.list_tools()).tools


def test_an_ipv6_clients_whole_64_shares_one_page_budget(service, make_business, session_factory):
    from starlette.testclient import TestClient

    from nextslot.server.app import create_app
    from nextslot.storage import queries

    clinic = make_business("clinic")
    with session_factory() as s:
        slug = queries.business(s, clinic).slug
    app = create_app(Settings(), service=service)
    app.state.rate_limits.pages.take("2001:db8:abcd:12::/64", 59)  # a household's /64, one visit short of its 60

    def page(address: str) -> int:  # one client per address, none of them starting the app's lifespan again
        return TestClient(app, client=(address, 50000)).get(f"/b/{slug}").status_code

    assert page("2001:db8:abcd:12::1") == 200
    assert page("2001:db8:abcd:12::2") == 429  # another address of the same /64: the same budget, spent
    assert page("2001:db8:abcd:13::1") == 200  # the next /64 is someone else
    assert rate_limit.network_of("::ffff:192.0.2.7") == "192.0.2.7" == rate_limit.network_of("192.0.2.7")
