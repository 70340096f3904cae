"""A business has at most NEXTSLOT_WEBHOOK_ENDPOINTS_MAX (20) active webhook endpoints, through the real app over
HTTP: every event is written for and sent to each one, so a key could fan one booking out without end. The cap is
counted with the business's row locked: two registrations at once at 19 leave 20."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
from sqlalchemy import func, select, text

from nextslot.settings import Settings
from nextslot.storage.tables import AuditEntry, Business, WebhookEndpoint

MOST = Settings().webhook_endpoints_max


def endpoints(session_factory, business_id: int) -> tuple[int, int]:
    """(endpoints, active ones) of the business."""
    with session_factory() as s:
        rows = s.execute(select(WebhookEndpoint.active).where(WebhookEndpoint.business_id == business_id)).all()
        return len(rows), sum(1 for (active,) in rows if active)


def audited(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.business_id == business_id, AuditEntry.action == "webhook.created")) or 0


def register(http: httpx.Client, n: int) -> httpx.Response:
    return http.post("/v1/webhooks", json={"url": f"https://crm.example/hooks/{n}"})


def staff(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_the_endpoint_past_the_cap_is_refused_and_nothing_written_until_one_is_turned_off(
        live_server, make_business, api_key, session_factory):
    business = make_business("clinic")
    with live_server(settings=Settings(secret_key="endpoint-cap")) as server, staff(server, api_key(business)) as http:
        made = [register(http, n) for n in range(MOST)]
        assert [r.status_code for r in made] == [201] * MOST
        refused = register(http, MOST)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "too_many_endpoints"
        assert refused.json()["error"]["field"] == "url" and "Nothing was added" in refused.json()["error"]["message"]
        assert endpoints(session_factory, business) == (MOST, MOST)
        assert audited(session_factory, business) == MOST

        first = made[0].json()["id"]
        assert http.put(f"/v1/webhooks/{first}", json={"active": False}).status_code == 200
        assert register(http, MOST).status_code == 201  # a place made
        assert endpoints(session_factory, business) == (MOST + 1, MOST)
        again = http.put(f"/v1/webhooks/{first}", json={"active": True})  # on again would be one too many
        assert again.status_code == 409 and again.json()["error"]["code"] == "too_many_endpoints"
        assert endpoints(session_factory, business) == (MOST + 1, MOST)
        assert http.put(f"/v1/webhooks/{made[1].json()['id']}", json={"active": True}).status_code == 200  # on


def test_two_registrations_at_once_at_one_below_the_cap_leave_it_full(
        live_server, make_business, api_key, session_factory):
    business = make_business("clinic")
    with live_server(settings=Settings(secret_key="endpoint-cap")) as server, staff(server, api_key(business)) as http:
        assert [register(http, n).status_code for n in range(MOST - 1)] == [201] * (MOST - 1)
        with session_factory() as holder, ThreadPoolExecutor(2) as pool:
            # the business's row held as a config edit holds it: both registrations are in flight, then go at once
            holder.execute(select(Business.id).where(Business.id == business).with_for_update(key_share=True))
            racing = [pool.submit(register, http, MOST + n) for n in range(2)]
            waiting_for_both(session_factory)
            holder.rollback()
            statuses = sorted(r.result().status_code for r in racing)
        assert statuses == [201, 409]
        assert endpoints(session_factory, business) == (MOST, MOST)


def waiting_for_both(session_factory) -> None:
    """Until two other sessions of this database wait on a lock (a bounded wait: without the cap's lock nothing
    waits, and the registrations have already run)."""
    with session_factory() as s:
        for _ in range(500):
            waiting = s.scalar(text("select count(*) from pg_stat_activity where datname = current_database() "
                                    "and wait_event_type = 'Lock'"))
            if waiting >= 2:
                return
            s.rollback()
            time.sleep(0.02)
