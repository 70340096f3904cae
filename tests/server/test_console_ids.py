"""Ids in console URLs that no row can have (past PostgreSQL's bigint, not a number at all) answer exactly as an id
that does not exist: the console's "Not found" page, never a 500 from the database's refusal nor FastAPI's JSON
with the validator's text."""
from __future__ import annotations

import pytest

from nextslot.schemas.inputs import BIGINT
from nextslot.server.console.refusals import past_bigint
from nextslot.server.console.session import id_in
from tests.server.test_console import clients, console, csrf_of  # noqa: F401 - fixtures

UNKNOWN = "424242"  # an id that could exist, but does not: what every impossible id must look like
IMPOSSIBLE = [str(BIGINT + 1), str(2**64), "9" * 30, "9" * 5000, "abc", "1e3", "²", "0"]
GETS = ["customers/{id}", "customers/{id}/export", "inbox/{id}"]
POSTS = ["customers/{id}/erase", "inbox/{id}/reply", "inbox/{id}/hand-back", "calendars/{id}/disconnect",
         "settings/apps/{id}/revoke"]
FORM = {"confirm": "ERASE", "text": "Hello"}
LIBRARY_TEXT = ("pydantic", "Input should", "int_parsing", '"detail"', "bigint", "NumericValueOutOfRange", "SQL")


def answer(client, method: str, path: str, csrf: str):
    return client.get(path) if method == "GET" else client.post(path, data={"csrf": csrf, **FORM})


@pytest.mark.parametrize(("method", "route"), [*(("GET", r) for r in GETS), *(("POST", r) for r in POSTS)])
def test_an_id_no_row_can_have_answers_like_an_unknown_one(console, make_business, method, route):  # noqa: F811
    client, slug = console(make_business("clinic"))
    csrf = csrf_of(client.get(f"/console/{slug}/calendars").text)
    unknown = answer(client, method, f"/console/{slug}/{route.format(id=UNKNOWN)}", csrf)
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    for ident in IMPOSSIBLE:
        refused = answer(client, method, f"/console/{slug}/{route.format(id=ident)}", csrf)
        assert refused.status_code == 404, (ident, refused.status_code, refused.text[:300])
        assert refused.headers["content-type"].startswith("text/html") and "Not found" in refused.text
        assert not any(text in refused.text for text in LIBRARY_TEXT), (ident, refused.text[:300])


def test_without_a_session_an_impossible_id_still_asks_to_sign_in_first(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    client.cookies.clear()
    for route in GETS:
        page = client.get(f"/console/{slug}/{route.format(id=BIGINT + 1)}")
        assert page.status_code == 303 and f"/console/{slug}/login" in page.headers["location"]
    for route in POSTS:
        assert client.post(f"/console/{slug}/{route.format(id=BIGINT + 1)}", data=FORM).status_code == 401


def test_the_audit_log_pages_back_from_any_before_and_ignores_one_no_row_can_have(console, make_business):  # noqa: F811
    client, slug = console(make_business("clinic"))
    first = client.get(f"/console/{slug}/audit")
    assert first.status_code == 200
    for before in (str(BIGINT), str(BIGINT + 1), "9" * 5000, "²", "abc", "-1", "0"):
        page = client.get(f"/console/{slug}/audit", params={"before": before})
        assert page.status_code == 200, (before, page.status_code)


def test_what_counts_as_an_id():
    assert [id_in(t) for t in ("1", "0042", str(BIGINT), str(BIGINT + 1), "0", "-1", "²", "1e3", "", None,
                               "0" * 5000 + "7", "9" * 5000)] == [1, 42, BIGINT, None, None, None, None, None, None,
                                                                  None, 7, None]
    assert [past_bigint(v) for v in (str(BIGINT), str(BIGINT + 1), "-" + str(BIGINT + 1), "0" * 5000 + "1",
                                     "9" * 5000, "abc", BIGINT + 1, 5)] == [False, True, True, False, True, False,
                                                                             True, False]
