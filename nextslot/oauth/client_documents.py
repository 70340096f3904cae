"""Client ID metadata documents, as the MCP authorization specification describes them: a client that has not
registered uses an HTTPS URL as its client_id, and the JSON document at that URL is its registration
(client_id equal to the URL, redirect_uris, client_name). We fetch it when the client shows up.

Fetching a URL a stranger names is a server-side request forgery risk, so the fetch is fenced in: https only, the
default port or another public one, the host's every address public (no loopback, private, link-local, reserved
or multicast address; a host listed in NEXTSLOT_OAUTH_TRUSTED_CLIENT_HOSTS may resolve privately), and the
connection made to the address that was checked (the certificate still checked for the host name), so a DNS
answer that changes between check and connect cannot point it inward. No proxy from the environment, no
redirects, 5 seconds and 5 KB at most. Answers are cached (the document's max-age within one minute and one day;
a failure for a minute), so a client cannot make us fetch on every request.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from nextslot.core.outbound import is_public, literal  # the one guard webhooks and CalDAV use too
from nextslot.oauth.redirects import (  # the same rules as for registered clients
    GRANT_TYPES,
    RESPONSE_TYPES,
    grant_problem,
    metadata_problem,
    redirect_uri_problem,
)

log = logging.getLogger(__name__)

MAX_URL = 2048
MAX_BYTES = 5 * 1024
TIMEOUT = 5.0
MIN_TTL, DEFAULT_TTL, MAX_TTL, FAILURE_TTL = 60, 3600, 86400, 60
MAX_CACHED = 2000
MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.I)

Resolver = Callable[[str, int], Awaitable[list[str]]]


def is_document_id(client_id: str) -> bool:
    """Whether a client_id is a metadata document's URL: https, a host, a path other than "/", no fragment, no
    user name or password, no dot segments."""
    if len(client_id) > MAX_URL or not client_id.startswith("https://"):
        return False
    try:
        parts = urlsplit(client_id)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    segments = parts.path.split("/")
    return bool(parts.hostname) and parts.path not in ("", "/") and not parts.fragment and \
        parts.username is None and parts.password is None and "." not in segments and ".." not in segments


async def system_resolver(host: str, port: int) -> list[str]:
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class Fetched:
    client: OAuthClientInformationFull | None
    problem: str | None  # a sentence for the log and the people connecting the app
    until: float
    fresh: bool = True
    # RFC 7591's codes for what the document says (invalid_client_metadata, invalid_redirect_uri);
    # invalid_client when it could not be fetched at all
    error: str | None = None


class ClientDocuments:
    """Fetch, check and cache client ID metadata documents."""

    def __init__(self, trusted_hosts: Iterable[str] = (), resolver: Resolver = system_resolver,
                 verify: ssl.SSLContext | bool = True, timeout: float = TIMEOUT, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self._trusted = {h.lower() for h in trusted_hosts}
        self._resolve, self._verify, self._timeout, self._max_bytes = resolver, verify, timeout, max_bytes
        self._clock = clock
        self._cache: dict[str, Fetched] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def client(self, client_id: str) -> Fetched:
        """The client the document describes, or why not; from the cache while it is fresh."""
        now = self._clock()
        cached = self._cache.get(client_id)
        if cached is not None and cached.until > now:
            return Fetched(cached.client, cached.problem, cached.until, False, cached.error)
        lock = self._locks.setdefault(client_id, anyio.Lock())
        async with lock:  # one fetch per document at a time, however many requests wait for it
            cached = self._cache.get(client_id)
            if cached is not None and cached.until > self._clock():
                return Fetched(cached.client, cached.problem, cached.until, False, cached.error)
            try:
                with anyio.fail_after(self._timeout):
                    client, problem, ttl = await self._fetch(client_id)
            except TimeoutError:
                client, problem, ttl = None, "the client's metadata document took too long to fetch", FAILURE_TTL
            error = None if problem is None else problem.error if isinstance(problem, Problem) else "invalid_client"
            if problem:
                log.warning("client metadata document %s refused (%s): %s", client_id, error, problem)
            fetched = Fetched(client, str(problem) if problem else None, self._clock() + ttl, True, error)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()  # a flood of made-up ids: start over rather than grow
                self._locks = {client_id: lock}
            self._cache[client_id] = fetched
            return fetched

    async def _fetch(self, client_id: str) -> tuple[OAuthClientInformationFull | None, str | None, int]:
        def failed(problem: str) -> tuple[None, str, int]:  # a Problem from the document, else a fetch failure
            return None, problem, FAILURE_TTL

        if not is_document_id(client_id):
            return failed("the client_id is not an https URL with a path")
        parts = urlsplit(client_id)
        host, port = (parts.hostname or "").lower(), parts.port or 443
        trusted = host in self._trusted
        if not trusted and (written := literal(host)) is not None and not is_public(written):
            return failed("the client's host resolves to an address that is not public")
        try:
            addresses = await self._resolve(host, port)
        except OSError:
            return failed("the client's host name does not resolve")
        if not addresses:
            return failed("the client's host name does not resolve")
        if not trusted and not all(is_public(a) for a in addresses):
            return failed("the client's host resolves to an address that is not public")
        address = addresses[0]
        target = f"[{address}]" if ":" in address else address
        url = f"https://{target}:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": host if port == 443 else f"{host}:{port}", "Accept": "application/json"}
        try:
            async with httpx2.AsyncClient(verify=self._verify, trust_env=False, follow_redirects=False,
                                          timeout=self._timeout) as http:
                async with http.stream("GET", url, headers=headers, extensions={"sni_hostname": host}) as answer:
                    if answer.status_code != 200:
                        return failed(f"fetching the client's metadata document answered {answer.status_code}")
                    body = b""
                    async for chunk in answer.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            return failed(f"the client's metadata document is over {self._max_bytes} bytes")
                    cache_control = answer.headers.get("cache-control", "")
        except httpx2.HTTPError as exc:
            return failed(f"the client's metadata document could not be fetched ({type(exc).__name__})")
        client, problem = parse_document(client_id, body)
        if problem:
            return failed(problem)
        return client, None, ttl_of(cache_control)


def ttl_of(cache_control: str) -> int:
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return MIN_TTL
    found = MAX_AGE.search(cache_control)
    return min(MAX_TTL, max(MIN_TTL, int(found[1]))) if found else DEFAULT_TTL


class Problem(str):
    """What is wrong with a document, with its RFC 7591 error code."""

    error: str

    def __new__(cls, message: str, error: str = "invalid_client_metadata") -> Problem:
        made = super().__new__(cls, message)
        made.error = error
        return made


def parse_document(client_id: str, body: bytes) -> tuple[OAuthClientInformationFull | None, Problem | None]:
    """The client a document describes, checked as the specification asks: the same client_id, redirect URIs
    (https, or http on loopback for a native app), a public client (no secret: it could not be kept secret in a
    document anyone can read), and only the grant and response types this server has (the code flow)."""
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None, Problem("the client's metadata document is not JSON")
    if not isinstance(document, dict):
        return None, Problem("the client's metadata document is not a JSON object")
    if problem := metadata_problem(document):  # kept as a client row: NUL in its name was a 500 at /authorize
        return None, Problem(problem)
    if document.get("client_id") != client_id:
        return None, Problem("the client's metadata document names another client_id")
    if "client_secret" in document or "client_secret_expires_at" in document:
        return None, Problem("a client metadata document may not carry a client secret")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        return None, Problem(f"token_endpoint_auth_method {str(method)[:40]!r} is not supported here (only 'none')")
    if problem := grant_problem(document.get("grant_types", list(GRANT_TYPES)),
                                document.get("response_types", list(RESPONSE_TYPES))):
        return None, Problem(problem)
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not 1 <= len(uris) <= 10 or not all(isinstance(u, str) for u in uris):
        return None, Problem("the client's metadata document needs between one and ten redirect_uris",
                             "invalid_redirect_uri")
    for uri in uris:
        if problem := redirect_uri_problem(uri):
            return None, Problem(problem, "invalid_redirect_uri")
    try:
        client = OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none"})
    except ValidationError:
        return None, Problem("the client's metadata document has fields of the wrong type")
    return client, None
