"""Outgoing requests to URLs a business gave us reach public addresses only: at registration, and on every
connection after DNS resolution (a redirect included), unless private targets are allowed."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from nextslot.calendars.caldav import CalDavReader
from nextslot.core import outbound
from nextslot.core.outbound import is_public, url_problem

INTERNAL = ["127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
            "100.64.0.1", "224.0.0.251", "255.255.255.255", "::1", "::", "fe80::1", "fe80::1%eth0", "fd12:3456::1",
            "::ffff:127.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "ff02::1"]


@pytest.mark.parametrize("address", INTERNAL)
def test_loopback_private_link_local_and_other_internal_addresses_are_not_public(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_globally_routable_addresses_are_public(address):
    assert is_public(address)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://localhost/hook", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/",
                                 "http://0.0.0.0:5432/", "http://2130706433/", "https://[fd00::1]/x"])
def test_a_url_on_an_internal_address_is_refused_unless_private_targets_are_allowed(url):
    assert "internal address" in url_problem(url, allow_private=False)
    assert url_problem(url, allow_private=True) is None


class Redirecting(BaseHTTPRequestHandler):
    """Answers everything with a redirect to `Redirecting.to`; counts what it was asked."""

    to = ""
    asked: list[str] = []

    def do_PROPFIND(self):
        self.asked.append(self.path)
        self.send_response(301)
        self.send_header("Location", self.to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_REPORT = do_PROPFIND

    def log_message(self, *args):
        pass


def serve(host: str) -> HTTPServer:
    server = HTTPServer((host, 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_caldav_redirect_to_an_internal_address_is_not_followed(monkeypatch):
    """127.0.0.1 stands in for a public server here; 127.0.0.2 for the internal one it redirects to."""
    monkeypatch.setattr(outbound, "is_public", lambda address: address == "127.0.0.1")
    public, internal = serve("127.0.0.1"), serve("127.0.0.2")
    Redirecting.asked = []
    Redirecting.to = f"http://127.0.0.2:{internal.server_port}/secret/"
    try:
        with CalDavReader(f"http://127.0.0.1:{public.server_port}/cal/") as reader, pytest.raises(Exception) as failed:
            reader.state()
    finally:
        public.shutdown(), internal.shutdown()

    assert Redirecting.asked == ["/cal/"]  # the public server was asked; the internal one never was
    assert "internal address" in str(failed.value)


def test_a_caldav_reader_refuses_a_name_that_resolves_to_loopback():
    with CalDavReader("http://localhost:9/cal/") as reader, pytest.raises(Exception) as failed:
        reader.state()
    assert "internal address" in str(failed.value)
    assert socket.getaddrinfo("localhost", 9)  # the name does resolve: it is the address that was refused
