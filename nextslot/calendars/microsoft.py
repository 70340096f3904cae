"""Microsoft 365 (Outlook) calendars: Microsoft identity through `msal` (authorization code with PKCE, refresh
tokens), the calendar through Microsoft Graph over `httpx2` (the Graph SDK is far heavier than the five calls
used here).

Reading: `calendarView/delta` for the window expands recurring series into occurrences and pages with
`@odata.nextLink`; its last page's `@odata.deltaLink` is the sync state, and the next read of the same window
follows it for what changed (removed items come as `@removed`). A delta link Graph no longer honours (410, or
`SyncStateNotFound`/`resyncRequired`) means reading the window again. A series comes as its master (its own
properties, the first occurrence's times) and occurrences carrying only their times and `seriesMasterId`: each
occurrence is read with its master's free/busy, answer, all-day flag and cancellation, and the master's own times
block nothing. Graph may report a series deleted, moved, or short of an occurrence as a change to its master
alone, without the occurrences that went, so such a change (and events stored before series ids were kept) is
settled by reading the window again at once. Times are asked in UTC
(`Prefer: outlook.timezone="UTC"`); all-day events are whole local days of the resource. Free and
working-elsewhere events, cancelled ones, those the staff member declined, and the events we wrote block nothing;
tentative and out-of-office ones block.

Writing: each booking is an event carrying a single-value extended property with our booking's key; a write with
no stored event id first looks the key up, so a retry after a lost answer updates the event it made instead of
adding a second; so does one whose stored id answers 404 (the event made again under another id, or moved), before
it creates the event or calls it gone. Push: Graph subscriptions on `me/events` with a `clientState` secret, made
(Graph first checks our URL echoes its validationToken) and replaced before they run out.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import msal
import requests
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from nextslot.calendars.busy_time import instant, merged
from nextslot.calendars.grants import GrantRefused, Tokens
from nextslot.calendars.provider import (
    BookingEvent,
    CalendarSource,
    Channel,
    Interval,
    Reading,
    StoredEvents,
    SyncState,
    Throttled,
    TokenRejected,
    retry_after,
)
from nextslot.core.instants import load_zone

log = logging.getLogger(__name__)

LOGIN = "https://login.microsoftonline.com"
SCOPES = ["Calendars.ReadWrite"]  # msal adds openid, profile and offline_access (the refresh token) itself
PROPERTY = "String {2f1c7ad6-1c1e-4d8e-9b43-5d1f3c2b6e10} Name nextslotBooking"
MARK = "nextslot:"  # our events' transactionId starts so: read back, they are not busy time
TIMEOUT = 30
SUBSCRIPTION = timedelta(minutes=4200)  # Graph allows at most 4230 minutes for events
MASTERS = 50  # series masters looked up in one sync (any more at the next)
MASTER_FIELDS = "id,type,start,end,showAs,isAllDay,isCancelled,responseStatus,transactionId"
# the grant's own refusals; `invalid_client` is this server's client secret (mistyped, or expired in Entra ID): every
# grant stands once the setting is fixed, so it is an outage, not a reason to reconnect
REFUSED = ("invalid_grant", "interaction_required", "consent_required", "unauthorized_client")


class RedirectedSession(requests.Session):
    """msal only accepts https authorities it knows; this sends its calls for Microsoft's login host to the
    configured one instead (a loopback fake in tests)."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith(LOGIN):
            text = self.base + text[len(LOGIN):]
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, text, *args, **kwargs)


class MicrosoftOAuth:
    """The consent flow and token refreshes with Microsoft identity, through msal."""

    def __init__(self, client_id: str, client_secret: str, tenant: str, login_url: str = LOGIN):
        self.client_id, self.client_secret, self.tenant = client_id, client_secret, tenant
        self.login_url = login_url.rstrip("/")

    def _app(self) -> msal.ConfidentialClientApplication:
        # one per use: msal's token cache and throttling state must not be shared between businesses
        http = RedirectedSession(self.login_url) if self.login_url != LOGIN else None
        return msal.ConfidentialClientApplication(self.client_id, client_credential=self.client_secret,
                                                  authority=f"{LOGIN}/{self.tenant}", http_client=http,
                                                  token_cache=msal.TokenCache())

    def start(self, redirect_uri: str, state: str) -> tuple[str, dict[str, Any]]:
        with warnings.catch_warnings():  # msal suggests form_post; the answer must come back as a top-level GET
            warnings.simplefilter("ignore")  # to carry the console's SameSite=Lax cookies (PKCE, state and the
            flow = self._app().initiate_auth_code_flow(  # session binding protect the code in the query)
                SCOPES, redirect_uri=redirect_uri, state=state, prompt="select_account", response_mode="query")
        url = flow["auth_uri"]
        if url.startswith(LOGIN) and self.login_url != LOGIN:  # the browser goes where msal's calls go
            url = self.login_url + url[len(LOGIN):]
        return url, flow

    def finish(self, kept: dict[str, Any], query: dict[str, str]) -> Tokens:
        result = self._app().acquire_token_by_auth_code_flow(kept, query, scopes=SCOPES)
        return tokens_of(result)

    def refresh(self, refresh_token: str) -> Tokens:
        return tokens_of(self._app().acquire_token_by_refresh_token(refresh_token, scopes=SCOPES))

    def revoke(self, token: str) -> None:
        """Microsoft has no revocation endpoint for one grant: the staff member removes the app's consent in
        their account; the tokens we drop here expire on their own."""


def tokens_of(result: dict[str, Any]) -> Tokens:
    if "access_token" not in result:
        code = str(result.get("error", "unknown"))
        if code in REFUSED:
            raise GrantRefused(code)
        raise RuntimeError(f"Microsoft identity answered {code}")  # down or throttled: try again later
    claims = result.get("id_token_claims") or {}
    expires = datetime.now(UTC) + timedelta(seconds=int(result.get("expires_in", 3600)))
    return Tokens(result["access_token"], result.get("refresh_token"), expires, str(result.get("scope", "")),
                  claims.get("preferred_username") or claims.get("email"))


class GraphError(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(f"Microsoft Graph answered HTTP {status} ({code})")
        self.status, self.code = status, code


class MicrosoftCalendar:
    """The Microsoft 365 calendar provider (the signed-in user's default calendar)."""

    pushes = True

    def __init__(self, oauth: MicrosoftOAuth | None, graph_url: str):
        self.oauth = oauth
        self.graph_url = graph_url.rstrip("/")

    @contextmanager
    def connect(self, source: CalendarSource, allow_private: bool = False) -> Iterator[httpx2.Client]:
        # Graph's URL is our own setting, not the business's: no address check is needed
        headers = {"Authorization": f"Bearer {source.access_token}", "Prefer": 'outlook.timezone="UTC"'}
        with httpx2.Client(base_url=self.graph_url + "/", headers=headers, timeout=TIMEOUT) as client:
            yield client

    # --- reading ---------------------------------------------------------------------------------

    def read(self, client: httpx2.Client, source: CalendarSource, since: SyncState, since_window: Interval | None,
             window: Interval, stored: Callable[[], StoredEvents]) -> Reading:
        items, link, known = None, None, None
        if since_window == window and since.sync_token:
            try:
                items, link = pages(client, since.sync_token)
            except GraphError as error:
                if not (error.status == 410 or error.code in ("SyncStateNotFound", "resyncRequired",
                                                               "SyncStateInvalid")):
                    raise
            if items == []:
                return Reading("unchanged", SyncState(link, None), {}, set(), None)
            if items is not None and not told_enough(items, known := stored()):
                items = None  # a series changed as a whole: only the window says which occurrences it has now
        how = "changes" if items is not None else "window"
        if items is None:
            first = client.build_request("GET", "me/calendarView/delta", params={
                "startDateTime": utc_text(window[0]), "endDateTime": utc_text(window[1])}).url
            items, link = pages(client, str(first))
        state = SyncState(link, None)
        known = stored() if known is None else known
        put: StoredEvents = {}
        gone: set[str] = set()
        for item in items:  # a cancelled master is kept: its occurrences, listed bare, are read with it
            if "@removed" in item or (item.get("isCancelled") and item.get("type") != "seriesMaster"):
                gone.add(item["id"])
                put.pop(item["id"], None)
            else:
                put[item["id"]] = (item.get("@odata.etag") or item.get("changeKey"), json.dumps(kept(item),
                                                                                            sort_keys=True))
                gone.discard(item["id"])
        if how == "window":
            gone |= known.keys() - put.keys()
        gone &= known.keys()
        put = {k: v for k, v in put.items() if known.get(k) != v}
        texts = [data for k, (_, data) in known.items() if k not in gone and k not in put]
        if masters := self.masters(client, texts + [d for _, d in put.values()]):
            put, gone = put | masters, gone - masters.keys()
            texts = [data for k, (_, data) in known.items() if k not in gone and k not in put]
        return Reading(how, state, put, gone, busy_intervals(texts + [d for _, d in put.values()], source.zone,
                                                             window, source.own))

    def masters(self, client: httpx2.Client, texts: list[str]) -> StoredEvents:
        """The series masters of stored occurrences that Graph did not list (calendarView may list occurrences
        only, e.g. of a series begun before the window), up to MASTERS a sync: what an occurrence does not say is
        read from its master. One Graph will not give is left out: its occurrences block as they stand."""
        rows = [json.loads(text) for text in texts]
        have = {row["id"] for row in rows if row.get("type") == "seriesMaster"}
        missing = sorted({row["series"] for row in rows if row.get("series")} - have)[:MASTERS]
        found: StoredEvents = {}
        for master in missing:
            try:
                item = checked(client.get(f"me/events/{master}", params={"$select": MASTER_FIELDS})).json()
            except GraphError as error:  # gone (404) or not ours to read: the next full read settles it
                log.info("Graph series master not read (HTTP %s)", error.status)
                continue
            if isinstance(item, dict) and item.get("id") == master and item.get("type") == "seriesMaster":
                found[master] = (item.get("@odata.etag") or item.get("changeKey"), json.dumps(kept(item),
                                                                                           sort_keys=True))
        return found

    # --- writing ---------------------------------------------------------------------------------

    def put(self, client: httpx2.Client, source: CalendarSource, event: BookingEvent, remote_id: str | None) -> str:
        body = {"subject": event.summary, "body": {"contentType": "text", "content": event.description},
                "start": {"dateTime": utc_text(event.starts_at, naive=True), "timeZone": "UTC"},
                "end": {"dateTime": utc_text(event.ends_at, naive=True), "timeZone": "UTC"},
                "showAs": "busy", "isReminderOn": False}
        for known in self.whereabouts(client, event.key, remote_id):
            answer = client.patch(f"me/events/{known}", json=body)
            if answer.status_code != 404:
                return str(checked(answer).json()["id"])
        created = {**body, "singleValueExtendedProperties": [{"id": PROPERTY, "value": event.key}],
                   "transactionId": f"{MARK}{event.key}"}  # Graph drops a repeated POST; delta shows it
        return str(checked(client.post("me/events", json=created)).json()["id"])

    def remove(self, client: httpx2.Client, source: CalendarSource, key: str, remote_id: str | None) -> None:
        for known in self.whereabouts(client, key, remote_id):
            answer = client.delete(f"me/events/{known}")
            if answer.status_code != 404:
                checked(answer)
                return

    def whereabouts(self, client: httpx2.Client, key: str, remote_id: str | None) -> Iterator[str]:
        """The ids our event may have, tried in turn until one is not 404: the stored one, then, only if that one
        is gone, the event carrying our key. A stored id goes stale when the event is made again under another
        (its first answer lost, a retry made it) or moved; the keyed event must not stay behind, nor be doubled."""
        if remote_id is not None:
            yield remote_id
        found = self.find(client, key)
        if found is not None and found != remote_id:
            yield found

    def find(self, client: httpx2.Client, key: str) -> str | None:
        """The id of the event carrying our booking's key, if one was made (its answer may have been lost)."""
        quoted = key.replace("'", "''")
        answer = checked(client.get("me/events", params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY}' and ep/value eq '{quoted}')",
            "$select": "id"}))
        found = answer.json().get("value", [])
        return str(found[0]["id"]) if found else None

    # --- push --------------------------------------------------------------------------------------

    def watch(self, client: httpx2.Client, source: CalendarSource, address: str, channel_id: str, secret: str,
              now: datetime) -> Channel:
        """A Graph subscription to the user's events; Graph checks `address` answers its validation first."""
        answer = checked(client.post("subscriptions", json={
            "changeType": "created,updated,deleted", "notificationUrl": address, "resource": "me/events",
            "expirationDateTime": utc_text(now + SUBSCRIPTION), "clientState": secret}))
        made = answer.json()
        return Channel(str(made["id"]), None, graph_time(made["expirationDateTime"]))

    def unwatch(self, client: httpx2.Client, source: CalendarSource, channel_id: str, resource: str | None) -> None:
        answer = client.delete(f"subscriptions/{channel_id}")
        if answer.status_code != 404:
            checked(answer)

    def account(self, client: httpx2.Client, calendar_ref: str) -> str | None:
        return None  # the id token names the account (msal's preferred_username)


def told_enough(items: list[dict[str, Any]], known: StoredEvents) -> bool:
    """Whether the changes alone say what became of the stored events: not when a series master changed or went
    (its occurrences that went need not be listed), nor while stored events carry no series id (stored before they
    were kept: a series' master cannot be told apart from a single event)."""
    rows = [json.loads(data) for _, data in known.values()]
    if any("series" not in row for row in rows):
        return False
    masters = {row["id"] for row in rows if row.get("type") == "seriesMaster"}
    return not any(item.get("type") == "seriesMaster" or item["id"] in masters for item in items)


def pages(client: httpx2.Client, url: str) -> tuple[list[dict[str, Any]], str | None]:
    """Every page from `url` (a delta link or the first page), following nextLink up to the deltaLink; a link
    seen before would page in circles: the sync fails at once (the last busy time stands)."""
    items: list[dict[str, Any]] = []
    seen = {url}
    for _ in range(1000):
        page = checked(client.get(url, headers={"Prefer": 'outlook.timezone="UTC", odata.maxpagesize=200'})).json()
        items.extend(page.get("value", []))
        if page.get("@odata.nextLink"):
            url = page["@odata.nextLink"]
            if url in seen:
                raise RuntimeError("Microsoft Graph sent the same page link twice")
            seen.add(url)
            continue
        return items, page.get("@odata.deltaLink")
    raise RuntimeError("Microsoft Graph kept sending pages")


def checked(answer: httpx2.Response) -> httpx2.Response:
    if answer.status_code == 401:
        raise TokenRejected("Microsoft Graph refused the access token")
    waited = answer.headers.get("Retry-After")
    if answer.status_code == 429 or (answer.status_code in (503, 504) and waited):  # Graph's throttling
        raise Throttled(f"Microsoft Graph answered HTTP {answer.status_code} (throttled)",
                        retry_after(waited, datetime.now(UTC)))
    if answer.status_code >= 400:
        try:
            code = str(answer.json().get("error", {}).get("code", ""))[:100]
        except ValueError:
            code = ""
        raise GraphError(answer.status_code, code)
    return answer


def utc_text(moment: datetime, naive: bool = False) -> str:
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    return text if naive else text + "Z"


FRACTION = re.compile(r"(\.\d{6})\d+")


def graph_time(text: str, zone: str | None = None) -> datetime:
    """Graph's times have seven decimals and no offset: wall times of their `timeZone`, UTC as we ask, but an
    answer in another zone (a Windows name such as "Pacific Standard Time", or an IANA one) is read there."""
    parsed = datetime.fromisoformat(FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    if parsed.tzinfo is not None:
        return parsed
    named = load_zone(WINDOWS_TO_OLSON.get(zone, zone)) if isinstance(zone, str) and zone.upper() != "UTC" else None
    return instant(parsed, named) if named is not None else parsed.replace(tzinfo=UTC)


def kept(item: dict[str, Any]) -> dict[str, Any]:
    """What busy time needs of an event: no subject, body or attendees. An occurrence comes with its times and
    series only: what it does not say (None) is its master's."""
    start, end = item.get("start") or {}, item.get("end") or {}
    answer = (item.get("responseStatus") or {}).get("response")
    return {"id": item["id"], "start": start.get("dateTime"), "end": end.get("dateTime"),
            "zones": [start.get("timeZone"), end.get("timeZone")], "showAs": item.get("showAs"),
            "isAllDay": item.get("isAllDay"), "isCancelled": item.get("isCancelled"),
            "declined": None if answer is None else answer == "declined",
            "ours": str(item.get("transactionId") or "").startswith(MARK), "type": item.get("type"),
            "series": item.get("seriesMasterId")}


def busy_intervals(texts: list[str], zone: ZoneInfo, window: Interval, own: frozenset[str]) -> list[Interval]:
    events = [json.loads(text) for text in texts]
    masters = {e["id"]: e for e in events if e.get("type") == "seriesMaster"}
    found: list[Interval] = []
    for own_fields in events:
        if own_fields.get("type") == "seriesMaster":  # its times are its first occurrence's, listed on its own
            continue
        master = masters.get(own_fields.get("series")) or {}
        event = {k: master.get(k) if v is None else v for k, v in own_fields.items()}
        if (event["showAs"] in ("free", "workingElsewhere") or event["isCancelled"] or event["declined"]
                or event.get("ours") or event["id"] in own or not event["start"] or not event["end"]):
            continue
        if event["isAllDay"]:  # whole days, whatever zone the client wrote them in
            start = instant(date.fromisoformat(event["start"][:10]), zone)
            end = instant(date.fromisoformat(event["end"][:10]), zone)
        else:
            zones = event.get("zones") or [None, None]  # events stored before zones were kept are in UTC
            start, end = graph_time(event["start"], zones[0]), graph_time(event["end"], zones[1])
        if start < end and start < window[1] and end > window[0]:
            found.append((start, end))
    return merged(found)
