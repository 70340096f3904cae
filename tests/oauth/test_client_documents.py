"""Client ID metadata documents: a client identified by the HTTPS URL of its metadata, fetched safely (public
addresses only, no redirects, size and time limits, cached), and the mcp package's own OAuth client connecting
with one end to end. The documents are served over real TLS on loopback, by a host name the test resolves."""
from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from nextslot.oauth.client_documents import ClientDocuments, is_document_id
from tests.oauth.conftest import CALLBACK, MemoryStorage, Person

pytestmark = pytest.mark.anyio
HOST = "apps.client.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for HOST: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, key, issuer_name, issuer_key, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = build("test CA", ca_key, ca_name, ca_key, True)
    leaf = build(HOST, key, ca_name, ca_key, False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class DocumentSite:
    """An HTTPS server answering each path from `answers` (status, headers, body, delay), counting requests."""

    port: int
    trust: ssl.SSLContext
    answers: dict[str, tuple[int, dict[str, str], bytes, float]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"https://{HOST}:{self.port}{path}"

    def serve(self, path: str, document: dict | bytes, status: int = 200, headers: dict[str, str] | None = None,
              delay: float = 0.0) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.answers[path] = (status, {"Content-Type": "application/json", **(headers or {})}, body, delay)
        return self.url(path)


@pytest.fixture
def site(tmp_path) -> Iterator[DocumentSite]:
    ca, cert, key = certificates(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            served.hits[self.path] = served.hits.get(self.path, 0) + 1
            status, headers, body, delay = served.answers.get(self.path, (404, {}, b"", 0.0))
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    served = DocumentSite(httpd.server_address[1], ssl.create_default_context(cafile=str(ca)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    thread.join(timeout=10)


def resolving(mapping: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError("no such host")
        return mapping[host]
    return resolve


def documents(site: DocumentSite, **extra) -> ClientDocuments:
    """Documents from the test site: HOST resolves to loopback, which only a trusted host may."""
    return ClientDocuments(trusted_hosts=[HOST], resolver=resolving({HOST: ["127.0.0.1"]}), verify=site.trust,
                           **extra)


def document(url: str, **extra) -> dict:
    return {"client_id": url, "client_name": "Doc Assistant", "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", **extra}


def test_only_https_urls_with_a_path_are_document_ids():
    assert is_document_id("https://claude.ai/oauth/mcp-client.json")
    for other in ("3f2a9c", "http://app.example/client.json", "https://app.example", "https://app.example/",
                  "https://user:pw@app.example/c.json", "https://app.example/c.json#x", "https://app.example/a/../c",
                  "https://app.example:99999/c.json", "https://app.example/" + "x" * 2100):
        assert not is_document_id(other), other


async def test_a_document_is_fetched_checked_and_cached(site):
    url = site.serve("/client.json", document(site.url("/client.json")), headers={"Cache-Control": "max-age=600"})
    docs = documents(site)
    first = await docs.client(url)
    assert first.client is not None and first.fresh and first.client.client_name == "Doc Assistant"
    assert first.client.token_endpoint_auth_method == "none" and [str(u) for u in first.client.redirect_uris] == \
        [CALLBACK]
    again = await docs.client(url)
    assert again.client == first.client and not again.fresh and site.hits["/client.json"] == 1


async def test_documents_that_do_not_describe_a_safe_public_client_are_refused(site):
    cases = {
        "/other-id.json": document("https://elsewhere.test/client.json"),
        "/secret.json": None,  # filled below: needs its own URL
        "/jwt.json": None,
        "/redirect-http.json": None,
        "/no-redirects.json": None,
        "/list.json": [1, 2],
    }
    for path in cases:
        url = site.url(path)
        cases[path] = {"/secret.json": document(url, client_secret="s3cret"),
                       "/jwt.json": document(url, token_endpoint_auth_method="private_key_jwt"),
                       "/redirect-http.json": document(url, redirect_uris=["http://evil.example/cb"]),
                       "/no-redirects.json": document(url, redirect_uris=[])}.get(path, cases[path])
        site.serve(path, json.dumps(cases[path]).encode())
    site.serve("/huge.json", json.dumps(document(site.url("/huge.json"), client_name="x" * 6000)).encode())
    site.serve("/moved.json", b"", status=302, headers={"Location": site.url("/client.json")})
    site.serve("/broken.json", b"{not json")
    docs = documents(site)
    for path in [*cases, "/huge.json", "/moved.json", "/broken.json", "/missing.json"]:
        fetched = await docs.client(site.url(path))
        assert fetched.client is None and fetched.problem, path


async def test_a_slow_document_is_given_up_on_within_the_time_limit(site):
    url = site.serve("/slow.json", document(site.url("/slow.json")), delay=3)
    started = time.monotonic()
    fetched = await documents(site, timeout=0.5).client(url)
    assert fetched.client is None and "too long" in fetched.problem and time.monotonic() - started < 2.5


async def test_no_document_is_fetched_from_an_address_that_is_not_public(site):
    url = site.serve("/client.json", document(site.url("/client.json")))
    for addresses in (["127.0.0.1"], ["10.0.0.7"], ["169.254.169.254"], ["93.184.215.14", "192.168.1.1"], ["::1"],
                      ["::ffff:127.0.0.1"], ["fd00::1"], ["0.0.0.0"]):
        docs = ClientDocuments(resolver=resolving({HOST: addresses}), verify=site.trust)  # HOST not trusted
        fetched = await docs.client(url)
        assert fetched.client is None and "not public" in fetched.problem, addresses
    for literal in (f"https://127.0.0.1:{site.port}/client.json", f"https://localhost:{site.port}/client.json",
                    f"https://[::1]:{site.port}/client.json"):
        fetched = await ClientDocuments(verify=site.trust).client(literal)  # the system's resolver
        assert fetched.client is None and "not public" in fetched.problem, literal
    assert site.hits.get("/client.json") is None  # nothing ever reached the server


async def test_an_assistant_connects_with_a_client_id_metadata_document_instead_of_registering(
        oauth_server, shop, site):
    place = shop()
    with oauth_server() as server:
        app = server.server.config.app
        app.state.oauth.documents = documents(site)
        url = site.serve("/nextslot-client.json", document(site.url("/nextslot-client.json")))
        asm = httpx2.get(f"{server.url}/.well-known/oauth-authorization-server").json()
        assert asm["client_id_metadata_document_supported"] is True and "none" in \
            asm["token_endpoint_auth_methods_supported"]
        person, storage = Person(server.url, place, place.owner), MemoryStorage()
        metadata = OAuthClientMetadata(client_name="Doc Assistant", redirect_uris=[AnyUrl(CALLBACK)],
                                       grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                       token_endpoint_auth_method="none")
        auth = OAuthClientProvider(server_url=f"{server.url}/mcp", client_metadata=metadata, storage=storage,
                                   redirect_handler=person.redirect_handler, callback_handler=person.callback_handler,
                                   client_metadata_url=url)
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
                result = await client.call_tool("list_services", {})
        apps = httpx2.Client(base_url=server.url)
        registered = apps.post("/register", json={"client_name": "x", "redirect_uris": [CALLBACK]})
    assert not result.is_error and result.structured_content["services"]
    assert f"client_id={url.replace(':', '%3A').replace('/', '%2F')}" in person.authorize_url
    assert storage.client.client_id == url and not storage.client.client_secret
    assert "Doc Assistant" in person.consent_page and HOST in person.consent_page
    assert registered.status_code == 201  # dynamic registration still works beside documents
