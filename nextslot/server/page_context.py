"""Who a public page is for: the business (by slug or by a link's id, with its branding) and the visitor
(their time zone, and whether the page sits in another site's iframe)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode
from zoneinfo import ZoneInfo

from nextslot.core.business.lookup import BusinessRecord
from nextslot.core.instants import load_zone
from nextslot.core.service import BookingService
from nextslot.languages import choose, from_accept_language, known
from nextslot.schemas.views import Branch, ServiceView
from nextslot.server.page_render import TZ_COOKIE

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # slugs and service keys, as the config allows them
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Branding:
    colour: str | None  # buttons and the header bar; None: the page's own blue
    on_colour: str  # text on that colour, whichever of white or near-black reads better
    line: str  # slot borders: the colour itself if it stands out from white (3:1), else near-black
    logo_url: str | None


@dataclass(frozen=True)
class PageBusiness:
    id: int
    slug: str
    name: str
    zone: ZoneInfo
    address: str | None
    phone: str | None
    policies: str | None
    branding: Branding
    language: str = "en"  # the page's language when nothing says which the visitor reads


def business_by_slug(service: BookingService, slug: str) -> PageBusiness | None:
    """The business a public URL names; None for an unknown or malformed slug (no query for the latter)."""
    if not KEY.match(slug):
        return None
    business = service.business_by_slug(slug)
    return page_business(business) if business is not None else None


def business_offer(service: BookingService, slug: str) -> tuple[PageBusiness, list[ServiceView]] | None:
    """The business a public URL names and its services; None for an unknown or malformed slug."""
    if not KEY.match(slug):
        return None
    found = service.business_offer(slug)
    return (page_business(found[0]), found[1]) if found is not None else None


def business_by_id(service: BookingService, business_id: int) -> PageBusiness | None:
    business = service.business_by_id(business_id)
    return page_business(business) if business is not None else None


def page_business(b: BusinessRecord) -> PageBusiness:
    details = b.details
    return PageBusiness(b.id, b.slug, b.name, ZoneInfo(b.timezone), text(details.get("address")),
                        text(details.get("phone")), text(details.get("policies")), branding(details.get("page")),
                        choose(details.get("language")))


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def branding(page: Any) -> Branding:
    """`details.page.colour` (or `color`) as #rrggbb and `details.page.logo_url`; anything else is ignored."""
    page = page if isinstance(page, dict) else {}
    colour = page.get("colour") or page.get("color")
    colour = colour if isinstance(colour, str) and HEX_COLOUR.match(colour) else None
    logo = page.get("logo_url") or page.get("logo")
    logo = logo if isinstance(logo, str) and logo.startswith("https://") and len(logo) <= 2000 else None
    if colour is None:
        return Branding(None, "#ffffff", "#0b5cad", logo)
    return Branding(colour, readable_on(colour), colour if contrast(colour, "#ffffff") >= 3 else "#1a1a1a", logo)


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def readable_on(colour: str) -> str:
    return "#ffffff" if contrast(colour, "#ffffff") >= contrast(colour, "#111111") else "#111111"


@dataclass(frozen=True)
class Visitor:
    zone: ZoneInfo
    chosen: bool  # the visitor picked the zone (or their browser did); else it is a default
    embed: bool
    language: str = "en"
    language_chosen: bool = False  # picked on the page (`lang=`): kept in its links, as the zone is
    place: str | None = None  # the branch picked, for a business with several

    def params(self, **extra: Any) -> dict[str, str]:
        """Query parameters that keep the visitor's zone, language and the embedded look from page to page."""
        found = {"tz": self.zone.key} if self.chosen else {}
        if self.language_chosen:
            found["lang"] = self.language
        if self.embed:
            found["embed"] = "1"
        if self.place:
            found["location"] = self.place
        found.update({k: str(v) for k, v in extra.items() if v is not None})
        return found

    def link(self, path: str, **extra: Any) -> str:
        query = urlencode(self.params(**extra))
        return f"{path}?{query}" if query else path

    def link_each(self, path: str, name: str) -> Callable[[str], str]:
        """`link(path, name=value)` for each of many values (a grid's ~100 times): the visitor's part encoded once."""
        query = urlencode(self.params())
        start = f"{path}?{query}&{name}=" if query else f"{path}?{name}="
        return lambda value: start + quote_plus(value)


def branch_zone(places: list[Branch], key: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The zone a service's times are shown (and a wish's read) in when no one picked a zone: the picked branch's,
    else the one zone all its branches keep, else the business's. A Pune branch's customer reads Pune's times,
    script or not."""
    picked = [p for p in places if p.key == key] or places
    zones = {p.timezone or fallback.key for p in picked}
    return (load_zone(zones.pop()) if len(zones) == 1 else None) or fallback


def visitor_for(tz: str | None, cookie: str | None, embed: str | None, fallback: ZoneInfo,
                place: str | None = None) -> Visitor:
    """The zone from the page's own parameter, else the remembered one, else the fallback (not 'chosen')."""
    branch = place if place and KEY.match(place) else None  # a key; the core says whether it exists
    for name in (tz, cookie):
        zone = load_zone(name) if name and len(name) <= 64 else None
        if zone is not None:
            return Visitor(zone, True, embed == "1", place=branch)
    return Visitor(fallback, False, embed == "1", place=branch)


def visitor_of(request: Any, fallback: ZoneInfo, form: Any = None, *, language: str = "en") -> Visitor:
    """The visitor of a GET (query string) or of a POST (its form's hidden fields). Their zone: the one picked
    (`tz=`, the page's script says the browser's), else the remembered one, else `fallback` (a booking's pages: its
    branch's, else the business's). Their language: the one picked on the page (`lang=`), else the browser's
    Accept-Language, else the business's (`language`). Neither is ever the customer record's: whoever booked with
    her number holds the booking's pages too, and her zone says where she lives; the links in her own messages
    carry her language (`lang=`) instead."""
    source = form if form is not None else request.query_params
    visitor = visitor_for(source.get("tz"), request.cookies.get(TZ_COOKIE), source.get("embed"), fallback,
                          source.get("location"))
    stated = known(source.get("lang"))
    spoken = choose(stated, from_accept_language(request.headers.get("accept-language")), default=language)
    return Visitor(visitor.zone, visitor.chosen, visitor.embed, spoken, stated is not None, visitor.place)
