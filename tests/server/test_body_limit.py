"""Request bodies are capped on every route and read as a stream: 413 as soon as the cap is passed, whatever
the Content-Length says; /v1 and /mcp check the API key before reading a byte of the body."""
from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nextslot.server.app import create_app
from nextslot.settings import Settings

LIMIT = 10_000
CHUNK = b"x" * 4096
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass
class Answer:
    status: int
    body: bytes
    chunks_read: int

    def json(self):
        return json.loads(self.body)


async def call(app: FastAPI, method: str, path: str, chunks: list[bytes], headers: dict[str, str]) -> Answer:
    """One request straight through the ASGI app, counting how many body chunks it asked for."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("testserver", 80), "client": ("203.0.113.9", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()]}
    read, sent = 0, []

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        await anyio.sleep_forever()  # the client sent everything; a disconnect never comes in this test

    async def send(message):
        sent.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return Answer(start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
                  read)


def run(app: FastAPI, *requests: tuple[str, str, list[bytes], dict[str, str]]) -> list[Answer]:
    """The requests one after another, in one run of the app's lifespan (which /mcp's session manager needs)."""
    async def all_of() -> list[Answer]:
        async with app.router.lifespan_context(app):
            return [await call(app, *request) for request in requests]

    return anyio.run(all_of)


@pytest.fixture
def app(service) -> FastAPI:
    # TestClient's Host is "testserver": allowed like a deployment's own name behind a proxy
    return create_app(Settings(secret_key="body-limit-tests", max_body_bytes=LIMIT, mcp_allowed_hosts=["testserver"]),
                      service=service)


@pytest.fixture
def clinic(make_business, service, api_key) -> tuple[str, str]:
    business = make_business("clinic")
    key = api_key(business)
    with TestClient(create_app(Settings(secret_key="body-limit-tests"), service=service)) as http:
        slug = http.get("/v1/config", headers={"Authorization": f"Bearer {key}"}).json()["business"]["slug"]
    return slug, key


def test_a_declared_length_over_the_limit_is_refused_before_any_of_the_body_is_read(app, clinic):
    slug, key = clinic
    [answer] = run(app, ("POST", "/v1/bookings", [CHUNK] * 100, {
        "authorization": f"Bearer {key}", "content-type": "application/json", "content-length": str(100 * len(CHUNK))}))

    assert answer.status == 413 and answer.chunks_read == 0
    assert answer.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("declared", [None, "100"], ids=["no content-length", "a lying content-length"])
def test_a_streamed_body_is_cut_off_at_the_first_chunk_past_the_limit_on_every_channel(app, clinic, declared):
    slug, key = clinic
    length = {"content-length": declared} if declared else {}
    form = {"content-type": "application/x-www-form-urlencoded", **length}
    channels = {
        "/v1/bookings": {"authorization": f"Bearer {key}", "content-type": "application/json", **length},
        "/mcp": {"authorization": f"Bearer {key}", **{k.lower(): v for k, v in MCP_HEADERS.items()}, **length},
        f"/b/{slug}/consultation/book": form,
        f"/console/{slug}/login": {**form, "origin": "http://testserver"},
        f"/webhooks/vapi/{slug}": {"content-type": "application/json", **length},
        "/webhooks/payments/local": {"content-type": "application/json", **length},
        f"/b/{slug}/mcp": {**{k.lower(): v for k, v in MCP_HEADERS.items()}, **length},  # a customer's assistant
    }
    answers = run(app, *(("POST", path, [CHUNK] * 1000, headers) for path, headers in channels.items()))
    for path, answer in zip(channels, answers, strict=True):
        assert answer.status == 413, (path, answer)
        assert answer.chunks_read == LIMIT // len(CHUNK) + 1, path  # not one chunk more than it takes
        error = answer.json()["error"]
        assert (error["data"]["code"] if path.endswith("/mcp") else error["code"]) == "body_too_large", path


def test_a_body_within_the_limit_still_works(app, clinic):
    slug, key = clinic
    body = json.dumps({"url": "https://hooks.example.com/in", "event_types": ["booking.created"]}).encode()
    [answer] = run(app, ("POST", "/v1/webhooks", [body[:10], body[10:]],
                         {"authorization": f"Bearer {key}", "content-type": "application/json"}))
    assert answer.status == 201, answer


def test_api_and_mcp_refuse_a_missing_or_wrong_key_without_reading_the_body(app, clinic):
    asked = [("PUT" if path == "/v1/config" else "POST", path, [b"{}"], {**headers, **auth})
             for path, headers in (("/v1/config", {"content-type": "application/json"}), ("/mcp", MCP_HEADERS))
             for auth in ({}, {"authorization": "Bearer nsk_not-a-key"})]
    for request, answer in zip(asked, run(app, *asked), strict=True):
        assert answer.status == 401 and answer.chunks_read == 0, (request, answer)


def test_lists_over_the_schema_limits_are_422_naming_the_field_not_an_outage(service, clinic):
    slug, key = clinic
    with TestClient(create_app(Settings(secret_key="body-limit-tests"), service=service),
                    headers={"Authorization": f"Bearer {key}"}) as http:
        booked = http.post("/v1/bookings", json={
            "service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00", "resources": ["dr-patel"] * 70_000,
            "customer": {"name": "Ann", "phone": "+447911123456"}})
        config = http.get("/v1/config").json()
        config["closures"] = [{"kind": "closed", "date": "2027-01-01"}] * 1001
        too_many_closures = http.put("/v1/config", json=config)
        long_service = http.get("/v1/slots", params={"service": "c" * 201})

    assert booked.status_code == 422 and booked.json()["error"]["field"] == "resources"
    assert too_many_closures.status_code == 422 and too_many_closures.json()["error"]["field"] == "closures"
    assert long_service.status_code == 422 and long_service.json()["error"]["field"] == "service"
