"""Rendering the public pages: one Jinja2 environment, the headers every page carries, the notice pages.

Booking pages (/b/) may be framed by any site, so businesses can embed them; manage pages (/m/) carry a
booking's secret link and may not be framed at all. No page sends a Referer: URLs can hold that link.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.responses import Response

from nextslot.languages import LANGUAGES, choose, from_accept_language, known, translator
from nextslot.languages.catalogs import N_, NAMES
from nextslot.schemas.statuses import ACTIVE, LIVE
from nextslot.server.booking_form import Problem
from nextslot.server.page_problems import translated as translated_problem
from nextslot.server.page_times import day_label, duration, zone_choices

HERE = Path(__file__).parent
STATIC = HERE / "static"
ASSETS = {name: (STATIC / name).read_bytes() for name in ("page.css", "page.js", "embed.js")}
VERSIONS = {name: hashlib.sha256(body).hexdigest()[:10] for name, body in ASSETS.items()}
TZ_COOKIE = "nextslot_tz"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True


def strong(text: Any) -> Markup:
    """A value set in bold inside a translated sentence (escaped like any other)."""
    return Markup("<strong>{}</strong>").format(text)


def code(text: Any) -> Markup:
    return Markup("<code>{}</code>").format(text)


def as_date(iso: Any) -> Any:
    return date.fromisoformat(iso) if isinstance(iso, str) else iso


def asset(name: str) -> str:
    """The asset's URL with its content hash, so browsers may keep it for a year."""
    return f"/static/page/{name}?v={VERSIONS[name]}"


STATUS = {"booked": N_("Booked"), "confirmed": N_("Confirmed"), "pending_payment": N_("Awaiting deposit"),
          "cancelled": N_("Cancelled"), "expired": N_("Expired: the deposit was not paid in time"),
          "no_show": N_("Missed")}
PAYMENT = {"paid": N_("Deposit paid"), "pending": N_("Awaiting deposit"), "expired": N_("Deposit not paid in time"),
           "refund_due": N_("Deposit paid; a refund is due"),
           "kept": N_("Deposit kept (late cancel or missed appointment)")}


def language_of(context: Context) -> str:
    return context.get("lang") or "en"


@pass_context
def page_gettext(context: Context, message: str) -> str:
    return translator(language_of(context)).gettext(message)


@pass_context
def page_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translator(language_of(context)).ngettext(singular, plural, n)


@pass_context
def translated(context: Context, message: str, values: dict[str, Any] | None = None) -> str:
    """A sentence chosen in code (marked with N_ there), in the page's language: `{{ title | t }}`."""
    text = translator(language_of(context)).gettext(message)
    return text % values if values else text


@pass_context
def local_day_label(context: Context, day: Any) -> str:
    return day_label(day, language_of(context))


@pass_context
def status_label(context: Context, status: str) -> str:
    known_label = STATUS.get(status)
    return translator(language_of(context)).gettext(known_label) if known_label else status.replace("_", " ")


@pass_context
def payment_label(context: Context, status: str) -> str:
    known_label = PAYMENT.get(status)
    return translator(language_of(context)).gettext(known_label) if known_label else status.replace("_", " ")


templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(page_gettext, page_ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.env.globals.update(asset=asset, zone_choices=zone_choices, day_label=local_day_label, ACTIVE=ACTIVE,
                             LIVE=LIVE, strong=strong, code=code)
templates.env.filters.update(duration=duration, status=status_label, payment=payment_label, t=translated,
                             as_date=as_date)


def over_https(request: Request) -> bool:
    """Whether browsers reach us over HTTPS, so our cookies go Secure: this request came so, or the public address
    says so (TLS ends at a proxy whose X-Forwarded-Proto uvicorn was not told to trust, and it sees http)."""
    return request.url.scheme == "https" or request.app.state.settings.public_url.startswith("https://")


def security_headers(nonce: str, frameable: bool) -> dict[str, str]:
    ancestors = "*" if frameable else "'none'"
    csp = ("default-src 'self'; img-src 'self' data: https:; script-src 'self'; "
           f"style-src 'self' 'nonce-{nonce}'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}")
    headers = {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer",
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if not frameable:
        headers["X-Frame-Options"] = "DENY"
    return headers


def page_language(request: Request, context: dict[str, Any]) -> str:
    """The visitor's language (see page_context.visitor_of); a page without a visitor negotiates it alone."""
    if (visitor := context.get("visitor")) is not None:
        return str(visitor.language)
    business = context.get("business")
    return choose(known(request.query_params.get("lang")), from_accept_language(request.headers.get("accept-language")),
                  default=business.language if business is not None else "en")


def language_links(request: Request, language: str) -> list[tuple[str, str, str, bool]]:
    """(code, name, href, current) for the switcher: this page again with `lang=` set. Only for a GET: a page
    shown after a POST (a refusal) has no address of its own to come back to."""
    if request.method != "GET":
        return []
    return [(code, NAMES[code], str(request.url.include_query_params(lang=code).remove_query_params("partial"))
             .removeprefix(str(request.base_url).rstrip("/")), code == language) for code in LANGUAGES]


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
           frameable: bool = True) -> Response:
    """A page from templates/page/, with its headers, in the visitor's language; remembers a zone the visitor
    picked."""
    nonce = secrets.token_urlsafe(12)
    language = page_language(request, context)
    page = {"business": None, "visitor": None, "detect_tz": False, **context, "nonce": nonce, "lang": language,
            "languages": language_links(request, language)}
    if isinstance(problem := page.get("problem"), Problem):
        page["problem"] = translated_problem(problem, language)
    response = templates.TemplateResponse(request, f"page/{template}", page, status_code=status,
                                          headers=security_headers(nonce, frameable))
    visitor = page["visitor"]
    if visitor is not None and visitor.chosen and request.cookies.get(TZ_COOKIE) != visitor.zone.key:
        response.set_cookie(TZ_COOKIE, visitor.zone.key, max_age=365 * 24 * 3600, samesite="lax",
                            secure=request.url.scheme == "https")
    response.headers["Content-Language"] = language
    return response


def notice(request: Request, title: str, message: str, status: int, *, frameable: bool = True,
           values: dict[str, Any] | None = None, **context: Any) -> Response:
    """A plain page that explains itself: unknown business, invalid link, too many requests. The title and
    message are marked with N_ where they are written and translated on the page (`values` fill them in)."""
    return render(request, "notice.html", {"title": title, "message": message, "values": values, **context},
                  status=status, frameable=frameable)


NOT_FOUND = {"page": N_("There is no such page. Check the link and try again."),
             "business": N_("There is no such business. Check the link and try again."),
             "service": N_("There is no such service. Check the link and try again."),
             "booking": N_("There is no such booking. Check the link and try again.")}


def not_found(request: Request, what: str = "page") -> Response:
    return notice(request, N_("Not found"), NOT_FOUND.get(what, NOT_FOUND["page"]), 404)


def too_many_requests(request: Request, retry_after: int) -> Response:
    response = notice(request, N_("Slow down a little"),
                      N_("That was a lot of requests in a short time. Please wait %(seconds)s seconds "
                         "and try again."), 429, values={"seconds": retry_after})
    response.headers["Retry-After"] = str(retry_after)
    return response
