"""Taking the page elsewhere (embed script, QR codes, share page) and the per-client rate limit."""
from __future__ import annotations

from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.server.test_booking_page import settings, slug_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def garage(make_business):
    return make_business("garage")


def test_the_embed_script_and_the_qr_codes_are_served(live_server, service, garage):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        script = http.get("/embed.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "nextslot:height" in script.text and 'createElement("iframe")' in script.text
        assert "?embed=1" in script.text

        svg = http.get(f"/b/{slug}/qr.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert svg.text.startswith("<svg") and "book with Northside Garage" in svg.text
        png = http.get(f"/b/{slug}/qr.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG_SIGNATURE)
        assert http.get(f"/b/{slug}/qr.gif").status_code == 404

        css = http.get("/static/page/page.css", params={"v": "stale"})
        assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=300"
        assert http.get("/static/page/secrets.txt").status_code == 404


def test_the_share_page_has_the_short_link_the_qr_code_whatsapp_and_the_embed_snippets(
        live_server, service, garage):
    slug = slug_of(service, garage)
    url = f"https://book.example.com/b/{slug}"
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        page = http.get(f"/b/{slug}/share")
    assert page.status_code == 200
    assert f'<a href="{url}">{url}</a>' in page.text
    assert f'src="/b/{slug}/qr.svg"' in page.text and f'href="/b/{slug}/qr.png" download' in page.text
    assert "https://wa.me/?text=" + quote(f"Book with Northside Garage: {url}") in page.text
    assert f"&lt;script src=&#34;https://book.example.com/embed.js&#34; data-business=&#34;{slug}&#34;" in page.text
    assert f"&lt;iframe src=&#34;{url}?embed=1&#34;" in page.text


def test_a_client_that_sends_too_many_requests_gets_429_with_retry_after(live_server, service, garage):
    slug = slug_of(service, garage)
    with live_server(frozen=True, settings=settings()) as server, httpx.Client(base_url=server.url) as http:
        answers = [http.get(f"/b/{slug}").status_code for _ in range(70)]
        assert answers[:60] == [200] * 60 and 429 in answers[60:]
        limited = http.get(f"/b/{slug}")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "text/html" in limited.headers["content-type"] and "Please wait" in limited.text
        assert http.get("/health").status_code == 200  # only the public pages are limited


def test_pages_are_compressed_for_slow_phones(live_server, service, make_business):
    slug = slug_of(service, make_business("garage"))
    with live_server(frozen=True, settings=settings()) as server:
        page = httpx.get(f"{server.url}/b/{slug}/oil-change", params={"tz": "America/New_York"},
                          headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
    assert int(page.headers["content-length"]) * 4 < len(page.content)  # on the wire vs. unpacked
