"""Which business an app's approval goes to is the person's choice alone: a link or form from another site may not
make it, now or for the next app. The business last approved for is remembered by the approval itself (the console's
same-origin POST with its CSRF token), in a cookie we sign; one named by another site is shown to confirm, not
followed. A live server, the browser's side over HTTP with its cookies."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx2
import pytest

from nextslot.oauth.consent import REMEMBER
from tests.oauth.conftest import CALLBACK, csrf_of, sign_in
from tests.oauth.test_refusals import authorize_url, pkce, register

pytestmark = pytest.mark.anyio
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}  # what a browser sends for a link in
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}  # another site, and for our own form


async def connect_url(http: httpx2.AsyncClient, base: str) -> str:
    """A fresh app's /authorize, followed to our /oauth/connect?request=R (as the app's redirect would be)."""
    client = await register(http, base)
    step = await http.get(authorize_url(base, client["client_id"], pkce()[1]))
    assert step.status_code == 302 and step.headers["location"].startswith(f"{base}/oauth/connect?"), step.text
    return step.headers["location"]


async def approve(http: httpx2.AsyncClient, base: str, slug: str, consent_path: str) -> httpx2.Response:
    page = await http.get(base + consent_path)
    assert page.status_code == 200, page.text
    request = re.search(r'name="request" value="([^"]+)"', page.text).group(1)
    return await http.post(f"{base}/console/{slug}/connect", headers={"Origin": base}, data={
        "csrf": csrf_of(page.text), "request": request, "decision": "approve", "scope:availability:read": "1"})


async def test_a_link_from_another_site_naming_a_business_is_shown_to_confirm_and_never_remembered(
        oauth_server, shop):
    theirs, mine = shop(), shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            lured = await http.get(await connect_url(http, server.url) + f"&business={theirs.slug}",
                                   headers=CROSS_SITE)
            assert lured.status_code == 200 and "location" not in lured.headers  # not sent on to their console
            assert f'value="{theirs.slug}"' in lured.text and "Check it is the one you" in lured.text
            assert REMEMBER not in lured.headers.get("set-cookie", "") and REMEMBER not in http.cookies

            later = await http.get(await connect_url(http, server.url), headers=CROSS_SITE)  # the staff's own app
            assert later.status_code == 200 and "location" not in later.headers  # asked, not sent to theirs
            assert theirs.slug not in later.text and mine.slug not in later.text


async def test_a_business_typed_into_our_own_form_goes_to_its_consent_page_but_is_not_remembered_until_approved(
        oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            chosen = await http.get(await connect_url(http, server.url) + f"&business={place.slug}",
                                    headers=SAME_ORIGIN)
            assert chosen.status_code == 303 and chosen.headers["location"].startswith(f"/console/{place.slug}/connect?")
            assert REMEMBER not in chosen.headers.get("set-cookie", "")
            again = await http.get(await connect_url(http, server.url), headers=CROSS_SITE)
            assert again.status_code == 200 and "location" not in again.headers  # nothing remembered yet

            await sign_in(http, server.url, place.slug, place.owner)
            done = await approve(http, server.url, place.slug, chosen.headers["location"])
            assert done.status_code == 303 and done.headers["location"].startswith(CALLBACK + "?code=")
            assert REMEMBER in done.headers.get("set-cookie", "")

            next_app = await http.get(await connect_url(http, server.url), headers=CROSS_SITE)
            assert next_app.status_code == 303  # the business approved for last time, straight to its consent page
            assert next_app.headers["location"].startswith(f"/console/{place.slug}/connect?")
            elsewhere = await http.get(await connect_url(http, server.url) + "&choose=1", headers=SAME_ORIGIN)
            assert elsewhere.status_code == 200 and "Which business?" in elsewhere.text  # "Choose another"


async def test_a_refused_or_forged_approval_remembers_nothing(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            chosen = await http.get(await connect_url(http, server.url) + f"&business={place.slug}")
            await sign_in(http, server.url, place.slug, place.owner)
            page = await http.get(server.url + chosen.headers["location"])
            request = re.search(r'name="request" value="([^"]+)"', page.text).group(1)
            form = {"request": request, "decision": "approve", "scope:availability:read": "1"}
            for headers, data in (({"Origin": "https://evil.example"}, {**form, "csrf": csrf_of(page.text)}),
                                  ({}, form)):  # another site's form; ours without its token
                refused = await http.post(f"{server.url}/console/{place.slug}/connect", headers=headers, data=data)
                assert refused.status_code == 403 and REMEMBER not in refused.headers.get("set-cookie", "")
            assert REMEMBER not in http.cookies


async def test_a_remembered_business_we_did_not_sign_is_ignored(oauth_server, shop):
    """A cookie planted by another response (a sibling subdomain's, or this one's before the fix: the bare slug)."""
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            url = await connect_url(http, server.url)
            for planted in (place.slug, f"{place.slug}.forged-signature"):
                answer = await http.get(url, headers={**CROSS_SITE, "Cookie": f"{REMEMBER}={planted}"})
                assert answer.status_code == 200 and "location" not in answer.headers, planted


async def test_a_chooser_link_with_the_request_of_our_consent_page_asks_again(oauth_server, shop):
    place = shop()
    with oauth_server() as server:
        async with httpx2.AsyncClient() as http:
            url = await connect_url(http, server.url)
            consent = (await http.get(url + f"&business={place.slug}")).headers["location"]
            await sign_in(http, server.url, place.slug, place.owner)
            page = (await http.get(server.url + consent)).text
            request = re.search(r'name="request" value="([^"]+)"', page).group(1)
            assert f'href="/oauth/connect?{urlencode({"request": request})}&amp;choose=1"' in page
