"""The HTTP channels with generated requests: the staff API (schemathesis cases from its OpenAPI, with hostile
values swapped into their bodies and queries), the booking and console forms, and the Vapi and Retell webhooks.
No answer is a 5xx or carries internal text, and a refused request writes nothing."""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from nextslot.core.accounts.staff import create_account
from nextslot.core.accounts.voice_secrets import set_secret
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Business
from nextslot.storage.uow import SqlAlchemyUnitOfWork
from nextslot.tools.registry import TOOLS
from tests.fuzz.hostile import arguments, assert_clean, assert_whole, counts, examples, json_text, scalars, values
from tests.server.test_voice_webhooks import retell_signature

CONFIG = {"generation": {"with-security-parameters": False}}


def checked(answer: Any, before: dict[str, int], after: dict[str, int], what: str, sent: Iterable[str] = ()) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:600]}"
    assert_clean(answer.text, sent)
    if answer.status_code >= 400:
        assert after == before, f"{what} was refused ({answer.status_code}) but wrote: {answer.text[:300]}"


def corrupt(value: Any, draw: Any) -> Any:
    """The value with some of its leaves (and now and then the whole of it) swapped for hostile ones."""
    if draw(st.integers(0, 5)) == 0:
        return draw(values())
    if isinstance(value, dict):
        return {k: corrupt(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [corrupt(v, draw) for v in value]
    return draw(scalars()) if draw(st.integers(0, 2)) == 0 else value


@pytest.fixture
def app(service):
    return create_app(Settings(secret_key="fuzz-tests"), service=service)


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as s:
        return s.get(Business, business_id).slug


def test_generated_staff_api_requests_with_hostile_values(app, make_business, api_key, session_factory):
    auth = {"Authorization": f"Bearer {api_key(make_business('clinic'))}"}
    schema = schemathesis.openapi.from_dict(app.openapi(), config=schemathesis.Config.from_dict(CONFIG))
    operations = [r.ok() for r in schema.include(path_regex="^/v1/").get_all_operations()]
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:

        @given(data=st.data(), operation=st.sampled_from(operations))
        @examples(200)
        def run(data, operation):
            case = data.draw(operation.as_strategy())
            if case.body is not None and not isinstance(case.body, bytes):
                case.body = corrupt(case.body, data.draw)
            if case.query:
                case.query = {k: form_text(corrupt(v, data.draw)) for k, v in case.query.items()}
            request = case.as_transport_kwargs(base_url=str(client.base_url), headers=auth)
            request.pop("cookies", None)
            if "json" in request:
                request["content"] = json_text(request.pop("json"))
                request["headers"]["content-type"] = "application/json"
            if "data" in request:
                request["content"] = request.pop("data")
            try:
                json.dumps(request, default=str, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                return  # a lone surrogate cannot be sent as UTF-8 at all
            before = counts(session_factory)
            answer = client.request(**request)
            checked(answer, before, counts(session_factory), f"{operation.label} {request}")

        run()
    assert_whole(session_factory)


BOOKING_FIELDS = ["customer.name", "customer.phone", "customer.email", "intake.vehicle", "intake.registration",
                  "intake.oil", "at", "alt", "key", "tz", "embed", "repeat", "repeat_count", "repeat_mode",
                  "party_size", "location"]
WAITLIST_FIELDS = ["customer.name", "customer.phone", "customer.email", "earliest_date", "latest_date", "day_start",
                   "day_end", "tz"]


def form_text(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value)


def test_generated_booking_page_and_console_posts(app, make_business, session_factory):
    garage = make_business("garage")
    slug = slug_of(session_factory, garage)
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    create_account(SqlAlchemyUnitOfWork(session_factory), garage, email, "Sam", "owner", "correct horse 1")
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as http:
        assert http.post(f"/console/{slug}/login", data={"email": email, "password": "correct horse 1"}
                         ).status_code == 303
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(f"/console/{slug}/book/oil-change/details"
                                                                   "?at=2026-11-24T15:00:00Z").text)[1]
        posts = [
            (f"/b/{slug}/oil-change/book", BOOKING_FIELDS, {"key": "k" * 20}),
            (f"/b/{slug}/oil-change/waitlist", WAITLIST_FIELDS, {}),
            (f"/console/{slug}/book/oil-change", BOOKING_FIELDS, {"csrf": csrf, "key": "k" * 20}),
            (f"/console/{slug}/settings/time-off", ["starts_at", "ends_at", "reason", "resource"], {"csrf": csrf}),
            (f"/console/{slug}/settings/reminders", ["offsets"], {"csrf": csrf}),
        ]
        gets = [(f"/console/{slug}", ["date", "view", "resource"]), (f"/console/{slug}/customers", ["q", "page"]),
                (f"/b/{slug}/oil-change", ["from", "tz", "embed"]), (f"/b/{slug}/oil-change/book", ["at", "tz"])]

        @given(data=st.data(), post=st.booleans())
        @examples(500)
        def run(data, post):
            path, names, fixed = data.draw(st.sampled_from(posts)) if post else (*data.draw(st.sampled_from(gets)), {})
            fields = {**{k: form_text(v) for k, v in data.draw(arguments(names)).items()}, **fixed}
            if any(re.search(r"[\ud800-\udfff]", f"{k}{v}") for k, v in fields.items()):
                return  # lone surrogates cannot be sent as UTF-8 at all
            before = counts(session_factory)
            answer = http.post(path, data=fields) if post else http.get(path, params=fields)
            checked(answer, before, counts(session_factory), f"{path} {fields}", map(str, fields.values()))

        run()
    assert_whole(session_factory)


def test_generated_vapi_and_retell_webhook_calls(app, make_business, session_factory):
    clinic = make_business("clinic")
    slug = slug_of(session_factory, clinic)
    for platform, secret in (("vapi", "vapi-secret"), ("retell", "retell-key")):
        set_secret(SqlAlchemyUnitOfWork(session_factory), clinic, platform, secret)
    calls = st.sampled_from(sorted(TOOLS)).flatmap(lambda name: st.tuples(
        st.one_of(st.just(name), scalars()), arguments(list(TOOLS[name].input_model.model_fields))))
    with TestClient(app, raise_server_exceptions=False) as http:

        @given(call=calls, call_id=scalars(), number=scalars(), as_text=st.booleans(), retell=st.booleans())
        @examples(500)
        def run(call, call_id, number, as_text, retell):
            name, args = call
            if retell:
                payload = {"name": name, "args": args, "call": {"call_id": call_id, "from_number": number}}
            else:
                payload = {"message": {"type": "tool-calls", "call": {"customer": {"number": number}}, "toolCallList": [
                    {"id": call_id, "name": name, "arguments": json_text(args) if as_text else args}]}}
            body = json_text(payload).encode()
            headers = {"content-type": "application/json"}
            if retell:
                headers["x-retell-signature"] = retell_signature(body, "retell-key")
            else:
                headers["x-vapi-secret"] = "vapi-secret"
            before = counts(session_factory)
            answer = http.post(f"/webhooks/{'retell' if retell else 'vapi'}/{slug}", content=body, headers=headers)
            checked(answer, before, counts(session_factory), body.decode()[:300])
            if answer.status_code == 200 and answer.content:
                replies = [answer.json()] if retell else [json.loads(r.get("result") or r["error"])
                                                         for r in answer.json()["results"]]
                for reply in replies:
                    assert reply.get("error", {}).get("code") != "internal_error", reply

        run()
    assert_whole(session_factory)
