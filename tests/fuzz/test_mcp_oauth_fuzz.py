"""The public MCP endpoint and the OAuth authorization server with generated requests: JSON-RPC tool calls to
/b/{slug}/mcp with hostile arguments and proofs (a real one among them, and another business's slug); /register
with hostile client metadata, /authorize's query, /token's and /revoke's forms, /oauth/connect and the consent
POST of a signed-in owner with a real pending request among hostile ones. No 5xx, no internal text, a refused
request writes nothing, and no tool answers internal_error."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from nextslot.oauth.tables import OAuthClient, OAuthCode, OAuthGrant, OAuthToken
from nextslot.server.app import create_app
from nextslot.server.public_mcp import SPECS
from nextslot.settings import Settings
from nextslot.storage.tables import Notification
from tests.fuzz.channels import checked, rows, sendable, text_of, unlimited
from tests.fuzz.hostile import arguments, assert_whole, examples, json_text, scalars, values
from tests.fuzz.test_http_fuzz import slug_of
from tests.oauth.conftest import CALLBACK, PASSWORD, csrf_of
from tests.oauth.test_refusals import pkce
from tests.server.test_public_mcp import RPC_HEADERS

BASE = "http://127.0.0.1:8000"
OAUTH = (OAuthClient, OAuthGrant, OAuthCode, OAuthToken)


def all_rows(session_factory) -> dict[str, int]:
    with session_factory() as s:
        return {**rows(session_factory),
                **{t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in OAUTH}}


def rpc(name: str, args: dict) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}}


def a_proof(http: TestClient, session_factory, slug: str, business_id: int, contact: str) -> str:
    sent = http.post(f"/b/{slug}/mcp", json=rpc("request_code", {"contact": contact}), headers=RPC_HEADERS).json()
    challenge = re.search(r'"challenge":\s*"([^"]+)"', sent["result"]["content"][0]["text"])[1]
    with session_factory() as s:
        text = s.scalars(select(Notification.payload).where(Notification.business_id == business_id)
                         .order_by(Notification.id.desc())).first()["text"]
    proved = http.post(f"/b/{slug}/mcp", json=rpc("verify_code", {"challenge": challenge,
                                                                   "code": re.search(r"\b(\d{6})\b", text)[1]}),
                       headers=RPC_HEADERS).json()
    return re.search(r'"proof":\s*"([^"]+)"', proved["result"]["content"][0]["text"])[1]


def test_generated_public_mcp_calls(service, make_business, session_factory):
    clinic, other = make_business("clinic"), make_business("clinic")
    slug, their_slug = slug_of(session_factory, clinic), slug_of(session_factory, other)
    calls = st.sampled_from(SPECS).flatmap(lambda spec: st.tuples(
        st.one_of(st.just(spec.name), scalars()), arguments(list(spec.input_model.model_fields))))
    app = create_app(Settings(secret_key="fuzz-tests"), service=service)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as http:
        unlimited(app)
        booked = http.post(f"/b/{slug}/mcp", headers=RPC_HEADERS, json=rpc("book_appointment", {
            "service": "consultation", "starts_at": "2026-11-24T10:00:00+00:00", "customer_name": "Ann Lee",
            "phone": "+447911123450"})).json()
        assert '"booked"' in json_text(booked), booked
        proofs = [a_proof(http, session_factory, slug, clinic, "+447911123450")]

        @given(call=calls, proof=st.one_of(st.sampled_from(proofs), scalars()), mine=st.integers(0, 5),
               as_text=st.booleans())
        @examples(150)
        def run(call, proof, mine, as_text):
            name, args = call
            if mine and "proof" not in args:
                args["proof"] = proof
            body = json_text(rpc(name, args))
            if not sendable({"b": body}):
                return
            before = all_rows(session_factory)
            answer = http.post(f"/b/{slug if mine else their_slug}/mcp", content=body.encode(), headers=RPC_HEADERS)
            checked(answer, before, all_rows(session_factory), body[:400])
            result = answer.json().get("result") if answer.status_code == 200 else None
            if result and result.get("isError"):
                text = result["content"][0]["text"]
                assert '"internal_error"' not in text, text
                assert all_rows(session_factory) == before or name in ("request_code", "verify_code"), text
        run()
    assert_whole(session_factory)


def registered(http: TestClient) -> dict:
    answer = http.post("/register", json={"client_name": "Fuzz", "redirect_uris": [CALLBACK],
                                          "token_endpoint_auth_method": "client_secret_post"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_generated_oauth_requests(service, make_business, session_factory):
    from nextslot.core.accounts.staff import create_account
    from nextslot.storage.uow import SqlAlchemyUnitOfWork

    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    create_account(SqlAlchemyUnitOfWork(session_factory), clinic, f"owner@{slug}.example", "Olu", "owner", PASSWORD)
    app = create_app(Settings(public_url=BASE, secret_key="fuzz-tests"), service=service)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False, follow_redirects=False) as http:
        unlimited(app)
        client = registered(http)
        verifier, challenge = pkce()
        good = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": CALLBACK,
                "code_challenge": challenge, "code_challenge_method": "S256", "state": "st",
                "resource": f"{BASE}/mcp"}
        pending = parse_qs(urlsplit(http.get("/authorize", params=good).headers["location"]).query)["request"][0]
        assert http.post(f"/console/{slug}/login", data={"email": f"owner@{slug}.example",
                                                         "password": PASSWORD}).status_code == 303
        csrf = csrf_of(http.get(f"/console/{slug}/connect", params={"request": pending}).text)
        fixed = {"client_id": client["client_id"], "client_secret": client["client_secret"], "request": pending,
                 "csrf": csrf, "redirect_uri": CALLBACK, "code_verifier": verifier, "resource": f"{BASE}/mcp"}
        forms = {
            "/token": ["grant_type", "code", "code_verifier", "redirect_uri", "client_id", "client_secret",
                       "resource", "refresh_token", "scope"],
            "/revoke": ["token", "token_type_hint", "client_id", "client_secret"],
            f"/console/{slug}/connect": ["csrf", "request", "decision", "scope:availability:read",
                                         "scope:bookings:write", "scope:staff"],
        }
        metadata = ["client_name", "redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method",
                    "scope", "client_uri", "logo_uri", "contacts", "software_id", "jwks"]

        @given(data=st.data(), which=st.sampled_from(["/register", "/authorize", "/oauth/connect", *forms]))
        @examples(200)
        def run(data, which):
            if which == "/register":
                body = data.draw(st.one_of(arguments(metadata), values()))
                if isinstance(body, dict) and data.draw(st.booleans()):
                    body = {"client_name": "Fuzz", "redirect_uris": [CALLBACK], **body}
                content = json_text(body)
                if not sendable({"b": content}):
                    return
                request = {"method": "POST", "url": "/register", "content": content.encode(),
                           "headers": {"content-type": "application/json"}}
            else:
                names = list(good) + ["business"] if which in ("/authorize", "/oauth/connect") else forms[which]
                fields = {k: text_of(v) for k, v in data.draw(arguments(names)).items()}
                for name in names:
                    if data.draw(st.integers(0, 2)) == 0 and name in {**good, **fixed}:
                        fields.setdefault(name, {**good, **fixed}[name])
                if not sendable(fields):
                    return
                get = which in ("/authorize", "/oauth/connect")
                request = {"method": "GET" if get else "POST", "url": which, **({"params": fields} if get else
                                                                                 {"data": fields})}
            before = all_rows(session_factory)
            answer = http.request(**request)
            checked(answer, before, all_rows(session_factory), f"{request}"[:500])
        run()
