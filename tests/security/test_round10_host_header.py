"""Addresses we hand out are built from NEXTSLOT_PUBLIC_URL, never from the request's Host header, which whoever
sends the request (or a proxy passing it on) chooses. The booking page's share page, QR codes, manage links and the
OAuth metadata already were; the console's settings page showed the booking page's address and the embed snippet
an owner copies onto their site from the Host header: behind a proxy that passes on an inside name, or after a
request with a forged Host, the snippet named a host that is not the business's."""
from __future__ import annotations

from fastapi.testclient import TestClient

from nextslot.core.accounts.staff import create_account
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.server.test_console import PASSWORD, clients, console, slug_of  # noqa: F401 - the signed-in console


def test_the_console_shows_the_booking_pages_public_address_whatever_the_host_header(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    page = client.get(f"/console/{slug}/settings", headers={"host": "evil.example"})
    assert page.status_code == 200, page.text
    assert "evil.example" not in page.text
    assert f"http://127.0.0.1:8000/b/{slug}" in page.text  # Settings().public_url, the default
    assert 'src="http://127.0.0.1:8000/embed.js"' in page.text.replace("&#34;", '"').replace("&quot;", '"')


def test_cookies_are_secure_when_the_public_address_is_https_behind_a_proxy_uvicorn_does_not_trust(
        service, session_factory, make_business):
    """TLS ends at the proxy; uvicorn reads X-Forwarded-Proto only from FORWARDED_ALLOW_IPS (127.0.0.1 unless set),
    so behind any other proxy (the Helm chart's ingress) it sees http. The session cookie then went without
    Secure: a browser would send it over plain http to this host (a downgraded link, a captive portal)."""
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, "owner@example.com", "Sam Owner", "owner", PASSWORD)
    settings = Settings(secret_key="cookie-tests", public_url="https://book.example.com")
    with TestClient(create_app(settings, service=service), follow_redirects=False,
                    headers={"x-forwarded-proto": "https"}) as client:  # from a proxy it does not trust
        signed_in = client.post(f"/console/{slug}/login", data={"email": "owner@example.com", "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        chat = client.get(f"/b/{slug}/chat")
    for answer, name in ((signed_in, "nextslot_console"), (chat, "nextslot_chat")):
        [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith(name + "=")]
        assert "secure" in cookie.lower(), cookie
    # and the booking page's chat, in a third-party iframe, gets the SameSite=None it needs there
    assert "samesite=none" in [c for c in chat.headers.get_list("set-cookie")
                               if c.startswith("nextslot_chat=")][0].lower()
