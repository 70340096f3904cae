"""Business settings at the console: everyone may look, only an owner may change anything.

GET  /console/{slug}/settings                  link, QR code, time off, reminders, branding, templates, config, staff
POST /console/{slug}/settings/{section}        time-off, time-off-delete, reminders, branding, templates, config, staff
POST /console/{slug}/settings/staff/{id}/off   switch an account off: its sessions and its apps' grants end

Every change is a config edit through `edit_config` (the staff API's and `nextslot load-config`'s path):
validated whole, applied in one transaction, refused with the field it is about.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from nextslot.core.accounts.staff import SignedIn, create_account, staff_accounts, switch_off
from nextslot.core.business import config_edits
from nextslot.core.business.config_export import exception_views, export_config
from nextslot.core.business.message_templates import template_problem
from nextslot.core.results import Rejected
from nextslot.languages.catalogs import LANGUAGES, NAMES
from nextslot.oauth.grants import end_account_grants
from nextslot.reminders.templates import DEFAULTS, EDITABLE
from nextslot.schemas.config import BusinessConfig, ExceptionConfig, ServiceConfig
from nextslot.schemas.config_text import ConfigTextError, read_config_text
from nextslot.schemas.service_rules import AssignmentConfig, CancellationPolicy, PartyConfig, SeriesConfig
from nextslot.server.console.session import Id, Staff, booking_service, checked_post, owner_only, render
from nextslot.server.page_context import HEX_COLOUR, PageBusiness

router = APIRouter(include_in_schema=False)
Edit = Callable[[BusinessConfig], BusinessConfig | Rejected]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SERVICE_NUMBERS = ("duration", "buffer_before", "buffer_after", "step", "min_notice", "horizon_days")


@router.get("/console/{slug}/settings")
def settings_page(request: Request, signed: Staff) -> Response:
    return settings_response(request, *signed)


def settings_response(request: Request, business: PageBusiness, staff: SignedIn, problem: Rejected | None = None,
                      section: str = "", typed: dict[str, str] | None = None, status: int = 200) -> Response:
    service = booking_service(request)
    config = service.read(export_config, business.id)
    accounts = service.read(staff_accounts, business.id) if staff.is_owner else []
    details = config.business.details
    # the public address, as on the share page and in the QR code: the Host header is whatever the request said
    page_url = request.app.state.settings.public_url.rstrip("/") + f"/b/{business.slug}"
    return render(request, "settings.html", {
        "business": business, "staff": staff, "active": "settings", "config": config, "problem": problem,
        "section": section, "typed": typed or {}, "accounts": accounts, "page_url": page_url,
        "closures": exception_views(config.closures), "days": DAYS,
        "resource_time_off": [(r, exception_views(r.exceptions)) for r in config.resources],
        "offsets": ", ".join(str(m) for m in config.business.reminder_offsets_minutes or []),
        "branding": details.get("page") if isinstance(details.get("page"), dict) else {},
        "page_language": details.get("language") or "", "languages": NAMES,
        "templates": {k: ((details.get("templates") or {}).get("en") or {}).get(k, "") for k in EDITABLE},
        "defaults": DEFAULTS["en"], "config_yaml": yaml.safe_dump(config.model_dump(mode="json", exclude_none=True),
                                                                 sort_keys=False, allow_unicode=True),
    }, status)



@router.post("/console/{slug}/settings/{section}")
async def change_settings(section: str, request: Request, signed: Staff) -> Response:
    business, staff = signed
    form = await checked_post(request, staff)
    owner_only(request, business, staff)
    change = CHANGES.get(section)
    if change is None:
        return settings_response(request, business, staff, Rejected("unknown_section", "No such settings."), status=404)
    outcome = await run_in_threadpool(change, request, business, form)
    if isinstance(outcome, Rejected):
        return await run_in_threadpool(settings_response, request, business, staff, outcome, section, form, 422)
    return RedirectResponse(f"/console/{business.slug}/settings?saved={section}#{section}", status_code=303)


@router.post("/console/{slug}/settings/staff/{account_id}/off")
async def switch_off_account(account_id: Id, request: Request, signed: Staff) -> Response:
    """Someone left: they sign in no more, their open sessions end, and so do the grants of apps they connected
    (claude.ai, ChatGPT...), which acted for them."""
    business, staff = signed
    form = await checked_post(request, staff)
    owner_only(request, business, staff)
    service = booking_service(request)
    done = await run_in_threadpool(switch_off, service.uow(), business.id, account_id, staff.account_id,
                                   service.now())
    if isinstance(done, Rejected):
        return await run_in_threadpool(settings_response, request, business, staff, done, "staff", form, 422)
    await run_in_threadpool(end_account_grants, service.uow(), business.id, account_id, service.now())
    return RedirectResponse(f"/console/{business.slug}/settings?saved=staff#staff", status_code=303)


def edit(request: Request, business: PageBusiness, change: Edit) -> BusinessConfig | Rejected:
    return config_edits.edit_config(booking_service(request).uow(), business.id, lambda _, config: change(config))


def add_time_off(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    try:
        off = ExceptionConfig(kind="closed", starts_at=local_time(form.get("starts_at")),
                              ends_at=local_time(form.get("ends_at")), reason=form.get("reason", ""))
    except (ValueError, ValidationError):
        return Rejected("invalid_time_off", "Give a start and an end, the end after the start.", "starts_at")
    if off.ends_at <= off.starts_at:
        return Rejected("invalid_time_off", "The end must come after the start.", "ends_at")
    resource = form.get("resource", "")
    if not resource:
        return config_edits.add_closure(booking_service(request).uow(), business.id, off)
    return config_edits.add_exception(booking_service(request).uow(), business.id, resource, off)


def local_time(text: str | None) -> datetime:
    return datetime.fromisoformat(str(text or ""))  # a datetime-local field: the business's wall time


def delete_time_off(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    resource, exception_id = form.get("resource", ""), form.get("id", "")
    if not resource:
        return config_edits.delete_closure(booking_service(request).uow(), business.id, exception_id)
    return config_edits.delete_exception(booking_service(request).uow(), business.id, resource, exception_id)


def set_reminders(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    offsets = offsets_from(form.get("offsets", ""))
    if isinstance(offsets, Rejected):
        return offsets
    return edit(request, business, lambda c: with_business(c, reminder_offsets_minutes=offsets))


def offsets_from(text: str) -> list[int] | Rejected:
    try:
        return sorted({int(part) for part in text.replace(" ", "").split(",") if part}, reverse=True)
    except ValueError:
        return Rejected("invalid_offsets", "Minutes before the appointment, separated by commas: 1440, 120.", "offsets")


def set_hours(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    """One resource's week, or every resource's at once (a business's default hours are not kept apart from
    its resources' own: `load-config` copies them onto each)."""
    week = {d: [p.strip() for p in text.split(",") if p.strip()] for d in DAYS if (text := form.get(f"hours.{d}", ""))}
    week = {d: spans for d, spans in week.items() if spans}
    resource = form.get("resource", "")
    if resource:
        return config_edits.set_hours(booking_service(request).uow(), business.id, resource, week)
    return edit(request, business, lambda c: c.model_copy(update={
        "hours": week, "resources": [r.model_copy(update={"hours": week}) for r in c.resources]}))


def set_service(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    """Length, buffers, start-time step, notice, horizon, reminders, party size and series of one service."""
    key = form.get("service", "")
    try:
        numbers = {name: int(form.get(name, "")) for name in SERVICE_NUMBERS}
    except ValueError:
        return Rejected("invalid_number", "Minutes and days are whole numbers.", "duration")
    offsets = offsets_from(form.get("offsets", "")) if form.get("offsets", "").strip() else None
    if isinstance(offsets, Rejected):
        return offsets

    def change(config: BusinessConfig) -> BusinessConfig | Rejected:
        current = next((s for s in config.services if s.key == key), None)
        if current is None:
            return Rejected("unknown_service", f"No active service '{key}' here.", "service")
        rules = party_and_series(current, form)
        if isinstance(rules, Rejected):
            return rules
        changed = current.model_copy(update={**numbers, "reminder_offsets_minutes": offsets, **rules})
        return config_edits.with_item(config, "services", changed)

    return edit(request, business, change)


def party_and_series(current: ServiceConfig, form: dict[str, str]) -> dict[str, Any] | Rejected:
    """The largest party a booking may be for (1: one person; the people take places of the service's first
    requirement unless the configuration says which) and how many times a series may repeat (0: no series).
    A field the form did not send leaves the setting as it is."""
    changes: dict[str, Any] = {}
    try:
        if (party := form.get("party_max", "").strip()):
            most = int(party)
            per_person = current.party.per_person if current.party else [current.requires[0].label]
            changes["party"] = None if most == 1 else PartyConfig(max=most, per_person=per_person)
        if (series := form.get("series_max", "").strip()):
            most = int(series)
            changes["series"] = (SeriesConfig(allowed=False) if most == 0 else None if most == 52
                                 else SeriesConfig(max_count=most))
    except ValueError:
        return Rejected("invalid_number", "People and times are whole numbers.", "party_max")
    except ValidationError as error:
        return config_edits.invalid_config(error)
    return changes


def set_cancellation(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    """The business's cancellation policy: cutoffs for customers' own channels, and late costs. An empty cutoff
    removes the policy (customers cancel and move freely)."""
    if not form.get("cutoff_hours", "").strip():
        return edit(request, business, lambda c: with_business(c, cancellation=None))
    currency = form.get("currency", "").strip().upper()
    given: dict[str, Any] = {
        "cutoff_hours": form.get("cutoff_hours", "").strip(), "late_cancel": form.get("late_cancel", "allow"),
        "keep_deposit": form.get("keep_deposit") == "yes",
        **({"move_cutoff_hours": form["move_cutoff_hours"].strip()} if form.get("move_cutoff_hours", "").strip()
           else {}),
        **{name: {"amount": form[name].strip(), "currency": currency}
           for name in ("late_fee", "no_show_fee") if form.get(name, "").strip()},
    }
    try:
        policy = CancellationPolicy.model_validate(given)
    except ValidationError as error:
        return config_edits.invalid_config(error)
    return edit(request, business, lambda c: with_business(c, cancellation=policy))


def set_assignment(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    """How one service picks among its pooled staff (weights stay as the configuration gives them)."""
    key, strategy = form.get("service", ""), form.get("strategy", "first_free")

    def change(config: BusinessConfig) -> BusinessConfig | Rejected:
        current = next((s for s in config.services if s.key == key), None)
        if current is None:
            return Rejected("unknown_service", f"No active service '{key}' here.", "service")
        weights = current.assignment.weights if current.assignment and strategy == "weighted" else {}
        try:
            chosen = AssignmentConfig(strategy=strategy, weights=weights)  # type: ignore[arg-type]
        except ValidationError as error:
            return config_edits.invalid_config(error)
        return config_edits.with_item(config, "services", current.model_copy(update={
            "assignment": None if chosen.strategy == "first_free" else chosen}))

    return edit(request, business, change)


def set_branding(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    page = {k: v.strip() for k in ("colour", "logo_url") if (v := form.get(k, "")).strip()}
    if "colour" in page and not HEX_COLOUR.match(page["colour"]):  # the page's own reading, or it is ignored there
        return Rejected("invalid_colour", "A colour is #rrggbb, e.g. #0b5cad.", "colour")
    if "logo_url" in page and not (page["logo_url"].startswith("https://") and len(page["logo_url"]) <= 2000):
        return Rejected("invalid_logo", "A logo is an https:// address of an image.", "logo_url")
    if "language" not in form:  # an older form: the page's language stays as it is
        return edit(request, business, lambda c: with_details(c, page=page or None))
    language = form["language"]
    if language and language not in LANGUAGES:
        return Rejected("invalid_language", f"The page's language is one of {', '.join(LANGUAGES)}.", "language")
    return edit(request, business, lambda c: with_details(c, page=page or None, language=language or None))


def set_templates(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    mine = {k: text for k in EDITABLE if (text := form.get(f"template.{k}", "").strip())}
    for kind, text in mine.items():
        if problem := template_problem(kind, text):
            return Rejected("invalid_template", f"The {kind.replace('_', ' ')} message does not work: {problem}.",
                            f"template.{kind}")
    return edit(request, business, lambda c: with_details(c, templates=merged_templates(c, mine)))


def merged_templates(config: BusinessConfig, english: dict[str, str]) -> dict[str, Any] | None:
    """English edited here; other languages' texts (from the config file) kept as they are."""
    current = dict(config.business.details.get("templates") or {})
    current["en"] = english
    return {lang: texts for lang, texts in current.items() if texts} or None


def set_config(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    try:
        given = BusinessConfig.model_validate(read_config_text(form.get("config", "")))
    except ConfigTextError as error:
        return Rejected("invalid_yaml", str(error), "config")
    except ValidationError as error:
        return config_edits.invalid_config(error)
    return config_edits.replace_config(booking_service(request).uow(), business.id, given)


def add_staff(request: Request, business: PageBusiness, form: dict[str, str]) -> Any:
    return create_account(booking_service(request).uow(), business.id, form.get("email", ""), form.get("name", ""),
                          form.get("role", "staff"), form.get("password", ""))


def with_business(config: BusinessConfig, **changes: Any) -> BusinessConfig:
    return config.model_copy(update={"business": config.business.model_copy(update=changes)})


def with_details(config: BusinessConfig, **changes: Any) -> BusinessConfig:
    details = {**config.business.details, **changes}
    return with_business(config, details={k: v for k, v in details.items() if v is not None})


CHANGES: dict[str, Callable[[Request, PageBusiness, dict[str, str]], Any]] = {
    "time-off": add_time_off, "time-off-delete": delete_time_off, "reminders": set_reminders,
    "hours": set_hours, "service": set_service, "branding": set_branding, "templates": set_templates,
    "config": set_config, "staff": add_staff, "cancellation": set_cancellation, "assignment": set_assignment,
}
