"""What /mcp (with an API key) and the public /b/{slug}/mcp answer to a request the MCP SDK's transport refuses as
sent: our own JSON-RPC error, never the SDK's pydantic validation report or its bare-text Content-Type refusal;
and valid traffic passes untouched."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.server.rpc_errors import INVALID_REQUEST, ONE_MESSAGE, PARSE_ERROR
from nextslot.settings import Settings
from nextslot.storage import queries

HOST = "http://127.0.0.1:8000"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
NOT_ONE_REQUEST = [b"[]", b"null", b"{}", b'"x"', b"NaN", b"1e400", b"-Infinity", b"7", b"true", b"[1,2]",
                   json.dumps([LIST, {**LIST, "id": 2}]).encode(),  # a batch
                   b'{"jsonrpc":"1.0","id":1,"method":"x"}',
                   b'{"jsonrpc":"2.0","id":1,"method":7}', b'{"id":1,"method":"tools/list"}']
NOT_JSON = [b"", b"{", b"\xff\xfe\x00", b"nul", b'{"jsonrpc":"2.0",}', b"[" * 5000]
LIBRARY_TEXT = ("pydantic", "validation error", "JSONRPCRequest", "input_value", "input_type", "union[", "line 1")


@pytest.fixture
def mcp(service, make_business, api_key, session_factory) -> Iterator[tuple[TestClient, dict[str, dict]]]:
    """The app, and each MCP endpoint with the headers it needs: {path: headers}."""
    clinic = make_business("clinic")
    with session_factory() as s:
        slug = queries.business(s, clinic).slug
    endpoints = {"/mcp": {"Authorization": f"Bearer {api_key(clinic)}"}, f"/b/{slug}/mcp": {}}
    app = create_app(Settings(secret_key="x", public_url=HOST), service=service)
    with TestClient(app, base_url=HOST, raise_server_exceptions=False) as http:
        yield http, endpoints


def ours(answer, status: int, code: int) -> dict:
    """The answer is our JSON-RPC error, with no library text in it."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body = answer.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == code, body
    assert not any(text.lower() in answer.text.lower() for text in LIBRARY_TEXT), answer.text
    return body["error"]


@pytest.mark.parametrize("public", [False, True], ids=["mcp", "public"])
@pytest.mark.parametrize("body", NOT_ONE_REQUEST, ids=lambda b: b[:24].decode())
def test_a_body_that_is_json_but_not_one_request_is_an_invalid_request(mcp, public, body):
    http, endpoints = mcp
    path, auth = list(endpoints.items())[public]
    error = ours(http.post(path, content=body, headers={**HEADERS, **auth}), 400, INVALID_REQUEST)
    assert error["message"] == ONE_MESSAGE and error["data"] == {"code": "invalid_request"}


@pytest.mark.parametrize("public", [False, True], ids=["mcp", "public"])
@pytest.mark.parametrize("body", NOT_JSON, ids=lambda b: repr(b[:12]))
def test_a_body_that_is_not_json_is_a_parse_error(mcp, public, body):
    http, endpoints = mcp
    path, auth = list(endpoints.items())[public]
    error = ours(http.post(path, content=body, headers={**HEADERS, **auth}), 400, PARSE_ERROR)
    assert error["data"] == {"code": "parse_error"}


@pytest.mark.parametrize("public", [False, True], ids=["mcp", "public"])
@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/json"])
def test_a_body_not_sent_as_json_is_refused_in_json_rpc(mcp, public, content_type):
    http, endpoints = mcp
    path, auth = list(endpoints.items())[public]
    for version in ({}, {"MCP-Protocol-Version": "2026-07-28"}):  # the SDK's legacy and modern paths alike
        answer = http.post(path, content=json.dumps(LIST).encode(),
                           headers={**HEADERS, **auth, **version, "Content-Type": content_type})
        error = ours(answer, 415, INVALID_REQUEST)
        assert error["data"] == {"code": "unsupported_media_type"} and "application/json" in error["message"]


@pytest.mark.parametrize("public", [False, True], ids=["mcp", "public"])
def test_a_wrong_accept_or_method_is_refused_in_json_rpc_keeping_allow(mcp, public):
    http, endpoints = mcp
    path, auth = list(endpoints.items())[public]
    error = ours(http.post(path, json=LIST, headers={**HEADERS, **auth, "Accept": "text/html"}), 406, INVALID_REQUEST)
    assert error["data"] == {"code": "not_acceptable"}
    # no stream is offered (stateless): a GET is a 405 whatever it accepts, and Allow names POST alone (round 11)
    get = http.get(path, headers={**auth, "Accept": "application/json"})
    assert ours(get, 405, INVALID_REQUEST)["data"] == {"code": "method_not_allowed"} and get.headers["allow"] == "POST"
    put = http.put(path, json=LIST, headers={**HEADERS, **auth})
    assert ours(put, 405, INVALID_REQUEST)["data"] == {"code": "method_not_allowed"}
    assert put.headers["allow"] == "POST"
    modern = http.get(path, headers={**HEADERS, **auth, "MCP-Protocol-Version": "2026-07-28"})
    assert ours(modern, 405, INVALID_REQUEST) and modern.headers["allow"] == "POST"  # the SDK's was an empty body


@pytest.mark.parametrize("public", [False, True], ids=["mcp", "public"])
def test_valid_traffic_and_errors_answering_a_request_pass_untouched(mcp, public):
    http, endpoints = mcp
    path, auth = list(endpoints.items())[public]
    headers = {**HEADERS, **auth}
    hello = http.post(path, headers=headers, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
    assert hello.status_code == 200 and hello.json()["result"]["serverInfo"]
    noted = http.post(path, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert noted.status_code == 202
    listed = http.post(path, headers=headers, json=LIST)
    assert listed.status_code == 200 and listed.json()["result"]["tools"]
    called = http.post(path, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                    "params": {"name": "list_services", "arguments": {}}})
    assert called.status_code == 200 and called.json()["id"] == 2 and "result" in called.json()
    unknown = http.post(path, headers=headers, json={"jsonrpc": "2.0", "id": 3, "method": "no/such"})
    assert unknown.json()["id"] == 3 and unknown.json()["error"]["code"] == -32601  # the SDK's, for request 3
    modern = http.post(path, headers={**headers, "MCP-Protocol-Version": "2026-07-28"}, json={**LIST, "id": 4})
    assert modern.status_code == 400 and modern.json()["id"] == 4  # answers request 4 by its id: as the SDK said


def test_the_bearer_challenge_is_left_for_oauth_clients(mcp):
    http, _ = mcp
    for body in (b"[]", json.dumps(LIST).encode()):
        refused = http.post("/mcp", content=body, headers={**HEADERS, "Content-Type": "text/plain"})
        assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]
        assert refused.json()["error"] == "invalid_token"
