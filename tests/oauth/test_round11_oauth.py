"""Round 11: outside agents connecting over OAuth, attacked with real clients (httpx2 against the running server):
redirect URIs that are almost the registered one, codes and refresh tokens presented by another client, scopes
widened on refresh, resource indicators for another audience at /token, a business's token on /v1, the metadata
the server publishes against what it enforces, and codes, tokens and secrets in the logs."""
from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import httpx2
import pytest

from nextslot.oauth.client_documents import parse_document
from tests.oauth.conftest import CALLBACK, sign_in
from tests.oauth.test_flow import bearer
from tests.oauth.test_refusals import approved, authorize_url, pkce, redeem, register

pytestmark = pytest.mark.anyio


async def refresh(base: str, client: dict, refresh_token: str, **extra: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{base}/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client["client_id"],
            "client_secret": client["client_secret"], **extra})


async def test_a_redirect_uri_almost_the_registered_one_is_never_redirected_to(oauth_server):
    near_misses = (
        CALLBACK + "/", "http://127.0.0.1:9/Callback", CALLBACK + "?next=https://evil.example", CALLBACK + "#x",
        CALLBACK + "%2F", "http://user@127.0.0.1:9/callback", "http://127.0.0.1:9@evil.example/callback",
        "http://evil.example/callback", "https://127.0.0.1:9/callback", "http://127.0.0.1.evil.example:9/callback",
        "http://[::ffff:127.0.0.1]:9/callback", "//evil.example/callback", "http://127.0.0.1:9/callback\x00",
        "http://127.0.0.1:9/callback/..", "http://127.0.0.1:9/callback%00", "HTTP://127.0.0.1:9/callback/",
    )
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            client = await register(http, server.url)
            for uri in near_misses:
                answer = await http.get(authorize_url(server.url, client["client_id"], pkce()[1], redirect_uri=uri))
                assert answer.status_code == 400, uri
                assert "location" not in answer.headers, uri


async def test_registration_refuses_redirect_uris_that_are_not_https_or_this_machine(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        for uri in ("http://localhost.evil.example/cb", "http://127.0.0.1.nip.io/cb", "http://[::ffff:7f00:1]/cb",
                    "http://10.0.0.1/cb", "http://169.254.169.254/cb", "data:text/html,<script>alert(1)</script>",
                    "file:///etc/passwd", "javascript://127.0.0.1/%0aalert(1)", "custom-scheme:/cb"):
            answer = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [uri]})
            assert answer.status_code == 400, (uri, answer.text)
            assert answer.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


async def test_a_code_or_refresh_token_presented_by_another_client_buys_nothing(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        async with httpx2.AsyncClient() as http:
            thief = await register(http, server.url)
        stolen = await redeem(server.url, thief, code, verifier)
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
        tokens = (await redeem(server.url, client, code, verifier)).json()
        assert "access_token" in tokens
        taken = await refresh(server.url, thief, tokens["refresh_token"])
        assert taken.status_code == 400 and taken.json()["error"] == "invalid_grant"
        assert "access_token" not in taken.json()
        # the thief's attempts took nothing from the app: its refresh still works
        assert (await refresh(server.url, client, tokens["refresh_token"])).status_code == 200


async def test_a_refresh_never_widens_the_scopes_of_the_token_it_replaces(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner, ["availability:read"])
        tokens = (await redeem(server.url, client, code, verifier)).json()
        wider = await refresh(server.url, client, tokens["refresh_token"], scope="availability:read bookings:write")
        assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
        unknown = await refresh(server.url, client, tokens["refresh_token"], scope="admin")
        assert unknown.status_code == 400 and "access_token" not in unknown.json()
        same = await refresh(server.url, client, tokens["refresh_token"], scope="availability:read")
        assert same.status_code == 200 and same.json()["scope"] == "availability:read"


async def test_a_token_is_not_issued_at_token_for_another_resource(oauth_server, shop):
    """RFC 8707 2.2: the resource named at /token must be one the server issues tokens for; a client misled into
    asking for https://evil.example/mcp must not get a token that our /mcp accepts (the evil server would replay
    it here)."""
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        async with httpx2.AsyncClient() as http:
            form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                    "redirect_uri": CALLBACK, "client_id": client["client_id"],
                    "client_secret": client["client_secret"]}
            foreign = await http.post(f"{server.url}/token", data={**form, "resource": "https://evil.example/mcp"})
            assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_target", foreign.text
            twice = await http.post(f"{server.url}/token", content=urlencode(
                {**form, "resource": [f"{server.url}/mcp", "https://evil.example/mcp"]}, doseq=True),
                headers={"Content-Type": "application/x-www-form-urlencoded"})  # RFC 8707 lets it repeat
            assert twice.status_code == 400 and twice.json()["error"] == "invalid_target", twice.text
            broken = await http.post(f"{server.url}/token", content=b"--x\r\nnot a part",
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
            assert 400 <= broken.status_code < 500
            tokens = (await http.post(f"{server.url}/token", data={**form, "resource": f"{server.url}/mcp"})).json()
        assert (await bearer(server.url, tokens["access_token"])).status_code == 200
        moved = await refresh(server.url, client, tokens["refresh_token"], resource="https://evil.example/mcp")
        assert moved.status_code == 400 and moved.json()["error"] == "invalid_target", moved.text
        # the refusal cost the app nothing: its refresh token still works for our /mcp
        assert (await refresh(server.url, client, tokens["refresh_token"], resource=f"{server.url}/mcp")).is_success


async def test_an_oauth_token_opens_neither_the_staff_api_nor_a_revoked_grant(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        tokens = (await redeem(server.url, client, code, verifier)).json()
        async with httpx2.AsyncClient(base_url=server.url) as http:
            for path in ("/v1/bookings", "/v1/config", "/v1/slots?service=consultation"):
                answer = await http.get(path, headers={"Authorization": f"Bearer {tokens['access_token']}"})
                assert answer.status_code == 401, (path, answer.status_code)
            # a token revoked by another client's credentials stays live; by its own, it ends
            other = await register(http, server.url)
            await http.post("/revoke", data={"token": tokens["access_token"], "client_id": other["client_id"],
                                             "client_secret": other["client_secret"]})
            assert (await bearer(server.url, tokens["access_token"])).status_code == 200
            await http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": client["client_id"],
                                             "client_secret": client["client_secret"]})
        assert (await bearer(server.url, tokens["access_token"])).status_code == 401
        assert (await refresh(server.url, client, tokens["refresh_token"])).status_code == 400


async def test_the_published_metadata_is_what_the_server_enforces(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        asm = http.get(f"{server.url}/.well-known/oauth-authorization-server").json()
        prm = http.get(f"{server.url}/.well-known/oauth-protected-resource/mcp").json()
        assert set(asm["scopes_supported"]) == set(prm["scopes_supported"])
        assert set(asm["grant_types_supported"]) == {"authorization_code", "refresh_token"}
        assert asm["response_types_supported"] == ["code"] and asm["code_challenge_methods_supported"] == ["S256"]
        for method in asm["token_endpoint_auth_methods_supported"]:
            answer = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK],
                                                               "token_endpoint_auth_method": method})
            assert answer.status_code == 201, (method, answer.text)
        for method in ("private_key_jwt", "tls_client_auth", "made_up"):
            answer = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK],
                                                               "token_endpoint_auth_method": method})
            assert answer.status_code == 400, (method, answer.text)
        for grant in (["authorization_code", "client_credentials"], ["implicit"], ["password"]):
            answer = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK],
                                                               "grant_types": grant})
            assert answer.status_code == 400, grant


async def test_a_client_name_with_markup_is_shown_as_text_and_the_consent_page_cannot_be_framed(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            client = await register(http, server.url, client_name='<img src=x onerror="alert(1)">Evil')
            step = await http.get(authorize_url(server.url, client["client_id"], pkce()[1]))
            step = await http.get(step.headers["location"] + f"&business={place.slug}")
            assert step.status_code == 303
            consent = server.url + step.headers["location"]
            await sign_in(http, server.url, place.slug, place.owner)
            page = await http.get(consent)
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "&lt;img" in page.text
    assert page.headers.get("x-frame-options") == "DENY" or "frame-ancestors 'none'" in page.headers.get(
        "content-security-policy", "")
    assert "no-store" in page.headers.get("cache-control", "")


async def test_no_code_token_or_client_secret_reaches_the_logs(oauth_server, shop, caplog):
    place = shop()
    caplog.set_level(logging.DEBUG)
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        tokens = (await redeem(server.url, client, code, verifier)).json()
        rotated = (await refresh(server.url, client, tokens["refresh_token"])).json()
        await bearer(server.url, rotated["access_token"])
        await redeem(server.url, client, code, verifier)  # replays: refused, and they end the grant
        await refresh(server.url, client, tokens["refresh_token"])
        await bearer(server.url, rotated["access_token"])
    client_side = ("httpcore", "httpx", "hpack", "mcp.client")  # the test's own HTTP client logs what it receives
    logged = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records
                       if not r.name.startswith(client_side))
    assert "POST /token" in logged  # the server's access log was captured
    for secret in (code, verifier, tokens["access_token"], tokens["refresh_token"], rotated["access_token"],
                   client["client_secret"]):
        assert secret not in logged


async def test_registration_metadata_the_database_cannot_keep_is_an_rfc_7591_error_not_a_500(oauth_server):
    """Before: a NUL in client_name or anywhere in the metadata (jwks, contacts) was a 500 (PostgreSQL refuses NUL
    in text and JSON), and a registration could store a megabyte of contacts in a row that stays."""
    with oauth_server() as server, httpx2.Client(base_url=server.url) as http:
        first = http.post("/register", json={"client_name": "X", "redirect_uris": [CALLBACK]}).json()
        for extra in ({"client_name": "Evil\x00Bot"}, {"jwks": {"keys": [{"kid": "\x00"}]}},
                      {"contacts": ["ops@app.example"] * 5000}, {"software_version": "1.0\x00"}):
            answer = http.post("/register", json={"client_name": "X", "redirect_uris": [CALLBACK], **extra})
            assert answer.status_code == 400, (str(extra)[:60], answer.status_code)
            assert answer.json()["error"] == "invalid_client_metadata"
        # an id the client names is not taken: the server names it
        again = http.post("/register", json={"client_name": "X", "redirect_uris": [CALLBACK],
                                             "client_id": first["client_id"]})
        assert again.status_code == 201 and again.json()["client_id"] != first["client_id"]


async def test_a_client_id_with_a_nul_is_an_unknown_client_at_token_and_revoke(oauth_server):
    """Before: /token with client_id "a\\x00" was a 500 (the lookup by id hit PostgreSQL's refusal of NUL)."""
    with oauth_server() as server, httpx2.Client(base_url=server.url) as http:
        for path, form in (("/token", {"grant_type": "refresh_token", "refresh_token": "nsr_x"}),
                           ("/revoke", {"token": "nso_x"})):
            answer = http.post(path, data={**form, "client_id": "a\x00b", "client_secret": "s"})
            assert answer.status_code in (400, 401), (path, answer.status_code)
            assert answer.json()["error"] in ("invalid_client", "unauthorized_client")


def test_a_metadata_document_with_a_nul_is_refused_before_it_is_kept():
    """Before: a document whose client_name held a NUL was taken, and keeping it as a client row was a 500."""
    url = "https://apps.client.test/client.json"
    for extra in ({"client_name": "Doc\x00Bot"}, {"logo_uri": "https://apps.client.test/\x00.png"}):
        body = json.dumps({"client_id": url, "client_name": "Doc", "redirect_uris": [CALLBACK], **extra}).encode()
        client, problem = parse_document(url, body)
        assert client is None and problem.error == "invalid_client_metadata" and "control character" in problem
