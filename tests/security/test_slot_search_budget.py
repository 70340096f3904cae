"""One business hammering slot searches spends its own budget, not everyone's: past it, that business gets
`rate_limited` with a wait on every way in (/v1 429, voice webhooks 429, MCP a tool error, the booking page 429),
while another business on the same server is still answered."""
from __future__ import annotations

import json

import anyio
import httpx2
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.core.service import BookingService
from nextslot.runtime import build_service
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage import queries
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.conftest import LiveServer
from tests.server.test_voice_webhooks import post_retell, retell_body

BUDGET = 4
SEARCH = {"service": "consultation", "date": "2026-11-24"}


@pytest.fixture
def budgeted(session_factory, clock) -> BookingService:
    return BookingService(session_factory, clock=clock, slot_searches_per_business=f"{BUDGET}/minute")


@pytest.fixture
def app(budgeted):
    return create_app(Settings(secret_key="budget-tests"), service=budgeted)


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as session:
        return queries.business(session, business_id).slug


def test_a_business_over_its_budget_gets_429_on_v1_while_another_is_answered(app, make_business, api_key):
    a, b = make_business("clinic"), make_business("clinic")
    key_a, key_b, second_key_a = api_key(a), api_key(b), api_key(a)

    def slots(http: TestClient, key: str):
        return http.get("/v1/slots", params={"service": "consultation"}, headers={"Authorization": f"Bearer {key}"})

    with TestClient(app) as http:
        # the process's first search (code and statements warming up) may take more CPU than a search counts for
        # once (COST_UNIT) on a slow machine: another business's takes it, so each of a's counts once
        assert slots(http, key_b).status_code == 200
        answers = [slots(http, key_a) for _ in range(BUDGET + 1)]
        assert [r.status_code for r in answers] == [200] * BUDGET + [429]
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert slots(http, key_b).status_code == 200
        assert slots(http, second_key_a).status_code == 429  # another key of the business: the same budget


def test_the_booking_page_and_voice_webhooks_answer_429_for_the_spent_business(app, make_business,
                                                                                session_factory):
    a, b = make_business("clinic"), make_business("clinic")
    for business in (a, b):
        set_secret(SqlAlchemyUnitOfWork(session_factory), business, "retell", "key_0123456789abcdef")
    with TestClient(app) as http:
        pages = [http.get(f"/b/{slug_of(session_factory, a)}/consultation") for _ in range(BUDGET + 1)]
        assert [p.status_code for p in pages][-1] == 429 and "Retry-After" in pages[-1].headers
        voice = post_retell(http, slug_of(session_factory, a), retell_body("find_available_slots", SEARCH))
        assert voice.status_code == 429 and int(voice.headers["Retry-After"]) >= 1
        assert voice.json()["error"]["code"] == "rate_limited" and voice.json()["error"]["retry_after"] >= 1
        other = post_retell(http, slug_of(session_factory, b), retell_body("find_available_slots", SEARCH))
        assert other.status_code == 200 and other.json()["slots"]
        assert http.get(f"/b/{slug_of(session_factory, b)}/consultation").status_code == 200


def test_an_agent_over_the_budget_gets_a_tool_error_with_a_wait_on_mcp(app, make_business, api_key):
    a, b = make_business("clinic"), make_business("clinic")
    key_a, key_b = api_key(a), api_key(b)

    async def searches(server: LiveServer, key: str, times: int) -> list:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            return [await client.call_tool("find_available_slots", SEARCH) for _ in range(times)]

    with LiveServer(app) as server:
        [other] = anyio.run(searches, server, key_b, 1)  # first: the process's warm-up is not charged to a
        results = anyio.run(searches, server, key_a, BUDGET + 1)
    assert [r.is_error for r in results] == [False] * BUDGET + [True]
    error = json.loads(results[-1].content[0].text)["error"]
    assert error["code"] == "rate_limited" and error["retry_after"] >= 1
    assert not other.is_error and other.structured_content["slots"]


def test_servers_get_the_budget_from_the_setting_600_a_minute_by_default(database_url):
    assert Settings.model_fields["rate_limit_slot_searches_per_business"].default == "600/minute"
    service = build_service(Settings(database_url=database_url, rate_limit_slot_searches_per_business="7/second"))
    assert str(service._search_budget.item) == "7 per 1 second"
    with pytest.raises(ValueError):
        Settings(rate_limit_slot_searches_per_business="lots")


def test_a_business_runs_two_searches_at_a_time_and_another_business_never_waits_behind_them():
    import threading
    import time

    from nextslot.core.booking.search_budget import AT_ONCE, SlotSearchBudget

    budget, release = SlotSearchBudget("10000/minute"), threading.Event()
    running: dict[str, int] = {"a": 0, "most": 0}

    def heavy() -> str:
        running["a"] += 1
        running["most"] = max(running["most"], running["a"])
        release.wait(10)
        running["a"] -= 1
        return "a"

    flood = [threading.Thread(target=budget.run, args=(1, heavy)) for _ in range(10)]
    for thread in flood:
        thread.start()
    while running["a"] < AT_ONCE:
        time.sleep(0.01)
    time.sleep(0.1)  # the other eight have reached their business's turn and wait there
    started = time.perf_counter()
    assert budget.run(2, lambda: "b") == "b"  # another business: at once
    assert time.perf_counter() - started < 0.05
    assert running["a"] == AT_ONCE
    release.set()
    for thread in flood:
        thread.join()
    assert running["most"] == AT_ONCE


def test_a_search_counts_once_for_each_50_ms_of_cpu_it_took():
    import time

    from nextslot.core.booking.search_budget import SlotSearchBudget

    def burn(seconds: float) -> None:
        until = time.thread_time() + seconds
        while time.thread_time() < until:
            pass

    budget = SlotSearchBudget("10/minute")
    assert budget.run(1, lambda: burn(0.22)) is None  # once, then four times more: 5 of 10
    assert budget.run(1, lambda: burn(0.001)) is None  # a cheap one counts once: 6
    assert budget.run(1, lambda: burn(0.5)) is None  # 7, then as many more as there is room for: 10
    refused = budget.run(1, lambda: "never run")
    assert refused.code == "rate_limited"
    assert budget.run(2, lambda: "b") == "b"  # each business its own window
