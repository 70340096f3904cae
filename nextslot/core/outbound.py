"""Requests to URLs a business gave us (webhook endpoints, CalDAV calendars) go to public addresses only.

Otherwise a business could make the server call what only the server can reach: the cloud metadata service
(169.254.169.254), the database, an admin port on loopback. Checked twice: when the URL is registered, and on
every connection, after DNS resolution and against the very address then connected to, so a name that
resolves to a public address at registration and to 127.0.0.1 later (DNS rebinding) is still refused. Each
hop of a redirect is a new connection, checked the same way. `allow_private` (the `allow_private_targets`
setting) lifts the rule for self-hosted setups whose receivers live on the private network.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2
from niquests.packages.urllib3.contrib.resolver.system import SystemResolver

AddrInfo = tuple[Any, ...]  # as socket.getaddrinfo returns them


class PrivateTarget(OSError):
    """The host is, or resolves to, an address this server must not call."""


def is_public(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, unique-local,
    carrier-grade NAT, multicast, unspecified (0.0.0.0, ::), reserved and documentation ranges."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) names no other address
    if isinstance(ip, ipaddress.IPv6Address) and (mapped := ip.ipv4_mapped or ip.sixtofour):
        ip = mapped  # ::ffff:127.0.0.1 is loopback; 2002:7f00:1:: tunnels to it
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int | None, records: Iterable[AddrInfo]) -> list[AddrInfo]:
    """The records, all checked; PrivateTarget if any is not public (one bad answer taints the name)."""
    records = list(records)
    for *_, sockaddr in records:
        if not is_public(str(sockaddr[0])):
            raise PrivateTarget(f"{host} resolves to {sockaddr[0]}, an internal address this server does not call")
    if not records:
        raise PrivateTarget(f"{host} did not resolve")
    return records


def resolve(host: str, port: int | None) -> list[AddrInfo]:
    """Every address the name has now, all public, or PrivateTarget (an unknown name is socket.gaierror)."""
    return public_addresses(host, port, socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM))


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why this URL may not be registered as a target, or None. A name that does not resolve yet passes (it is
    checked again on every connection); one that resolves to an internal address does not."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme not in ("http", "https") or not host:
        return f"'{url}' is not an http(s) URL."
    if allow_private:
        return None
    try:
        resolve(host, port or (443 if parts.scheme == "https" else 80))
    except PrivateTarget:
        return (f"'{url}' points to an internal address (loopback, private, link-local or the like); "
                "this server only calls public addresses.")
    except (OSError, UnicodeError):
        return None
    return None


class PublicOnlyBackend(httpcore2.SyncBackend):
    """httpcore's network layer, resolving the name itself and connecting only to an address it checked;
    TLS (SNI and the certificate check) and the Host header still use the name, above this layer."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        try:
            records = resolve(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for *_, sockaddr in records:
            try:
                return super().connect_tcp(str(sockaddr[0]), port, timeout, local_address, socket_options)
            except httpcore2.ConnectError as exc:  # the next checked address, as create_connection would
                last = exc
        raise last or httpcore2.ConnectError(f"could not connect to {host}")


def http_client(allow_private: bool, timeout: float) -> httpx2.Client:
    """An HTTP client that calls public addresses only (unless allowed), and never follows redirects."""
    if allow_private:
        return httpx2.Client(timeout=timeout)
    transport = httpx2.HTTPTransport()
    # httpx takes no network backend of its own; its pool does, so the transport gets a pool built with ours
    transport._pool = httpcore2.ConnectionPool(ssl_context=httpx2.create_ssl_context(),
                                               network_backend=PublicOnlyBackend())
    return httpx2.Client(timeout=timeout, transport=transport, trust_env=False)


class PublicOnlyResolver(SystemResolver):  # type: ignore[misc]  # niquests ships no types for it
    """The resolver niquests (the CalDAV client's HTTP library) connects through: the same check, and the
    connection goes to the addresses returned here, so what was checked is what is called."""

    def getaddrinfo(self, host: Any, port: Any, family: Any, type: Any, proto: int = 0, flags: int = 0, *,
                    quic_upgrade_via_dns_rr: bool = False) -> list[AddrInfo]:
        name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        records = super().getaddrinfo(host, port, family, type, proto, flags,
                                      quic_upgrade_via_dns_rr=quic_upgrade_via_dns_rr)
        return public_addresses(name, port, records)
