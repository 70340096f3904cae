"""A fake of Microsoft identity (the v2.0 endpoints msal uses) and of Microsoft Graph's calendar endpoints on
loopback, for msal and our Graph client to talk to.

Identity: OpenID discovery for the tenant, a consent page (`/{tenant}/oauth2/v2.0/authorize`, an "Accept" button
a browser presses), the token endpoint (authorization code with PKCE S256 checked and an id token carrying msal's
nonce; refresh tokens rotated, the old one still good until revoked). Graph: `me/calendarView/delta` (pages,
delta links, `@removed` items, an expired delta token answering 410 SyncStateNotFound), `me/events` (create,
PATCH, DELETE, `$filter` on our single-value extended property), and subscriptions, made only after the
notification URL echoes a validationToken, like Graph. A change made by the test notifies every subscription.
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from evals.loopback import LiveServer

LOGIN = "https://login.microsoftonline.com"


def _error(status: int, code: str, message: str = "") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message or code}}, status_code=status)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeMicrosoft:
    client_id = "00000000-1111-2222-3333-444444444444"
    client_secret = "fake-microsoft-secret"
    tenant = "common"

    def __init__(self, account: str = "okafor@clinic.example") -> None:
        self.account = account
        self.lock = threading.Lock()
        self.seq = itertools.count(1)
        self.events: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, int] = {}
        self.oldest_token = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, bool] = {}
        self.access_tokens: dict[str, datetime] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.token_requests: list[str] = []
        self.notifications: list[int] = []
        self.page_size = 200
        self.down = False
        routes = [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/authorize", self._consent, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/approve", self._approve, methods=["POST"]),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/v1.0/me/calendarView/delta", self._delta, methods=["GET"]),
            Route("/v1.0/me/events", self._list_events, methods=["GET"]),
            Route("/v1.0/me/events", self._create, methods=["POST"]),
            Route("/v1.0/me/events/{eid}", self._patch, methods=["PATCH"]),
            Route("/v1.0/me/events/{eid}", self._delete, methods=["DELETE"]),
            Route("/v1.0/subscriptions", self._subscribe, methods=["POST"]),
            Route("/v1.0/subscriptions/{sid}", self._unsubscribe, methods=["DELETE"]),
        ]
        self._server = LiveServer(Starlette(routes=routes))
        self.url = self._server.url

    def __enter__(self) -> FakeMicrosoft:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def settings(self) -> dict[str, Any]:
        return {"microsoft_client_id": self.client_id, "microsoft_client_secret": self.client_secret,
                "microsoft_tenant": self.tenant, "microsoft_login_url": self.url,
                "microsoft_graph_url": f"{self.url}/v1.0"}

    # --- what a test does in the calendar ------------------------------------------------------------

    def add(self, subject: str, start: datetime, end: datetime, push: bool = True, **fields: Any) -> str:
        eid = "AAMk" + secrets.token_hex(12)
        self._store({"id": eid, "subject": subject, "start": _when(start), "end": _when(end), "showAs": "busy",
                     "isAllDay": False, "isCancelled": False, "type": "singleInstance", **fields})
        if push:
            self.notify()
        return eid

    def add_all_day(self, subject: str, day: str, days: int = 1, push: bool = True) -> str:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return self.add(subject, start, start + timedelta(days=days), push, isAllDay=True)

    def add_series(self, subject: str, start: datetime, end: datetime, count: int, push: bool = True) -> list[str]:
        """A daily series, as calendarView returns it: one occurrence per day."""
        master = "AAMk" + secrets.token_hex(12)
        return [self.add(subject, start + timedelta(days=n), end + timedelta(days=n), push and n == count - 1,
                         type="occurrence", seriesMasterId=master) for n in range(count)]

    def change(self, eid: str, push: bool = True, **fields: Any) -> None:
        with self.lock:
            event = dict(self.events[eid])
        event.update({k: _when(v) if k in ("start", "end") else v for k, v in fields.items()})
        self._store(event)
        if push:
            self.notify()

    def remove(self, eid: str, push: bool = True) -> None:
        with self.lock:
            self.events[eid]["@deleted"] = True
            self.changed[eid] = next(self.seq)
        if push:
            self.notify()

    def live(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.events.values() if not e.get("@deleted")]

    def expire_delta_tokens(self) -> None:
        with self.lock:
            self.oldest_token = next(self.seq)

    def revoke_all(self) -> None:
        with self.lock:
            for token in self.refresh_tokens:
                self.refresh_tokens[token] = False
            self.access_tokens.clear()

    def notify(self, client_state: str | None = None, subscription_id: str | None = None) -> list[int]:
        answers = []
        with self.lock:
            subs = [dict(s) for s in self.subscriptions.values()]
        for sub in subs:
            body = {"value": [{"subscriptionId": subscription_id or sub["id"], "changeType": "updated",
                               "clientState": client_state if client_state is not None else sub["clientState"],
                               "resource": "me/events", "tenantId": "fake-tenant",
                               "subscriptionExpirationDateTime": sub["expirationDateTime"]}]}
            try:
                answers.append(httpx2.post(sub["notificationUrl"], json=body, timeout=10).status_code)
            except httpx2.HTTPError:
                answers.append(0)
        self.notifications.extend(answers)
        return answers

    def _store(self, event: dict[str, Any]) -> None:
        with self.lock:
            seq = next(self.seq)
            event["@odata.etag"] = f'W/"{seq}"'
            event["changeKey"] = str(seq)
            self.events[event["id"]] = event
            self.changed[event["id"]] = seq

    # --- identity ------------------------------------------------------------------------------------

    async def _discovery(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = f"{LOGIN}/{tenant}"  # msal takes only Microsoft's https host; the client sends its calls here
        return JSONResponse({"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                             "token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                             "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                             "end_session_endpoint": f"{base}/oauth2/v2.0/logout"})

    async def _consent(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return HTMLResponse("<h1>AADSTS900144: invalid request</h1>", status_code=400)
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in q.items())
        return HTMLResponse(f"""<!doctype html><title>Permissions requested</title>
            <h1>Permissions requested</h1><p>{html.escape(self.account)}</p>
            <p>nextslot would like to: have full access to your calendars; maintain access to data you have
            given it access to</p>
            <form method="post" action="approve">{fields}<button name="decision" value="accept">Accept</button>
            <button name="decision" value="cancel">Cancel</button></form>""")

    async def _approve(self, request: Request) -> Response:
        form = dict(await request.form())
        target = form["redirect_uri"]
        if form.get("decision") != "accept":
            query = {"error": "access_denied", "error_description": "The user has denied access.",
                     "state": form["state"]}
            return RedirectResponse(f"{target}?{urlencode(query)}", 303)
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = form
        return RedirectResponse(f"{target}?{urlencode({'code': code, 'state': form['state'], 'session_state': 'x'})}",
                                303)

    def approve_url(self, auth_url: str) -> str:
        """Press "Accept" without a browser: the redirect (with the code) the consent page would send."""
        from urllib.parse import parse_qsl, urlsplit
        auth_url = auth_url.replace(LOGIN, self.url, 1)
        page = httpx2.get(auth_url, timeout=10)
        page.raise_for_status()
        parts = urlsplit(auth_url)
        form = dict(parse_qsl(parts.query))
        approve = f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/approve"
        return httpx2.post(approve, data={**form, "decision": "accept"}, timeout=10).headers["location"]

    async def _token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests.append(form.get("grant_type", ""))
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "AADSTS7000215"}, status_code=401)
        tenant = request.path_params["tenant"]
        nonce = None
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                asked = self.codes.pop(form.get("code", ""), None)
                challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode())
                                                     .digest()).decode().rstrip("=")
                if asked is None or asked["redirect_uri"] != form.get("redirect_uri") \
                        or asked["code_challenge"] != challenge:
                    return JSONResponse({"error": "invalid_grant", "error_description": "AADSTS70008"},
                                        status_code=400)
                nonce = asked.get("nonce")
            elif form.get("grant_type") == "refresh_token":
                if not self.refresh_tokens.get(form.get("refresh_token", "")):
                    return JSONResponse({"error": "invalid_grant", "error_description": "AADSTS700082: The "
                                         "refresh token has expired or was revoked."}, status_code=400)
            else:
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.access_tokens[access] = datetime.now(UTC) + timedelta(hours=1)
            self.refresh_tokens[refresh] = True  # rotated; the old one stays good until revoked
        now = int(time.time())
        claims = {"iss": f"{LOGIN}/{tenant}/v2.0", "aud": self.client_id, "iat": now, "nbf": now,
                  "exp": now + 3600, "preferred_username": self.account, "oid": "fake-oid", "tid": "fake-tenant",
                  "sub": "fake-sub", "name": "Dr Okafor", **({"nonce": nonce} if nonce else {})}
        id_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
        client_info = _b64({"uid": "fake-oid", "utid": "fake-tenant"})
        return JSONResponse({"token_type": "Bearer", "scope": "Calendars.ReadWrite openid profile",
                             "expires_in": 3600, "access_token": access, "refresh_token": refresh,
                             "id_token": id_token, "client_info": client_info})

    # --- Graph -----------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if self.down:
            return _error(503, "serviceNotAvailable")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.access_tokens.get(token)
        if expiry is None or expiry < datetime.now(UTC):
            return _error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        return None

    async def _delta(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        q = request.query_params
        with self.lock:
            if q.get("$deltatoken"):
                token, start, end = json.loads(base64.urlsafe_b64decode(q["$deltatoken"]))
                if token < self.oldest_token:
                    return _error(410, "SyncStateNotFound", "The sync state generation is not found.")
                ids = [i for i, s in self.changed.items() if s > token]
            elif q.get("$skiptoken"):
                token, start, end, ids, offset = json.loads(base64.urlsafe_b64decode(q["$skiptoken"]))
            else:
                token, start, end = None, q["startDateTime"], q["endDateTime"]
                ids = [i for i, e in self.events.items() if not e.get("@deleted")]
            if not q.get("$skiptoken"):
                offset = 0
                now_seq = next(self.seq)
                lo, hi = _t(start), _t(end)
                ids = [i for i in ids if self.events[i].get("@deleted") or
                       (_t(self.events[i]["start"]["dateTime"]) < hi and _t(self.events[i]["end"]["dateTime"]) > lo)]
                token = now_seq
            page_ids = ids[offset:offset + self.page_size]
            items = [{"id": i, "@removed": {"reason": "deleted"}} if self.events[i].get("@deleted")
                     else dict(self.events[i]) for i in page_ids]
        body: dict[str, Any] = {"value": items}
        base = f"{self.url}/v1.0/me/calendarView/delta"
        if offset + self.page_size < len(ids):
            skip = base64.urlsafe_b64encode(json.dumps([token, start, end, ids, offset + self.page_size])
                                            .encode()).decode()
            body["@odata.nextLink"] = f"{base}?{urlencode({'$skiptoken': skip})}"
        else:
            delta = base64.urlsafe_b64encode(json.dumps([token, start, end]).encode()).decode()
            body["@odata.deltaLink"] = f"{base}?{urlencode({'$deltatoken': delta})}"
        return JSONResponse(body)

    async def _list_events(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        wanted = request.query_params.get("$filter", "")
        with self.lock:
            found = [{"id": e["id"]} for e in self.events.values() if not e.get("@deleted") and any(
                f"ep/id eq '{p['id']}' and ep/value eq '{p['value']}'" in wanted
                for p in e.get("singleValueExtendedProperties", []))]
        return JSONResponse({"value": found})

    async def _create(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = await request.json()
        with self.lock:  # Graph: the same transactionId within a short time gives the same event back
            same = [e for e in self.events.values() if body.get("transactionId") and
                    e.get("transactionId") == body["transactionId"] and not e.get("@deleted")]
        if same:
            return JSONResponse(same[0], status_code=201)
        eid = "AAMk" + secrets.token_hex(12)
        self._store({"isAllDay": False, "isCancelled": False, "type": "singleInstance", **body, "id": eid})
        with self.lock:
            return JSONResponse(self.events[eid], status_code=201)

    async def _patch(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        eid = request.path_params["eid"]
        with self.lock:
            event = self.events.get(eid)
            if event is None or event.get("@deleted"):
                return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        self._store({**event, **(await request.json())})
        with self.lock:
            return JSONResponse(self.events[eid])

    async def _delete(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        eid = request.path_params["eid"]
        with self.lock:
            event = self.events.get(eid)
            if event is None or event.get("@deleted"):
                return _error(404, "ErrorItemNotFound")
            event["@deleted"] = True
            self.changed[eid] = next(self.seq)
        return Response(status_code=204)

    async def _subscribe(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = await request.json()
        token = secrets.token_urlsafe(12)
        try:  # Graph posts a validationToken and wants it back as text/plain within 10 seconds
            async with httpx2.AsyncClient(timeout=10) as client:
                echo = await client.post(body["notificationUrl"], params={"validationToken": token},
                                         content=b"")
        except httpx2.HTTPError:
            return _error(400, "ValidationError", "Subscription validation request failed.")
        if echo.status_code != 200 or echo.text != token or not echo.headers.get("content-type", "").startswith(
                "text/plain"):
            return _error(400, "ValidationError", "Subscription validation request failed. Response must exactly "
                          "match validationToken query parameter.")
        sid = str(secrets.token_hex(16))
        sub = {"id": sid, **body}
        with self.lock:
            self.subscriptions[sid] = sub
        return JSONResponse({k: v for k, v in sub.items() if k != "clientState"}, status_code=201)

    async def _unsubscribe(self, request: Request) -> Response:
        if (refused := self._authorized(request)) is not None:
            return refused
        with self.lock:
            if self.subscriptions.pop(request.path_params["sid"], None) is None:
                return _error(404, "ResourceNotFound")
        return Response(status_code=204)


def _when(value: datetime | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return {"dateTime": value.astimezone(UTC).replace(tzinfo=None).isoformat() + ".0000000", "timeZone": "UTC"}


def _t(text: str) -> datetime:
    text = text.replace("Z", "").split(".")[0]
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
