"""The person's side of /authorize: pick the business, sign in to its console, see who asks for what, decide.

GET  /oauth/connect?request=R                     which business? (the one last approved for here, or the only one;
                                                  `choose=1`: ask anyway)
GET  /console/{slug}/connect?request=R            the consent page, behind the console's own sign-in
POST /console/{slug}/connect                      approve (a code to the app's redirect URI) or deny
GET  /console/{slug}/settings/apps                connected apps (Settings)
POST /console/{slug}/settings/apps/{grant}/revoke ends the grant and every token under it, at once

R is the authorization request as the SDK checked it (client, registered redirect URI, PKCE challenge,
scopes), signed by us and short-lived: nothing is stored until the person approves. Console accounts belong
to one business each, so the business is the one whose console the person signs in to. The redirect URI
was matched against the client's registration before R was made, so these pages never send anyone to an
address the client did not register.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from itsdangerous import BadSignature, URLSafeSerializer
from mcp.server.auth.provider import construct_redirect_uri
from mcp.shared.auth import OAuthClientInformationFull
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.core.accounts.staff import SignedIn
from nextslot.core.results import Rejected
from nextslot.oauth import grants, scopes
from nextslot.oauth.client_documents import is_document_id
from nextslot.oauth.provider import NextslotOAuthProvider
from nextslot.server.console.session import Id, Staff, booking_service, checked_post, notice, owner_only, render
from nextslot.server.page_context import PageBusiness, business_by_slug
from nextslot.server.page_render import over_https

router = APIRouter(include_in_schema=False)
REMEMBER = "nextslot_oauth_business"  # the business an app was last approved for here, for the next one
REMEMBERED_DAYS = 90
# Which business an approval goes to is the person's choice alone. The choice is remembered only by the approval
# itself (a same-origin POST with the console's CSRF token, signed in to that business), signed so that no other
# response (a sibling subdomain's cookie) can plant one; a business named in a link from another site is shown to
# confirm, not followed, and never remembered: a cross-site link must not decide where the next approval goes.


def provider_of(request: Request) -> NextslotOAuthProvider:
    return request.app.state.oauth


async def pending_request(request: Request, raw: str | None) -> tuple[dict[str, Any], OAuthClientInformationFull] | Response:
    provider = provider_of(request)
    pending = provider.pending(raw) if raw else None
    client = await provider.get_client(pending["client_id"]) if pending else None
    if pending is None or client is None:
        return notice(request, None, "Link expired",
                      "This connection request has expired or is not valid. Start connecting again from the app.", 400)
    return pending, client


def only_business_slug(request: Request) -> str | None:
    return booking_service(request).sole_business_slug()


def signer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.secret_key, salt="nextslot-oauth-business")


def remembered(request: Request) -> str | None:
    """The business an app was last approved for in this browser, if the cookie is one we signed."""
    try:
        slug = signer(request).loads(request.cookies.get(REMEMBER, ""))
    except BadSignature:
        return None
    return slug if isinstance(slug, str) else None


def remember(request: Request, response: Response, slug: str) -> None:
    response.set_cookie(REMEMBER, signer(request).dumps(slug), max_age=REMEMBERED_DAYS * 24 * 3600, path="/oauth",
                        httponly=True, samesite="lax", secure=over_https(request))


def from_another_site(request: Request) -> bool:
    """A browser's navigation that another site started (a link, a form, a redirect chain from it): the Fetch
    Metadata header says so. Clients that send none (not a browser) are taken at their word."""
    return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


@router.get("/oauth/connect")
async def choose_business(request: Request) -> Response:
    found = await pending_request(request, request.query_params.get("request"))
    if isinstance(found, Response):
        return found
    _, client = found
    typed = request.query_params.get("business", "").strip().lower()
    confirm = bool(typed) and from_another_site(request)  # named by another site: the person confirms it here
    if confirm or request.query_params.get("choose") == "1":  # or "another business" from the consent page
        wanted = None
    else:
        wanted = typed or remembered(request) or await run_in_threadpool(only_business_slug, request)
    business = await run_in_threadpool(business_by_slug, booking_service(request), wanted) if wanted else None
    if business is None:
        problem = Rejected("unknown_business", "There is no business with that name here.", "business") \
            if typed and not confirm else None
        return render(request, "oauth_business.html", {"client_name": client.client_name or "An app",
                                                       "request_token": request.query_params["request"],
                                                       "typed": typed, "problem": problem},
                      404 if problem else 200)
    target = f"/console/{business.slug}/connect?" + urlencode({"request": request.query_params["request"]})
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def consent_page(request: Request, business: PageBusiness, staff: SignedIn, pending: dict[str, Any],
                 client: OAuthClientInformationFull, raw: str, problem: Rejected | None = None,
                 status: int = 200) -> Response:
    asked = pending["scopes"] or scopes.ALL
    allowed = scopes.grantable(staff.role)
    ticked = set(pending["scopes"] or scopes.DEFAULT)
    rows = [{"name": name, "label": label, "asked": name in asked, "allowed": name in allowed,
             "ticked": name in ticked and name in allowed}
            for name, label in scopes.SCOPES.items() if name in asked]
    return render(request, "oauth_consent.html", {
        "business": business, "staff": staff, "client_name": client.client_name or "An unnamed app",
        "redirect_host": urlsplit(pending["redirect_uri"]).netloc, "scope_rows": rows, "request_token": raw,
        # a client known from its metadata document is vouched for by the site that serves it
        "client_site": urlsplit(client.client_id).netloc if is_document_id(client.client_id) else None,
        "problem": problem}, status)


@router.get("/console/{slug}/connect")
async def consent_form(request: Request, signed: Staff) -> Response:
    raw = request.query_params.get("request")
    found = await pending_request(request, raw)
    if isinstance(found, Response):
        return found
    return consent_page(request, *signed, *found, raw or "")


@router.post("/console/{slug}/connect")
async def decide(request: Request, signed: Staff) -> Response:
    business, staff = signed
    form = await checked_post(request, staff)
    found = await pending_request(request, form.get("request"))
    if isinstance(found, Response):
        return found
    pending, client = found
    back = {"Cache-Control": "no-store"}
    if form.get("decision") != "approve":
        return RedirectResponse(construct_redirect_uri(pending["redirect_uri"], error="access_denied",
                                                       state=pending["state"]), status_code=303, headers=back)
    asked = pending["scopes"] or scopes.ALL
    chosen = [s for s in scopes.ALL if form.get(f"scope:{s}")]
    refused = [s for s in chosen if s not in asked or s not in scopes.grantable(staff.role)]
    if refused:
        return consent_page(request, business, staff, pending, client, form["request"], Rejected(
            "scope_not_allowed", f"Your account may not grant {', '.join(refused)}; only an owner can.", "scope"), 403)
    if not chosen:
        return consent_page(request, business, staff, pending, client, form["request"], Rejected(
            "no_scope", "Tick at least one thing the app may do, or choose Deny.", "scope"), 422)
    provider = provider_of(request)
    code = await run_in_threadpool(
        grants.approve, booking_service(request).uow(), client_id=client.client_id, business_id=business.id,
        account_id=staff.account_id, scopes=chosen, resource=provider.resource,
        code_challenge=pending["code_challenge"], redirect_uri=pending["redirect_uri"],
        redirect_uri_explicit=pending["explicit"], now=booking_service(request).now())
    response = RedirectResponse(construct_redirect_uri(pending["redirect_uri"], code=code, state=pending["state"]),
                                status_code=303, headers=back)
    remember(request, response, business.slug)  # approved, by a checked form: the next app starts here
    return response


@router.get("/console/{slug}/settings/apps")
async def connected_apps(request: Request, signed: Staff) -> Response:
    business, staff = signed
    service = booking_service(request)
    apps = await run_in_threadpool(grants.connected_apps, service.uow(), business.id, service.now())
    return render(request, "connected_apps.html", {"business": business, "staff": staff, "active": "settings",
                                                   "apps": apps, "labels": scopes.SCOPES,
                                                   "revoked": request.query_params.get("revoked")})


@router.post("/console/{slug}/settings/apps/{grant_id}/revoke")
async def revoke_app(request: Request, grant_id: Id, signed: Staff) -> Response:
    business, staff = signed
    await checked_post(request, staff)
    owner_only(request, business, staff)
    service = booking_service(request)
    done = await run_in_threadpool(grants.revoke_grant, service.uow(), grant_id, service.now(), business.id)
    if not done:
        return notice(request, business, "Not found", "That app is not connected (any more).", 404, staff=staff)
    return RedirectResponse(f"/console/{business.slug}/settings/apps?revoked=1", status_code=303)

