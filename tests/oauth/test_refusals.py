"""What the authorization server and /mcp refuse: other businesses' data, expired, tampered and foreign-resource
tokens, PKCE and redirect URI mismatches, open redirects, replayed codes, scopes a token or a role lacks."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import update

from nextslot.core.accounts.api_keys import hash_key
from nextslot.oauth import scopes
from nextslot.oauth.tables import OAuthGrant, OAuthToken
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from tests.oauth.conftest import CALLBACK, Person, csrf_of, sign_in
from tests.oauth.test_flow import bearer

pytestmark = pytest.mark.anyio


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


async def register(http: httpx2.AsyncClient, base: str, **extra) -> dict:
    answer = await http.post(f"{base}/register", json={"client_name": "Probe", "redirect_uris": [CALLBACK], **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def authorize_url(base: str, client_id: str, challenge: str, **extra: str) -> str:
    return f"{base}/authorize?" + urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
                                            "code_challenge": challenge, "code_challenge_method": "S256",
                                            "state": "st", "resource": f"{base}/mcp", **extra})


async def approved(base: str, shop, email: str, scopes: list[str] | None = None) -> tuple[dict, str, str]:
    """A registered client, a code the person approved, and the PKCE verifier for it."""
    async with httpx2.AsyncClient() as http:
        client = await register(http, base)
    verifier, challenge = pkce()
    answer = await Person(base, shop, email, scopes).consent(authorize_url(base, client["client_id"], challenge))
    return client, answer["code"][0], verifier


async def redeem(base: str, client: dict, code: str, verifier: str, redirect_uri: str = CALLBACK) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{base}/token", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri,
            "client_id": client["client_id"], "client_secret": client["client_secret"], "resource": f"{base}/mcp"})


async def tool(base: str, token: str, name: str, **args) -> dict:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20)
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        result = await client.call_tool(name, args)
    data = json.loads(result.content[0].text)
    return {"is_error": result.is_error, **data}


async def test_a_read_only_token_lists_and_calls_only_the_reads(oauth_server, shop, api_key):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner, ["availability:read"])
        token = (await redeem(server.url, client, code, verifier)).json()
        assert token["scope"] == "availability:read"
        slots = await tool(server.url, token["access_token"], "find_available_slots", service="consultation")
        assert not slots["is_error"] and slots["slots"]
        for name, args in (("book_appointment", {"service": "consultation", "starts_at": slots["slots"][0]["starts_at"],
                                                 "customer_name": "Ann", "phone": "+447911123456"}),
                           ("cancel_appointment", {"code": "ABCDEF"})):
            refused = await tool(server.url, token["access_token"], name, **args)
            assert refused["is_error"] and refused["error"]["code"] == "insufficient_scope"
            assert "bookings:" in refused["error"]["message"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=20)
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
            listed = {t.name for t in (await client.list_tools()).tools}  # only what the token may call
            profile = await client.read_resource("nextslot://business/profile")  # reading needs availability:read
            prompt = (await client.get_prompt("receptionist")).messages[0].content.text
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {api_key(place.id)}"}, timeout=20))) as client:
            with_key = {t.name for t in (await client.list_tools()).tools}
    assert listed == {"list_services", "get_business_info", "find_available_slots"}
    assert with_key == set(scopes.TOOL_SCOPES)  # an API key: every tool
    assert json.loads(profile.contents[0].text)["timezone"] == "Europe/London"
    assert "find_available_slots" in prompt and "may not use hold_slot, book_appointment" in prompt
    assert "- Book with book_appointment" not in prompt


async def test_a_token_without_availability_read_may_not_read_the_business_resources(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner, ["bookings:manage"])
        token = (await redeem(server.url, client, code, verifier)).json()["access_token"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20)
        async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as mcp:
            with pytest.raises(MCPError) as refused:
                await mcp.read_resource("nextslot://business/services")
    assert refused.value.data == {"code": "insufficient_scope"} and "availability:read" in refused.value.message


async def test_a_token_of_one_business_never_reaches_another_businesss_bookings(oauth_server, shop, api_key):
    clinic, other = shop(), shop()
    with oauth_server() as server:
        other_key = api_key(other.id)
        slot = (await tool(server.url, other_key, "find_available_slots", service="consultation"))["slots"][0]
        booked = await tool(server.url, other_key, "book_appointment", service="consultation",
                            starts_at=slot["starts_at"], customer_name="Ann", phone="+447911123456")
        code_b = booked["appointment"]["code"]
        client, code, verifier = await approved(server.url, clinic, clinic.owner)
        token = (await redeem(server.url, client, code, verifier)).json()["access_token"]
        for name in ("find_appointments", "cancel_appointment"):
            refused = await tool(server.url, token, name, code=code_b)
            assert refused["is_error"] and refused["error"]["code"] == "unknown_booking"
        assert not (await tool(server.url, other_key, "find_appointments", code=code_b))["is_error"]
        # a session at one business is no session at another's consent page
        async with httpx2.AsyncClient() as http:
            await sign_in(http, server.url, clinic.slug, clinic.owner)
            elsewhere = await http.get(f"{server.url}/console/{other.slug}/connect?request=x")
            assert elsewhere.status_code == 303 and "/login" in elsewhere.headers["location"]


async def test_expired_tampered_and_foreign_resource_tokens_are_refused(oauth_server, shop, session_factory):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        tokens = (await redeem(server.url, client, code, verifier)).json()
        access = tokens["access_token"]
        assert (await bearer(server.url, access)).status_code == 200
        tampered = access[:-1] + ("A" if access[-1] != "A" else "B")
        assert (await bearer(server.url, tampered)).status_code == 401
        uow = SqlAlchemyUnitOfWork(session_factory)
        with uow:
            uow.session.execute(update(OAuthGrant).where(OAuthGrant.client_id == client["client_id"])
                                .values(resource="https://elsewhere.example/mcp"))
            uow.commit()
        assert (await bearer(server.url, access)).status_code == 401  # issued for another resource
        with uow:
            uow.session.execute(update(OAuthGrant).where(OAuthGrant.client_id == client["client_id"])
                                .values(resource=f"{server.url}/mcp"))
            uow.session.execute(update(OAuthToken).where(OAuthToken.token_hash == hash_key(access))
                                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            uow.commit()
        expired = await bearer(server.url, access)
        assert expired.status_code == 401 and "resource_metadata=" in expired.headers["www-authenticate"]
        assert access not in expired.text


async def test_pkce_and_redirect_uri_mismatches_and_replayed_codes_get_no_tokens(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.owner)
        wrong = await redeem(server.url, client, code, pkce()[0])
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        moved = await redeem(server.url, client, code, verifier, redirect_uri="http://127.0.0.1:9/elsewhere")
        assert moved.status_code == 400 and moved.json()["error"] == "invalid_request"
        first = await redeem(server.url, client, code, verifier)
        assert first.status_code == 200
        replay = await redeem(server.url, client, code, verifier)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        # a code presented twice may have leaked: what it bought is revoked
        assert (await bearer(server.url, first.json()["access_token"])).status_code == 401


async def test_unregistered_redirect_uris_are_never_redirected_to(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        for uri in ("javascript:alert(1)", "http://evil.example/cb", "https://user@evil.example/cb",
                    "https://ok.example/cb#frag"):
            refused = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [uri]})
            assert refused.status_code == 400, uri
            assert refused.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
        client = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK]}).json()
        for uri in ("https://evil.example/callback", CALLBACK + "/../../evil", "http://127.0.0.1:9/callback.evil"):
            answer = http.get(authorize_url(server.url, client["client_id"], pkce()[1], redirect_uri=uri))
            assert answer.status_code == 400 and "location" not in answer.headers, uri
        unknown = http.get(authorize_url(server.url, "no-such-client", pkce()[1]))
        assert unknown.status_code == 400 and "location" not in unknown.headers


async def test_a_native_apps_loopback_redirect_may_name_any_port_and_nothing_else_loosens(oauth_server, shop):
    place = shop()  # registered with http://127.0.0.1:9/callback; the app listens where its system let it (RFC 8252)
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            client = await register(http, server.url)
            for uri in ("http://localhost:5555/callback", "http://127.0.0.1:5555/callback/more",
                        "http://127.0.0.1:5555/callback?x=1", "https://127.0.0.1:5555/callback"):
                answer = await http.get(authorize_url(server.url, client["client_id"], pkce()[1], redirect_uri=uri))
                assert answer.status_code == 400 and "location" not in answer.headers, uri
        elsewhere = "http://127.0.0.1:5555/callback"

        async def code_for(verifier: str) -> str:
            url = authorize_url(server.url, client["client_id"], pkce_challenge(verifier), redirect_uri=elsewhere)
            return (await Person(server.url, place, place.owner).consent(url, callback=elsewhere))["code"][0]

        verifier = pkce()[0]
        assert (await redeem(server.url, client, await code_for(verifier), verifier, redirect_uri=elsewhere)).is_success
        verifier = pkce()[0]  # the token asked with the registered URI, not the one the code was sent to: refused
        assert (await redeem(server.url, client, await code_for(verifier), verifier)).status_code == 400


async def test_only_s256_pkce_challenges_are_accepted(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        client = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK]}).json()
        for extra in ({"code_challenge_method": "plain"}, {"code_challenge": ""}, {"code_challenge": "short"}):
            answer = http.get(authorize_url(server.url, client["client_id"], pkce()[1], **extra))
            assert answer.status_code == 302, extra  # the client and its redirect URI are known: told there
            assert "error=invalid_request" in answer.headers["location"] and "code=" not in answer.headers["location"]


async def test_a_token_for_another_resource_is_not_issued(oauth_server):
    with oauth_server() as server, httpx2.Client() as http:
        client = http.post(f"{server.url}/register", json={"client_name": "X", "redirect_uris": [CALLBACK]}).json()
        answer = http.get(authorize_url(server.url, client["client_id"], pkce()[1],
                                        resource="https://other.example/mcp"))
        assert answer.status_code == 302 and answer.headers["location"].startswith(CALLBACK)
        assert "error=invalid_target" in answer.headers["location"] and "code=" not in answer.headers["location"]


async def test_staff_may_not_grant_the_owner_only_scope_and_forms_need_their_csrf_token(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            client = await register(http, server.url)
            step = await http.get(authorize_url(server.url, client["client_id"], pkce()[1]))
            step = await http.get(step.headers["location"] + f"&business={place.slug}")
            consent = server.url + step.headers["location"]
            await sign_in(http, server.url, place.slug, place.staff)
            page = (await http.get(consent)).text
            assert 'name="scope:staff" value="1" disabled' in page and "only an owner can grant" in page
            request = page.split('name="request" value="')[1].split('"')[0]
            form = {"request": request, "decision": "approve", "scope:staff": "1", "scope:availability:read": "1"}
            refused = await http.post(f"{server.url}/console/{place.slug}/connect", data={**form, "csrf": csrf_of(page)})
            assert refused.status_code == 403 and "location" not in refused.headers
            forged = await http.post(f"{server.url}/console/{place.slug}/connect", data=form)
            assert forged.status_code == 403 and "location" not in forged.headers
            cross = await http.post(f"{server.url}/console/{place.slug}/connect", data={**form, "csrf": csrf_of(page)},
                                    headers={"Origin": "https://evil.example"})
            assert cross.status_code == 403
            bad = await http.get(f"{server.url}/oauth/connect?request=forged.request.value")
            assert bad.status_code == 400 and "expired" in bad.text


async def test_an_owner_sees_connected_apps_and_disconnecting_one_stops_its_token_at_once(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        client, code, verifier = await approved(server.url, place, place.staff, ["availability:read"])
        access = (await redeem(server.url, client, code, verifier)).json()["access_token"]
        assert (await bearer(server.url, access)).status_code == 200
        async with httpx2.AsyncClient() as http:
            await sign_in(http, server.url, place.slug, place.staff)
            listed = await http.get(f"{server.url}/console/{place.slug}/settings/apps")
            assert "Probe" in listed.text and "Dee Desk" in listed.text and "availability:read" in listed.text
            assert "Disconnect" not in listed.text  # staff may look, not disconnect
        async with httpx2.AsyncClient() as http:
            await sign_in(http, server.url, place.slug, place.owner)
            page = (await http.get(f"{server.url}/console/{place.slug}/settings/apps")).text
            [action] = re.findall(r'action="([^"]+/revoke)"', page)
            done = await http.post(server.url + action, data={"csrf": csrf_of(page)})
            assert done.status_code == 303
            assert (await bearer(server.url, access)).status_code == 401
            after = (await http.get(server.url + done.headers["location"])).text
            assert "Probe" not in after and "Disconnected" in after


async def test_an_address_may_register_twenty_clients_an_hour(oauth_server):
    with oauth_server() as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            answers = [await http.post(f"{server.url}/register", json={"client_name": f"Probe {n}",
                                                                        "redirect_uris": [CALLBACK]})
                       for n in range(21)]
    assert [a.status_code for a in answers] == [201] * 20 + [429]
    assert answers[-1].json()["error"] == "too_many_requests" and int(answers[-1].headers["retry-after"]) > 0


async def test_a_refresh_token_sent_twice_at_once_is_a_replay_too_and_ends_the_grant(oauth_server, shop):
    import asyncio

    place = shop()
    with oauth_server() as server:
        for _ in range(3):  # whichever of the two the database takes first
            client, code, verifier = await approved(server.url, place, place.owner)
            refresh_token = (await redeem(server.url, client, code, verifier)).json()["refresh_token"]
            form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client["client_id"],
                    "client_secret": client["client_secret"]}
            async with httpx2.AsyncClient() as http:
                answers = await asyncio.gather(*(http.post(f"{server.url}/token", data=form) for _ in range(2)))
            won = [a.json()["access_token"] for a in answers if a.status_code == 200]
            assert sorted(a.status_code for a in answers) in ([200, 400], [400, 400])
            for access_token in won:  # the pair the winner got goes with the grant
                assert (await bearer(server.url, access_token)).status_code == 401
