"""Taking the booking page elsewhere: the embed script, QR codes of the page, and a share page.

GET /embed.js                 one script tag puts the page in an iframe that sizes itself
GET /b/{slug}/qr.svg | .png   a QR code of the page's public URL (segno; the PNG needs no Pillow)
GET /b/{slug}/share           the short link, the QR code, a WhatsApp share link and the embed snippets
GET /static/page/{name}       the pages' one stylesheet and one script, cached for a year by content hash
"""
from __future__ import annotations

import io
from functools import lru_cache
from html import escape
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from starlette.responses import Response

from nextslot.core.service import BookingService
from nextslot.server.booking_page import page_business
from nextslot.server.page_context import PageBusiness, business_by_slug, visitor_of
from nextslot.server.page_render import ASSETS, VERSIONS, not_found, render
from nextslot.server.rate_limit import RateLimitedRoute

router = APIRouter(route_class=RateLimitedRoute, include_in_schema=False)
SERVED = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
QR_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@router.get("/embed.js")
def embed_script() -> Response:
    return Response(ASSETS["embed.js"], media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff",
                             "Cross-Origin-Resource-Policy": "cross-origin"})


@router.get("/static/page/{name}")
def static_asset(name: str, request: Request) -> Response:
    if name not in SERVED:
        return not_found(request)
    current = request.query_params.get("v") == VERSIONS[name]
    cache = "public, max-age=31536000, immutable" if current else "public, max-age=300"
    return Response(ASSETS[name], media_type=SERVED[name],
                    headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


@router.get("/b/{slug}/qr.{kind}")
def qr_code(slug: str, kind: str, request: Request) -> Response:
    service: BookingService = request.app.state.service
    business = business_by_slug(service, slug) if kind in QR_TYPES else None
    if business is None:
        return not_found(request, "business")
    body = qr_image(page_url(request, business), kind, business.name)
    return Response(body, media_type=QR_TYPES[kind],
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                             "Content-Disposition": f'inline; filename="{business.slug}-qr.{kind}"'})


@router.get("/b/{slug}/share")
def share_page(slug: str, request: Request) -> Response:
    business = page_business(request, slug)
    if isinstance(business, Response):
        return business
    url = page_url(request, business)
    origin = request.app.state.settings.public_url.rstrip("/")
    return render(request, "share.html", {
        "business": business, "visitor": visitor_of(request, business.zone, language=business.language), "url": url,
        "whatsapp": "https://wa.me/?text=" + quote(f"Book with {business.name}: {url}"),
        "script_snippet": f'<script src="{origin}/embed.js" data-business="{business.slug}" async></script>',
        "iframe_snippet": (f'<iframe src="{url}?embed=1" title="Book with {escape(business.name)}" loading="lazy" '
                           'style="width:100%;min-height:640px;border:0"></iframe>'),
    })


def page_url(request: Request, business: PageBusiness) -> str:
    """The page's public address (settings.public_url): what a QR code and a shared link point at."""
    return f"{request.app.state.settings.public_url.rstrip('/')}/b/{business.slug}"


@lru_cache(maxsize=256)
def qr_image(url: str, kind: str, title: str) -> bytes:
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    if kind == "svg":
        code.save(out, kind="svg", scale=8, border=4, title=f"QR code: book with {title}", xmldecl=False)
    else:
        code.save(out, kind="png", scale=8, border=4)
    return out.getvalue()
