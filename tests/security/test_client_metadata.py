"""OAuth clients described by a metadata document (fetched over real TLS from a loopback site) or registered
dynamically may declare only what this server serves: the code flow (grant types authorization_code and
refresh_token, response type code) and redirect URIs that are https, or http on loopback for a native app (RFC
8252). Anything else is refused with RFC 7591's error code and a sentence, never an exception."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings
from tests.oauth.test_client_documents import document, documents, site  # noqa: F401 - the TLS document site

pytestmark = pytest.mark.anyio

BAD_GRANTS = {
    "implicit": {"grant_types": ["implicit"], "response_types": ["token"]},
    "password": {"grant_types": ["authorization_code", "password"]},
    "client credentials": {"grant_types": ["authorization_code", "client_credentials"]},
    "jwt bearer": {"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]},
    "device code": {"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]},
    "refresh only": {"grant_types": ["refresh_token"]},
    "not a list": {"grant_types": "authorization_code"},
    "not strings": {"grant_types": [{"type": "authorization_code"}]},
    "token response": {"response_types": ["token"]},
    "hybrid response": {"response_types": ["code", "id_token"]},
    "no response type": {"response_types": []},
    "response type not a list": {"response_types": "code"},
}
BAD_REDIRECTS = ["http://evil.example/cb", "http://192.168.1.10/cb", "http://localhost.evil.example/cb",
                 "http://127.0.0.1.nip.io/cb", "ftp://example.com/cb", "javascript:alert(1)", "com.example.app:/cb",
                 "https:///cb", "//example.com/cb", "https://[::1/cb", "https://exa mple.com/cb",
                 "https://example.com:99999/cb", "https://user:pw@example.com/cb", "https://example.com/cb#x",
                 "https://example.com/cb\r\nLocation: https://evil.example", "", "not a uri",
                 "https://example.com/" + "a" * 3000]
GOOD_REDIRECTS = ["https://app.example/callback", "http://127.0.0.1:51234/callback", "http://[::1]:8080/cb",
                  "http://localhost:3000/cb", "http://127.0.0.1/cb"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("declared", BAD_GRANTS.values(), ids=BAD_GRANTS.keys())
async def test_a_document_declaring_a_grant_or_response_type_we_do_not_serve_is_refused(site, declared):  # noqa: F811
    url = site.serve("/client.json", document(site.url("/client.json"), **declared))
    fetched = await documents(site).client(url)
    assert fetched.client is None and fetched.error == "invalid_client_metadata", fetched
    assert "grant_types" in fetched.problem or "response_types" in fetched.problem


@pytest.mark.parametrize("uri", BAD_REDIRECTS)
async def test_a_document_with_an_unusable_redirect_uri_is_refused(site, uri):  # noqa: F811
    url = site.serve("/client.json", document(site.url("/client.json"), redirect_uris=["https://ok.example/cb", uri]))
    fetched = await documents(site).client(url)
    assert fetched.client is None and fetched.error == "invalid_redirect_uri", fetched
    assert fetched.problem.startswith(("A redirect URI", "Redirect URIs"))


@pytest.mark.parametrize("uri", GOOD_REDIRECTS)
async def test_https_and_loopback_redirect_uris_with_the_code_flow_are_accepted(site, uri):  # noqa: F811
    url = site.serve("/client.json", document(site.url("/client.json"), redirect_uris=[uri]))
    fetched = await documents(site).client(url)
    assert fetched.client is not None and fetched.problem is None and fetched.error is None
    minimal = document(site.url("/minimal.json"), redirect_uris=[uri])
    del minimal["grant_types"], minimal["response_types"]  # RFC 7591's defaults: the code flow
    assert (await documents(site).client(site.serve("/minimal.json", minimal))).client is not None


async def test_a_document_that_is_not_a_client_gets_a_structured_refusal(site):  # noqa: F811
    for path, body in {"/a.json": b"[]", "/b.json": b"\xff\xfe", "/c.json": b"[" * 4000, "/d.json": b"null",
                       "/e.json": json.dumps({**document(site.url("/e.json")), "redirect_uris": "https://x/cb"})
                       .encode()}.items():
        fetched = await documents(site).client(site.serve(path, body))
        assert fetched.client is None and fetched.problem and fetched.error in (
            "invalid_client_metadata", "invalid_redirect_uri"), path


def registration(**declared) -> dict:
    return {"client_name": "Registered", "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "none", **declared}


def test_dynamic_registration_refuses_the_same_with_rfc_7591_errors(service):
    app = create_app(Settings(secret_key="client-metadata-tests"), service=service)
    with TestClient(app) as http:
        for declared in ({"grant_types": ["authorization_code", "password"]},
                         {"grant_types": ["authorization_code", "client_credentials"]},
                         {"response_types": ["code", "token"]}):
            refused = http.post("/register", json=registration(**declared))
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata", refused.text
            assert refused.json()["error_description"]
        for uri in ("http://evil.example/cb", "com.example.app:/cb", "https://example.com/cb#x"):
            refused = http.post("/register", json=registration(redirect_uris=[uri]))
            assert refused.status_code == 400 and refused.json()["error"] in (
                "invalid_redirect_uri", "invalid_client_metadata"), refused.text
        made = http.post("/register", json=registration(redirect_uris=["http://127.0.0.1:4567/cb"]))
        assert made.status_code == 201, made.text
