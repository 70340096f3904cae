"""Calendar push and payment webhooks with generated requests: Google's channel headers and Microsoft's
validationToken and notification JSON (another calendar's channel ids and secrets among them); Stripe and the
local checkout's events, forged or validly signed over hostile JSON; /pay/{token} with hostile and other
tenants' tokens. No 5xx, no internal text, and a refused request writes nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from nextslot.calendars.push import secret_hash
from nextslot.core.links import Links
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import ExternalCalendar, Resource
from nextslot.webhooks.signing import signature
from tests.fuzz.channels import checked, rows, sendable, text_of, unlimited
from tests.fuzz.hostile import arguments, assert_whole, examples, json_text, scalars, values
from tests.server.test_payments import book_van, stripe_event

SECRET = "fuzz-tests"
CHANNELS = [("google", "chan-google-1", "google-secret"), ("microsoft", "sub-ms-1", "ms-state")]


def a_calendar(session_factory, business_id: int, provider: str, channel: str, secret: str) -> None:
    with session_factory() as s:
        resource = s.scalars(select(Resource.id).where(Resource.business_id == business_id)).first()
        s.add(ExternalCalendar(business_id=business_id, resource_id=resource, provider=provider,
                               url=f"https://{provider}.example/cal", channel_id=f"{channel}-{business_id}",
                               channel_secret_hash=secret_hash(secret)))
        s.commit()


def test_generated_calendar_push_notifications(service, make_business, session_factory):
    clinic = make_business("clinic")
    for provider, channel, secret in CHANNELS:
        a_calendar(session_factory, clinic, provider, channel, secret)
    ids = st.one_of(st.sampled_from([f"{c}-{clinic}" for _, c, _ in CHANNELS]), scalars().map(text_of))
    secrets = st.one_of(st.sampled_from([s for *_, s in CHANNELS]), scalars().map(text_of))
    app = create_app(Settings(secret_key=SECRET), service=service)
    with TestClient(app, raise_server_exceptions=False) as http:
        unlimited(app)

        @given(data=st.data(), google=st.booleans())
        @examples(200)
        def run(data, google):
            if google:
                headers = {"x-goog-channel-id": data.draw(ids), "x-goog-channel-token": data.draw(secrets),
                           "x-goog-resource-state": data.draw(st.one_of(st.sampled_from(["exists", "sync"]),
                                                                        scalars().map(text_of)))}
                if not all(v.isascii() and "\n" not in v and "\r" not in v for v in headers.values()):
                    return  # not a header any client can send
                request = {"url": "/webhooks/calendars/google", "headers": headers}
            elif data.draw(st.booleans()):
                token = data.draw(scalars().map(text_of))
                if not sendable({"t": token}):
                    return
                request = {"url": "/webhooks/calendars/microsoft", "params": {"validationToken": token}}
            else:
                items = data.draw(st.lists(st.one_of(
                    st.fixed_dictionaries({"subscriptionId": ids, "clientState": secrets}), values()), max_size=3))
                body = data.draw(st.one_of(st.just({"value": items}), values(), st.sampled_from(
                    ["[" * 100_000, '{"value": [' * 5000, "\x00", '{"value": "x"}', "nan"])))
                content = body if isinstance(body, str) else json_text(body)
                if not sendable({"b": content}):
                    return
                request = {"url": "/webhooks/calendars/microsoft", "content": content.encode()}
            before = rows(session_factory)
            answer = http.post(**request)
            checked(answer, before, rows(session_factory), f"{request}"[:400])
            if "validationToken" in request.get("params", {}) and answer.status_code == 200:
                assert answer.headers["content-type"].startswith("text/plain")  # echoed, never as HTML

        run()


def signed_stripe(body: str, secret: str = "whsec_fuzz") -> str:
    at = int(time.time())
    return f"t={at},v1={hmac.new(secret.encode(), f'{at}.{body}'.encode(), hashlib.sha256).hexdigest()}"


def test_generated_payment_webhooks_and_pay_links(service, make_business, session_factory):
    garage, other = make_business("garage"), make_business("garage")
    mine, theirs = book_van(service, garage, "+12125550160"), book_van(service, other, "+12125550161")
    links = Links(SECRET, "http://testserver")
    tokens = [links.token("pay", garage, mine.code, mine.payment.expires_at),
              links.token("pay", other, theirs.code, theirs.payment.expires_at),
              links.token("manage", garage, mine.code, mine.payment.expires_at),
              links.token("pay", garage, theirs.code, theirs.payment.expires_at),  # a real code, not its business
              links.token("pay", garage, mine.code, datetime(2026, 1, 1, tzinfo=UTC))]
    event_fields = ["id", "type", "ref", "amount_minor", "currency", "payer", "payment", "data", "object"]
    stripe_app = create_app(Settings(secret_key=SECRET, payment_provider="stripe", stripe_api_key="sk_test_fuzz",
                                     stripe_webhook_secret="whsec_fuzz", stripe_api_base="http://127.0.0.1:9"),
                            service=service)
    local_app = create_app(Settings(secret_key=SECRET), service=service)
    local_secret = f"local-payments:{SECRET}"
    with TestClient(stripe_app, raise_server_exceptions=False) as stripe_http, \
            TestClient(local_app, raise_server_exceptions=False, follow_redirects=False) as local_http:
        unlimited(stripe_app), unlimited(local_app)

        @given(data=st.data(), which=st.sampled_from(["stripe", "local", "pay"]), signing=st.integers(0, 3))
        @examples(200)
        def run(data, which, signing):
            if which == "pay":
                token = data.draw(st.one_of(st.sampled_from(tokens), scalars().map(text_of),
                                            st.sampled_from(tokens).map(lambda t: t[:-2] + "xx")))
                if not sendable({"t": token}):
                    return
                before = rows(session_factory)
                answer = local_http.get(f"/pay/{quote(token, safe='')}")
                checked(answer, before, rows(session_factory), f"/pay/{token}")
                return
            if which == "stripe":
                event = json.loads(stripe_event(data.draw(st.one_of(st.just(f"cs_{mine.code}"), scalars())), 2500))
                fields = event["data"]["object"]
            else:
                event = {"id": "evt_fuzz", "type": "payment.succeeded", "ref": "lc_fuzz", "amount_minor": 2500,
                         "currency": "USD", "payer": "lcus_x", "payment": "lpi_x"}
                fields = event
            for key, value in data.draw(arguments(event_fields + list(fields))).items():
                fields[key] = value
            body = data.draw(st.one_of(st.just(event), st.just(event), values()))
            content = json_text(body) if not isinstance(body, str) or data.draw(st.booleans()) else body
            if not sendable({"b": content}):
                return
            secret = "whsec_fuzz" if which == "stripe" else local_secret
            header = {1: "", 2: "forged"}.get(signing, "")
            if signing == 0:  # a hostile header: any text a client can put in one (latin-1, no line breaks)
                header = data.draw(st.one_of(scalars().map(text_of), st.sampled_from(
                    ["t=1,v1=\xe9", "t=1796474528,v1=" + "\xe9" * 64, "t=" + "9" * 5000 + ",v1=ab", "v1=,t="])))
                if not sendable({"h": header}) or re.search(r"[\r\n\x00]|[^\x00-\xff]", header):
                    return
            if signing == 3:
                header = signed_stripe(content, secret) if which == "stripe" else \
                    signature(local_secret, int(time.time()), content)
            http = stripe_http if which == "stripe" else local_http
            before = rows(session_factory)
            answer = http.post(f"/webhooks/payments/{which}", content=content.encode(),
                               headers={"stripe-signature" if which == "stripe" else "local-signature": header.encode("latin-1")})
            checked(answer, before, rows(session_factory), f"{which} {content[:300]} signed={signing == 3}")
            if signing != 3:
                assert answer.status_code == 400, answer.text

        run()
    assert_whole(session_factory)


def test_a_nul_channel_id_and_json_nested_too_deep_are_refused_not_a_500(service, make_business, session_factory):
    """Found by the fuzz run: a NUL in Google's channel id (or a Graph subscriptionId) reached PostgreSQL, and
    Graph JSON nested past Python's recursion limit raised RecursionError: both a 500."""
    clinic = make_business("clinic")
    a_calendar(session_factory, clinic, "microsoft", "sub-nul", "state")
    with TestClient(create_app(Settings(secret_key=SECRET), service=service), raise_server_exceptions=False) as http:
        google = http.post("/webhooks/calendars/google", headers={"x-goog-channel-id": "ann@example.com\x00",
                                                                  "x-goog-channel-token": "null"})
        assert google.status_code == 404 and google.json()["error"]["code"] == "channel_unknown"
        nul = http.post("/webhooks/calendars/microsoft", content=json_text(
            {"value": [{"subscriptionId": f"sub-nul-{clinic}\x00", "clientState": "state"}]}))
        assert nul.status_code == 404
        deep = http.post("/webhooks/calendars/microsoft", content="[" * 100_000)
        assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_notification"


def test_signed_payment_events_with_a_nan_id_a_huge_amount_or_no_object_are_refused(service, session_factory):
    """Found by the fuzz run: a validly signed Stripe event whose session id was NaN reached PostgreSQL as a
    number, and a local event's amount of 1e400 raised OverflowError: a 500 each; a signed list was an
    AttributeError."""
    stripe_app = create_app(Settings(secret_key=SECRET, payment_provider="stripe", stripe_api_key="sk_test_fuzz",
                                     stripe_webhook_secret="whsec_fuzz"), service=service)
    event = json.loads(stripe_event("cs_x", 2500))
    event["data"]["object"]["id"] = float("nan")
    local = {"id": "evt_1", "type": "payment.succeeded", "ref": "lc_1", "amount_minor": 1e400,
             "currency": "USD"}
    before = rows(session_factory)
    with TestClient(stripe_app, raise_server_exceptions=False) as stripe_http, \
            TestClient(create_app(Settings(secret_key=SECRET), service=service),
                       raise_server_exceptions=False) as local_http:
        for body in (json_text(event), "[]", "[" * 100_000):
            answer = stripe_http.post("/webhooks/payments/stripe", content=body,
                                      headers={"stripe-signature": signed_stripe(body)})
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook", body[:80]
        body = json_text(local)
        answer = local_http.post("/webhooks/payments/local", content=body, headers={
            "local-signature": signature(f"local-payments:{SECRET}", int(time.time()), body)})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook"
    assert rows(session_factory) == before


def test_a_stripe_signature_header_with_a_non_ascii_character_is_refused(service, session_factory):
    """Found while fuzzing: the stripe library compares the header's v1 as text, so a non-ASCII one raised
    TypeError: a 500."""
    app = create_app(Settings(secret_key=SECRET, payment_provider="stripe", stripe_api_key="sk_test_fuzz",
                              stripe_webhook_secret="whsec_fuzz"), service=service)
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/webhooks/payments/stripe", content=b"{}",
                           headers={"stripe-signature": f"t={int(time.time())},v1=\xe9".encode("latin-1")})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook"


def test_a_graph_client_state_with_a_lone_surrogate_is_a_forgery_not_a_500(service, make_business, session_factory):
    clinic = make_business("clinic")
    a_calendar(session_factory, clinic, "microsoft", "sub-sur", "state")
    with TestClient(create_app(Settings(secret_key=SECRET), service=service), raise_server_exceptions=False) as http:
        answer = http.post("/webhooks/calendars/microsoft", content=(
            '{"value": [{"subscriptionId": "sub-sur-%d", "clientState": "\\ud800"}]}' % clinic).encode())
    assert answer.status_code == 403, answer.text


def test_stripe_webhook_refusals_say_what_was_wrong_in_our_words_never_the_librarys(service):
    app = create_app(Settings(secret_key=SECRET, payment_provider="stripe", stripe_api_key="sk_test_fuzz",
                              stripe_webhook_secret="whsec_fuzz"), service=service)
    with TestClient(app, raise_server_exceptions=False) as http:
        for body, headers in ((b"\xff", {}), (b"{}", {}), (b"{}", {"stripe-signature": "garbage"}),
                              (b"not json", {"stripe-signature": signed_stripe("not json")}),
                              (b"\xff", {"stripe-signature": signed_stripe("\ufffd")})):
            answer = http.post("/webhooks/payments/stripe", content=body, headers=headers)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_webhook", body
            message = answer.json()["error"]["message"]
            for library_words in ("codec", "Expecting value", "without_verification", "stripe.com", "line 1"):
                assert library_words not in message, (body, message)
