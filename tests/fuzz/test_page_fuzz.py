"""The booking page's chat and the manage link's pages with generated requests: hostile texts, names, phones,
contacts and codes with the visitor's own ticket (so they reach the conversation), forged tickets and other
businesses' slugs; manage tokens that are forged, cut short, for another purpose or another business, with
hostile times, keys and zones. No 5xx, no internal text, and a refused request writes nothing."""
from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from nextslot.conversations.web_chat import form_ticket
from nextslot.core.links import Links
from nextslot.server.app import create_app
from nextslot.settings import Settings
from tests.fuzz.channels import checked, rows, sendable, text_of, unlimited
from tests.fuzz.hostile import EDGE_TIMES, PHONES, arguments, assert_whole, examples, scalars
from tests.fuzz.test_http_fuzz import slug_of
from tests.server.test_booking_page import book_directly

SECRET = "fuzz-tests"
CHAT = {"": ["text", "name", "phone", "ticket"], "/code": ["contact", "ticket"], "/verify": ["code", "ticket"]}


def test_generated_chat_messages_codes_and_forged_tickets(service, make_business, session_factory):
    garage, other = make_business("garage"), make_business("garage")
    slugs = [slug_of(session_factory, garage), slug_of(session_factory, other)]
    book_directly(service, garage, "2026-11-24T15:00:00Z", "+12125550170")
    app = create_app(Settings(secret_key=SECRET), service=service)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as http:
        unlimited(app)
        assert http.get(f"/b/{slugs[0]}/chat").status_code == 200
        cookie = http.cookies.get("nextslot_chat")
        texts = {"text": st.sampled_from(["hi", "book an oil change", "1", "cancel", "person"]),
                 "name": st.sampled_from(["Ann Lee", ""]), "phone": st.one_of(PHONES, st.just("+12125550170")),
                 "contact": st.sampled_from(["+12125550170", "ann@example.com"]), "code": st.just("123456")}

        @given(data=st.data(), path=st.sampled_from(sorted(CHAT)), own=st.integers(0, 4), page=st.booleans())
        @examples(150)
        def run(data, path, own, page):
            slug = slugs[0] if own else data.draw(st.sampled_from([slugs[1], "no-such-business"]))
            if page:
                params = {k: text_of(v) for k, v in data.draw(arguments(["partial", "done", "tz", "lang"])).items()}
                if not sendable(params):
                    return
                before = rows(session_factory)
                answer = http.get(f"/b/{slug}/chat", params=params)
                checked(answer, before, rows(session_factory), f"chat page {slug} {params}")
                return
            fields = {k: text_of(v) for k, v in data.draw(arguments(CHAT[path])).items()}
            for name, values in texts.items():  # each field valid, hostile or as generated, a third each
                if name in CHAT[path] and (choice := data.draw(st.integers(0, 2))):
                    fields[name] = data.draw(values) if choice == 1 else text_of(data.draw(scalars()))
            fields["ticket"] = form_ticket(cookie) if own > 1 else text_of(data.draw(scalars()))
            if not sendable(fields):
                return
            before = rows(session_factory)
            answer = http.post(f"/b/{slug}/chat{path}", data=fields)
            checked(answer, before, rows(session_factory), f"chat{path} {slug} {fields}")
            if own <= 1:
                assert answer.status_code in (403, 404), answer.text[:300]

        run()


MANAGE_FIELDS = ["at", "key", "tz", "late_terms", "from", "done", "lang"]


def test_generated_manage_link_requests(service, make_business, session_factory):
    garage, other = make_business("garage"), make_business("garage")
    links = Links(SECRET, "http://testserver")
    mine = [book_directly(service, garage, f"2026-11-2{d}T1{h}:00:00Z", f"+121255501{d}{h}")
            for d in (4, 5) for h in (4, 6)]
    theirs = book_directly(service, other, "2026-11-24T15:00:00Z", "+12125550190")
    tokens = [*(links.token("manage", garage, b.code, b.starts_at.utc) for b in mine),
              links.token("manage", other, theirs.code, theirs.starts_at.utc),
              links.token("manage", garage, theirs.code, theirs.starts_at.utc),  # a real code, not its business
              links.token("pay", garage, mine[0].code, mine[0].starts_at.utc)]
    hostile_tokens = st.one_of(st.sampled_from(tokens), scalars().map(text_of),
                               st.sampled_from(tokens).map(lambda t: t[:-3] + "abc"),
                               st.sampled_from(tokens).map(lambda t: t[: len(t) // 2]))
    app = create_app(Settings(secret_key=SECRET), service=service)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as http:
        unlimited(app)

        @given(data=st.data(), route=st.sampled_from(["", "/move", "/move/confirm", "/cancel"]), post=st.booleans())
        @examples(150)
        def run(data, route, post):
            token = data.draw(hostile_tokens)
            fields = {k: text_of(v) for k, v in data.draw(arguments(MANAGE_FIELDS)).items()}
            if data.draw(st.booleans()):
                fields["at"] = data.draw(st.one_of(st.sampled_from(EDGE_TIMES), st.sampled_from(
                    ["2026-11-24T16:00:00Z", "2026-11-25T14:00:00Z"])))
            if data.draw(st.booleans()):
                fields["key"] = data.draw(st.sampled_from(["k" * 20, "k" * 5000, "short"]))
            if not sendable({**fields, "token": token}):
                return
            path = f"/m/{quote(token, safe='')}{route}"
            post = post and route in ("/move", "/cancel")
            before = rows(session_factory)
            answer = http.post(path, data=fields) if post else http.get(path, params=fields)
            checked(answer, before, rows(session_factory), f"{'POST' if post else 'GET'} {path} {fields}"[:500])

        run()
    assert_whole(session_factory)


def test_a_ticket_or_signature_with_non_ascii_characters_is_refused_not_a_500(service, make_business,
                                                                               session_factory):
    """Found by the fuzz run: comparing a posted chat ticket (or a Local-Signature's v1) holding a non-ASCII
    character raised TypeError in compare_digest: a 500."""
    slug = slug_of(session_factory, make_business("garage"))
    with TestClient(create_app(Settings(secret_key=SECRET), service=service), raise_server_exceptions=False) as http:
        http.get(f"/b/{slug}/chat")
        before = rows(session_factory)
        for path in ("", "/code", "/verify"):
            assert http.post(f"/b/{slug}/chat{path}", data={"ticket": "\x80", "text": "hi"}).status_code == 403
        forged = http.post("/webhooks/payments/local", content=b"{}", headers={"local-signature": "t=1,v1=\xe9".encode("latin-1")})
        assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_webhook"
        assert rows(session_factory) == before


def test_a_chat_message_or_name_with_a_nul_is_a_problem_shown_not_a_500(service, make_business, session_factory):
    """Found by the fuzz run: a NUL in the chat's text or name reached PostgreSQL: a 500."""
    slug = slug_of(session_factory, make_business("garage"))
    with TestClient(create_app(Settings(secret_key=SECRET), service=service), raise_server_exceptions=False) as http:
        http.get(f"/b/{slug}/chat")
        ticket = form_ticket(http.cookies.get("nextslot_chat"))
        before = rows(session_factory)
        for fields in ({"text": "hi\x00", "name": "Ann", "phone": "+12125550170"},
                       {"text": "hi", "name": "Ann\x00", "phone": "+12125550170"}):
            answer = http.post(f"/b/{slug}/chat", data={**fields, "ticket": ticket})
            assert answer.status_code == 422 and "control character" in answer.text
        assert rows(session_factory) == before
