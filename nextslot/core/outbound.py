"""Requests to URLs a business or a stranger gave us (webhook endpoints, CalDAV calendars, OAuth client metadata
documents) go to public addresses only: the one guard all three use.

Otherwise a business could make the server call what only the server can reach: the cloud metadata service
(169.254.169.254), the database, an admin port on loopback. Checked twice: when the URL is registered, and on
every connection, after DNS resolution and against the very address then connected to, so a name that
resolves to a public address at registration and to 127.0.0.1 later (DNS rebinding) is still refused. Each
hop of a redirect is a new connection, checked the same way (the webhook client follows none). Every spelling
counts: decimal, octal and hex IPv4, scoped IPv6 literals, and IPv6 forms that carry an IPv4 address (mapped,
compatible, NAT64, SIIT, 6to4, Teredo). `allow_private` (the `allow_private_targets`
setting) lifts the rule for self-hosted setups whose receivers live on the private network.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

AddrInfo = tuple[Any, ...]  # as socket.getaddrinfo returns them


class PrivateTarget(OSError):
    """The host is, or resolves to, an address this server must not call."""


# Ranges refused whatever the Python version's `is_global` says of them: internal, or carrying an address of
# another network inside (Teredo, the local-use NAT64 prefix, the deprecated IPv4-compatible and SIIT forms).
REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8"))
HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?", re.I)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: a public IPv4 address seen from IPv6 only


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 2002:AABB:CCDD::/48."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, unique-local,
    carrier-grade NAT, multicast, broadcast, unspecified (0.0.0.0, ::), reserved and documentation ranges, and
    for an IPv6 address wrapping any of those (mapped, NAT64, 6to4) or wrapping an address at all (Teredo,
    SIIT, IPv4-compatible). Anything that is not an IP address is not public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id (fe80::1%eth0) names no other address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
        ip = inner  # ::ffff:127.0.0.1 is loopback; 2002:7f00:1:: tunnels to it
    return ip.is_global and not ip.is_multicast and not any(ip in net for net in REFUSED)


def literal(host: str) -> str | None:
    """The host as an IP address if it is written as one ([fe80::1%25eth0] included), else None."""
    bare = unquote(host.strip("[]")).split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return None


def is_host_name(host: str) -> bool:
    """A DNS name a client can look up: labels of letters, digits, hyphens (underscores, as some services use),
    1-63 characters each and 253 in all once international labels are IDNA-encoded."""
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_name.rstrip(".")) <= 253 and HOST_NAME.fullmatch(ascii_name) is not None


def public_addresses(host: str, port: int | None, records: Iterable[AddrInfo]) -> list[AddrInfo]:
    """The records, all checked; PrivateTarget if any is not public (one bad answer taints the name)."""
    records = list(records)
    for *_, sockaddr in records:
        if not is_public(str(sockaddr[0])):
            raise PrivateTarget(f"{host} resolves to {sockaddr[0]}, an internal address this server does not call")
    if not records:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} did not resolve")
    return records


def resolve(host: str, port: int | None) -> list[AddrInfo]:
    """Every address the name has now, all public, or PrivateTarget (an unknown name is socket.gaierror).
    An address written as one is checked as written, zone id and all, before anything is asked of DNS."""
    if (written := literal(host)) is not None and not is_public(written):
        raise PrivateTarget(f"{host} is an internal address this server does not call")
    return public_addresses(host, port, socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM))


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why this URL may not be registered as a target, or None. A name that does not resolve yet passes (it is
    checked again on every connection); one that resolves to an internal address does not."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # "http://[/", a port out of range: not a URL any client could call
        return f"'{url}' is not an http(s) URL."
    if parts.scheme not in ("http", "https") or not host:
        return f"'{url}' is not an http(s) URL."
    bracketed = "[" in parts.netloc  # only an IPv6 address goes in brackets ([v1.x] is no host we can call)
    if literal(host) is None and (bracketed or not is_host_name(host)):
        return f"'{url}' does not name a host (letters, digits, hyphens and dots, or an IP address)."
    if allow_private:
        return None
    try:
        resolve(host, port or (443 if parts.scheme == "https" else 80))
    except PrivateTarget:
        return (f"'{url}' points to an internal address (loopback, private, link-local or the like); "
                "this server only calls public addresses.")
    except (OSError, UnicodeError, ValueError):
        return None
    return None
