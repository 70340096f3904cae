"""A console or page path that no route takes is answered by that part itself: its HTML page with the headers every
page of it carries (CSP, framing, nosniff, no-store, referrer policy), 404 or 405 with the Allow header, never the
JSON of the MCP app mounted at the root (which took every path nothing else answered). The in-process app, the real
database."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings
from tests.server.test_console import clients, console, slug_of  # noqa: F401 - the signed-in console

HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy", "cache-control")


def shape(response) -> dict[str, str | None]:
    """The security headers, the CSP's nonce left out (each response has its own)."""
    found = {name: response.headers.get(name) for name in HEADERS}
    if found["content-security-policy"]:
        found["content-security-policy"] = re.sub(r"'nonce-[^']+'", "'nonce'", found["content-security-policy"])
    return found


@pytest.fixture
def visitor(service, clients):  # noqa: F811
    """A browser that is signed in nowhere."""
    client = TestClient(create_app(Settings(secret_key="console-tests"), service=service), follow_redirects=False,
                        base_url="http://127.0.0.1:8000")  # the public URL's host, as in production
    clients.append(client.__enter__())
    return client


def test_an_unknown_console_path_is_the_consoles_own_not_found_page_with_its_headers(
        console, make_business, visitor):  # noqa: F811
    client, slug = console(make_business("clinic"))
    sign_in_page = visitor.get(f"/console/{slug}/login")
    assert sign_in_page.status_code == 200
    for who, path in ((client, f"/console/{slug}/nope"), (client, f"/console/{slug}/settings/nope/deeper"),
                      (visitor, f"/console/{slug}/nope"), (visitor, "/console"), (visitor, "/console/"),
                      (client, f"/console/{slug}/%3Cscript%3Ealert(1)%3C%2Fscript%3E")):
        answer = who.get(path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith("text/html"), path
        assert shape(answer) == shape(sign_in_page), path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "Not found" in answer.text and "<script>alert" not in answer.text and "jsonrpc" not in answer.text


def test_a_method_a_console_page_does_not_take_is_its_405_page_naming_the_methods_it_does(
        console, make_business, visitor):  # noqa: F811
    client, slug = console(make_business("clinic"))
    sign_in_page = visitor.get(f"/console/{slug}/login")
    for method, path in (("PATCH", f"/console/{slug}/login"), ("DELETE", f"/console/{slug}/login"),
                         ("PUT", f"/console/{slug}/login")):
        answer = client.request(method, path)
        assert answer.status_code == 405, (method, path, answer.text[:200])
        # one route shows the sign-in page, another takes its form: the Allow names both, not the first alone
        assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}, answer.headers["allow"]
        assert answer.headers["content-type"].startswith("text/html")
        assert shape(answer) == shape(sign_in_page)
        assert "jsonrpc" not in answer.text and "detail" not in answer.text


def test_an_id_that_is_not_one_in_a_console_path_is_its_not_found_page_not_a_422(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    for path in (f"/console/{slug}/customers/abc", f"/console/{slug}/customers/{2**70}",
                 f"/console/{slug}/inbox/0"):
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_an_unknown_path_under_a_booking_page_is_the_pages_not_found_with_the_pages_headers(
        make_business, session_factory, visitor):
    slug = slug_of(session_factory, make_business("clinic"))
    booking_page = visitor.get(f"/b/{slug}")
    assert booking_page.status_code == 200
    for path in (f"/b/{slug}/consultation/nope", f"/b/{slug}/a/b/c", "/b/", f"/b/{slug}/booked/x/y"):
        answer = visitor.get(path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith("text/html")
        assert shape(answer) == shape(booking_page), path  # framable like the page, so an embedded one shows it
        assert "jsonrpc" not in answer.text


def test_a_method_a_booking_page_does_not_take_is_its_405_page(make_business, session_factory, visitor):
    slug = slug_of(session_factory, make_business("clinic"))
    booking_page = visitor.get(f"/b/{slug}")
    for method, path, allow in (("POST", f"/b/{slug}", {"GET"}),
                                ("PUT", f"/b/{slug}/consultation", {"GET"}),
                                ("DELETE", f"/b/{slug}/consultation/book", {"GET", "POST"}),
                                ("PATCH", f"/b/{slug}/chat", {"GET", "POST"})):
        answer = visitor.request(method, path)
        assert answer.status_code == 405, (method, path, answer.text[:200])
        assert set(answer.headers["allow"].split(", ")) == allow, (path, answer.headers["allow"])
        assert all(visitor.request(named, path).status_code != 405 for named in allow), path  # each one is taken
        assert answer.headers["content-type"].startswith("text/html") and shape(answer) == shape(booking_page)


def test_an_unknown_path_under_a_manage_link_is_a_page_that_may_not_be_framed(visitor):
    answer = visitor.get("/m/not-a-token/nope")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in answer.headers[
        "content-security-policy"]
    assert visitor.request("PUT", "/m/not-a-token").status_code == 405


def test_the_mcp_app_still_answers_its_own_paths(visitor):
    """Only page paths left its mount: /mcp/ (and what else it serves) is still its own, in JSON-RPC."""
    answer = visitor.post("/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Host": "127.0.0.1:8000"})
    assert answer.headers["content-type"].startswith("application/json") and answer.status_code in (401, 421)
