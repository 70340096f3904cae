"""/v1/webhooks: register an endpoint, see that (and why) it was disabled, turn it on again."""
from __future__ import annotations

from sqlalchemy import update

from nextslot.storage.tables import WebhookEndpoint


def test_staff_register_endpoints_see_why_one_was_disabled_and_re_enable_it(api, clinic, make_business,
                                                                           session_factory):
    client = api(clinic)
    made = client.post("/v1/webhooks", json={"url": "https://crm.example/hooks",
                                             "event_types": ["booking.created", "deposit.paid"]})
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    endpoint_id = made.json()["id"]
    with session_factory() as s:  # what the sender does after a day of failures
        s.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                  .values(active=False, disabled_reason="no 2xx for a day: HTTP 500"))
        s.commit()
    [listed] = client.get("/v1/webhooks").json()
    assert (listed["active"], listed["disabled_reason"]) == (False, "no 2xx for a day: HTTP 500")
    assert listed["event_types"] == ["booking.created", "deposit.paid"]

    other = api(make_business("clinic"))
    assert other.get("/v1/webhooks").json() == []
    assert other.put(f"/v1/webhooks/{endpoint_id}", json={"active": True}).status_code == 404
    again = client.put(f"/v1/webhooks/{endpoint_id}", json={"active": True})
    assert again.status_code == 200 and again.json()["active"] and again.json()["disabled_reason"] is None

    bad = client.post("/v1/webhooks", json={"url": "https://crm.example/x", "event_types": ["booking.teleported"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"]
    assert client.post("/v1/webhooks", json={"url": "ftp://crm.example"}).json()["error"]["code"] == "invalid_url"


def test_an_endpoint_on_an_internal_address_is_refused(api, clinic):
    client = api(clinic)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/", "http://[::ffff:10.0.0.1]/"):
        refused = client.post("/v1/webhooks", json={"url": url})
        assert refused.status_code == 422, url
        assert refused.json()["error"] | {"message": None} == {
            "code": "invalid_url", "field": "url", "message": None, "problems": [], "suggestions": []}
    assert client.get("/v1/webhooks").json() == []
