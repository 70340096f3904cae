"""The mcp package's own OAuth client against a running server: discovery, registration, consent, tokens,
tool calls, refresh with rotation, revocation."""
from __future__ import annotations

import time

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.oauth.conftest import CALLBACK, MemoryStorage, Person, client_for

pytestmark = pytest.mark.anyio


async def call(base: str, auth: httpx2.Auth, tool: str, args: dict | None = None):
    async with httpx2.AsyncClient(auth=auth, timeout=20) as http:
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            return await client.call_tool(tool, args or {})


async def bearer(base: str, token: str, tool: str = "list_services") -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{base}/mcp", json=body, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25"})


async def test_an_assistant_discovers_registers_gets_consent_and_calls_tools(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        person, storage = Person(server.url, place, place.owner), MemoryStorage()
        result = await call(server.url, client_for(server.url, person, storage), "list_services")
        assert not result.is_error and result.structured_content["services"]
        assert "Test Assistant" in person.consent_page and "127.0.0.1:9" in person.consent_page
        assert "resource=" in person.authorize_url  # RFC 8707 indicator sent, and accepted for our /mcp
        assert storage.client.client_secret and storage.tokens.refresh_token
        assert set(storage.tokens.scope.split()) == {"availability:read", "bookings:write", "bookings:manage", "staff"}
        assert storage.tokens.expires_in == 3600
        # a second call reuses the token: no second consent
        person.authorize_url = None
        again = await call(server.url, client_for(server.url, person, storage), "get_business_info")
        assert not again.is_error and person.authorize_url is None


async def test_the_metadata_and_the_401_point_clients_to_the_authorization_server(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        refused = http.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401
        assert f'resource_metadata="{server.url}/.well-known/oauth-protected-resource/mcp"' in \
            refused.headers["www-authenticate"]
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            prm = http.get(server.url + path).json()
            assert prm["resource"] == f"{server.url}/mcp" and prm["authorization_servers"] == [server.url]
            assert "bookings:write" in prm["scopes_supported"]
        asm = http.get(f"{server.url}/.well-known/oauth-authorization-server").json()
        assert asm["issuer"] == server.url
        assert asm["code_challenge_methods_supported"] == ["S256"]
        assert asm["registration_endpoint"] == f"{server.url}/register"
        assert asm["revocation_endpoint"] == f"{server.url}/revoke"


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_grant(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        person, storage = Person(server.url, place, place.owner), MemoryStorage()
        auth = client_for(server.url, person, storage)
        assert not (await call(server.url, auth, "list_services")).is_error
        first = storage.tokens
        auth.context.token_expiry_time = time.time() - 1  # the client thinks it expired: it refreshes
        assert not (await call(server.url, auth, "list_services")).is_error
        second = storage.tokens
        assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
        async with httpx2.AsyncClient() as http:
            reused = await http.post(f"{server.url}/token", data={
                "grant_type": "refresh_token", "refresh_token": first.refresh_token,
                "client_id": storage.client.client_id, "client_secret": storage.client.client_secret})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        assert first.refresh_token not in reused.text
        # the reuse looks like theft: the newest tokens of that grant stop working too
        assert (await bearer(server.url, second.access_token)).status_code == 401


async def test_revocation_ends_the_access_and_refresh_tokens_at_once(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        person, storage = Person(server.url, place, place.owner), MemoryStorage()
        assert not (await call(server.url, client_for(server.url, person, storage), "list_services")).is_error
        tokens, client = storage.tokens, storage.client
        assert (await bearer(server.url, tokens.access_token)).status_code == 200
        async with httpx2.AsyncClient() as http:
            revoked = await http.post(f"{server.url}/revoke", data={
                "token": tokens.access_token, "client_id": client.client_id, "client_secret": client.client_secret})
            assert revoked.status_code == 200
            assert (await bearer(server.url, tokens.access_token)).status_code == 401
            refreshed = await http.post(f"{server.url}/token", data={
                "grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                "client_id": client.client_id, "client_secret": client.client_secret})
            assert refreshed.status_code == 400


async def test_a_person_who_denies_sends_the_app_access_denied_and_no_code(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        person = Person(server.url, place, place.owner, decision="deny")
        auth = client_for(server.url, person)
        async with httpx2.AsyncClient() as http:
            registered = await http.post(f"{server.url}/register", json={
                "client_name": "Denied", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
            client_id = registered.json()["client_id"]
            url = (f"{server.url}/authorize?response_type=code&client_id={client_id}&redirect_uri={CALLBACK}"
                   f"&code_challenge={'a' * 43}&code_challenge_method=S256&state=s1")
        answer = await person.consent(url)
        assert answer == {"error": ["access_denied"], "state": ["s1"]}
        assert auth.context.current_tokens is None
