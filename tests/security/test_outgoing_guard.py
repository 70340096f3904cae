"""One guard in front of every URL a stranger or a business names (webhook endpoints, CalDAV calendars, OAuth
client metadata documents): every spelling of an internal address is refused when registered and again when
connected to, with a structured answer for a URL that is not one, and the test suite's loopback fakes allowed
only by an explicit setting that production leaves off."""
from __future__ import annotations

import socket

import anyio
import httpx2
import pytest

from nextslot.calendars.caldav import CalDavReader
from nextslot.calendars.connections import add_calendar
from nextslot.core import outbound
from nextslot.core.outbound import is_public, url_problem
from nextslot.core.outbound_http import http_client
from nextslot.core.results import Rejected
from nextslot.oauth.client_documents import ClientDocuments
from nextslot.settings import Settings
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.webhooks.endpoints import add_endpoint

INTERNAL_ADDRESSES = {
    "IPv4 private 10/8": "10.1.2.3", "IPv4 private 172.16/12": "172.31.255.254", "IPv4 private 192.168/16":
    "192.168.0.1", "IPv4 loopback": "127.0.0.1", "IPv4 loopback, all of 127/8": "127.254.0.9",
    "IPv4 link-local (cloud metadata)": "169.254.169.254", "CGNAT 100.64/10": "100.127.255.1",
    "IPv4 unspecified": "0.0.0.0", "IPv4 this network 0/8": "0.1.2.3", "IPv4 broadcast": "255.255.255.255",
    "IPv4 multicast": "224.0.0.251", "IPv4 reserved 240/4": "240.0.0.1", "IETF protocol 192.0.0/24": "192.0.0.8",
    "benchmarking 198.18/15": "198.18.0.1", "documentation 192.0.2/24": "192.0.2.1",
    "IPv6 loopback": "::1", "IPv6 unspecified": "::", "IPv6 ULA fc00::/7": "fc00::1", "IPv6 ULA fd": "fd12:3456::1",
    "IPv6 link-local": "fe80::1", "IPv6 link-local with a zone": "fe80::1%eth0", "IPv6 site-local": "fec0::1",
    "IPv6 multicast": "ff02::1", "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped metadata": "::ffff:169.254.169.254", "IPv4-compatible loopback": "::127.0.0.1",
    "IPv4-compatible private": "::10.0.0.1", "IPv4-compatible public (deprecated form)": "::93.184.215.14",
    "NAT64 loopback": "64:ff9b::7f00:1", "NAT64 private": "64:ff9b::a00:1", "NAT64 metadata": "64:ff9b::a9fe:a9fe",
    "local-use NAT64 64:ff9b:1::/48": "64:ff9b:1::5db8:d70e", "SIIT loopback": "::ffff:0:7f00:1",
    "SIIT private": "::ffff:0:a00:1", "6to4 loopback": "2002:7f00:1::1", "6to4 private": "2002:a00:1::1",
    "6to4 metadata": "2002:a9fe:a9fe::1", "Teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "Teredo, any": "2001::1", "IPv6 documentation": "2001:db8::1", "IPv6 discard 100::/64": "100::1",
    "not an address": "example.com",
}
PUBLIC_ADDRESSES = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14",
                    "64:ff9b::5db8:d70e", "2002:5db8:d70e::1"]

# every spelling of an internal host in a URL; {port} is a loopback listener's where one could be reached
INTERNAL_HOSTS = {
    "loopback": "127.0.0.1:{port}", "decimal": "2130706433:{port}", "hex": "0x7f.1:{port}",
    "octal": "017700000001:{port}", "short": "127.1:{port}", "unspecified": "0.0.0.0:{port}",
    "mapped": "[::ffff:127.0.0.1]:{port}", "name": "localhost:{port}", "IPv6 loopback": "[::1]:{port}",
    "IPv6 unspecified": "[::]:{port}", "scoped link-local": "[fe80::1%25eth0]:{port}",
    "scoped link-local, raw": "[fe80::1%eth0]", "compatible": "[::127.0.0.1]", "NAT64": "[64:ff9b::7f00:1]",
    "local NAT64": "[64:ff9b:1::a00:1]", "SIIT": "[::ffff:0:7f00:1]", "6to4": "[2002:7f00:1::1]",
    "Teredo": "[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "metadata": "169.254.169.254",
    "metadata, hex": "0xa9fea9fe", "CGNAT": "100.64.0.1", "private": "10.0.0.1", "private 192": "192.168.1.1",
    "ULA": "[fd00::1]", "broadcast": "255.255.255.255", "multicast": "224.0.0.1", "reserved": "240.0.0.1",
}
# the ones a listener on 127.0.0.1 is reached through, when allowed (the proof a refusal is not a dead end)
REACHABLE = ["loopback", "decimal", "hex", "octal", "short", "unspecified", "mapped", "name"]

MALFORMED = ["http://[/", "http://[::1", "http://a b/", "http://\x00/", "http://:80/", "http://127.0.0.1:99999/",
             "http:///x", "", "not a url", "javascript:alert(1)", "file:///etc/passwd", "gopher://127.0.0.1/",
             "ftp://example.com/", "http://" + "a" * 300 + ".example/", "https://ex%ample.com/", "http://[v1.x]/",
             "http://example.com:-1/", "//example.com/x"]


def url(form: str, port: int = 9, scheme: str = "http") -> str:
    return f"{scheme}://{INTERNAL_HOSTS[form].format(port=port)}/hook"


@pytest.mark.parametrize("address", INTERNAL_ADDRESSES.values(), ids=INTERNAL_ADDRESSES.keys())
def test_every_internal_address_form_is_not_public(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_and_public_ones_wrapped_in_ipv6_are_public(address):
    assert is_public(address)


@pytest.mark.parametrize("form", INTERNAL_HOSTS)
def test_every_internal_host_form_is_refused_for_a_webhook_and_a_calendar(form, api, clinic, session_factory):
    target = url(form)
    assert "internal address" in url_problem(target, allow_private=False)
    refused = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, target)
    assert isinstance(refused, Rejected) and refused.code == "invalid_url"
    calendar = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor", target)
    assert isinstance(calendar, Rejected) and calendar.code == "invalid_url"
    client = api(clinic)
    for path, body in (("/v1/webhooks", {"url": target}), ("/v1/calendars", {"resource": "dr-okafor", "url": target})):
        answer = client.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_url", (path, answer.text)


@pytest.mark.parametrize("form", INTERNAL_HOSTS)
def test_every_internal_host_form_is_refused_as_an_oauth_client_document(form, listener):
    document = url(form, listener.port, "https").replace("/hook", "/client.json")
    fetched = anyio.run(ClientDocuments().client, document)
    assert fetched.client is None and fetched.problem in (
        "the client's host resolves to an address that is not public", "the client_id is not an https URL with a path",
        "the client's host name does not resolve"), fetched.problem
    assert listener.accepted == 0


@pytest.mark.parametrize("form", REACHABLE)
def test_no_connection_reaches_an_internal_address_however_it_is_spelled(form, listener):
    target = url(form, listener.port)
    with pytest.raises(httpx2.ConnectError, match="internal address"):
        http_client(allow_private=False, timeout=2).post(target, content=b"{}")  # the webhook sender's client
    with CalDavReader(target) as reader, pytest.raises(Exception, match="internal address|Max retries"):
        reader.state()
    documents = ClientDocuments(resolver=lambda host, port: outbound_addresses(host, port), verify=False)
    assert anyio.run(documents.client, target.replace("http://", "https://")).client is None
    assert listener.accepted == 0

    with pytest.raises(httpx2.HTTPError):  # allowed (the test suite's setting), the very same URL gets through
        http_client(allow_private=True, timeout=2).post(target, content=b"{}")
    assert listener.accepted == 1


async def outbound_addresses(host: str, port: int) -> list[str]:
    """The system's answer for the host, as the document fetcher's own resolver gives it."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def test_a_name_with_one_internal_address_among_public_ones_is_refused(monkeypatch, listener):
    """Every address a name resolves to is checked, not just the first: a resolver answering public first and
    loopback second would otherwise have the connection fall through to loopback."""
    def getaddrinfo(host, port, *args, **kwargs):
        if host == "mixed.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return socket.getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    target = f"http://mixed.example.test:{listener.port}/hook"
    assert "internal address" in url_problem(target, allow_private=False)
    with pytest.raises(httpx2.ConnectError, match="internal address"):
        http_client(allow_private=False, timeout=2).post(target)
    assert listener.accepted == 0


@pytest.mark.parametrize("bad", MALFORMED)
def test_a_malformed_url_gets_a_structured_refusal_everywhere(bad, api, clinic, session_factory):
    endpoint = add_endpoint(SqlAlchemyUnitOfWork(session_factory), clinic, bad)
    calendar = add_calendar(SqlAlchemyUnitOfWork(session_factory), clinic, "dr-okafor", bad)
    assert isinstance(endpoint, Rejected) and endpoint.code in ("invalid_url", "invalid_host")
    assert isinstance(calendar, Rejected) and calendar.code in ("invalid_url", "invalid_host")
    client = api(clinic)
    for path, body in (("/v1/webhooks", {"url": bad}), ("/v1/calendars", {"resource": "dr-okafor", "url": bad})):
        answer = client.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["error"]["code"] in (
            "invalid_url", "invalid_host", "invalid_request"), (path, answer.text)
    fetched = anyio.run(ClientDocuments().client, bad)
    assert fetched.client is None and fetched.problem


def test_redirects_are_not_followed_by_the_webhook_client(live_server):
    """Even where loopback is allowed: a 3xx is the answer, and its Location is never called."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    called: list[str] = []

    async def redirect(request):
        called.append(request.url.path)
        return RedirectResponse("/inside", status_code=307)

    async def inside(request):
        called.append(request.url.path)
        return Response("secret")

    from tests.conftest import LiveServer
    with LiveServer(Starlette(routes=[Route("/hook", redirect, methods=["POST"]),
                                      Route("/inside", inside, methods=["GET", "POST"])])) as server:
        answer = http_client(allow_private=True, timeout=2).post(f"{server.url}/hook", content=b"{}")
    assert answer.status_code == 307 and called == ["/hook"]


def test_production_settings_refuse_internal_targets():
    assert Settings.model_fields["allow_private_targets"].default is False
    assert Settings.model_fields["oauth_trusted_client_hosts"].default == []
    assert ClientDocuments()._trusted == set()
