"""The staff console over HTTP (in-process app, frozen clock, the test database): sign-in, sessions, CSRF,
roles, tenancy, and every write going through the core."""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from nextslot.core.accounts.staff import create_account
from nextslot.core.results import Booked
from nextslot.schemas.commands import BookingChange, BookingCreate, CustomerIn
from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Booking, BookingHistory, Business
from nextslot.storage.uow import SqlAlchemyUnitOfWork

PASSWORD = "correct horse battery"
TUESDAY_NINE = "2026-11-24T09:00:00Z"  # the frozen clock says Monday 23 November 2026, 08:00 UTC


@pytest.fixture
def clients(service) -> Iterator[list[TestClient]]:
    made: list[TestClient] = []
    yield made
    for c in made:
        c.__exit__(None, None, None)


@pytest.fixture
def console(service, session_factory, clients) -> Callable[..., tuple[TestClient, str]]:
    """A signed-in console client for a business: `client, slug = console(business_id, role)`."""

    def sign_in(business_id: int, role: str = "owner", email: str | None = None) -> tuple[TestClient, str]:
        slug = slug_of(session_factory, business_id)
        email = email or f"{role}-{business_id}@example.com"
        create_account(SqlAlchemyUnitOfWork(session_factory), business_id, email, f"Sam {role}", role, PASSWORD)
        client = TestClient(create_app(Settings(secret_key="console-tests"), service=service), follow_redirects=False)
        clients.append(client.__enter__())
        answer = client.post(f"/console/{slug}/login", data={"email": email.upper(), "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        return client, slug

    return sign_in


def slug_of(session_factory, business_id: int) -> str:
    with session_factory() as s:
        return s.get(Business, business_id).slug


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def key_of(page: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', page).group(1)


def book_by_agent(service, business_id: int, at: str = TUESDAY_NINE, phone: str = "+447900950111") -> str:
    result = service.book(business_id, BookingCreate(service="consultation", starts_at=at, source="mcp",
                                                     customer=CustomerIn(name="Agent Caller", phone=phone)))
    assert isinstance(result, Booked), result
    return result.booking.code


def test_sign_in_refuses_a_wrong_password_and_an_unknown_email_alike(console, make_business):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    client.cookies.clear()
    wrong = client.post(f"/console/{slug}/login", data={"email": f"owner-{clinic}@example.com", "password": "nope" * 3})
    unknown = client.post(f"/console/{slug}/login", data={"email": "who@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert 'data-code="sign_in_failed"' in wrong.text and 'data-code="sign_in_failed"' in unknown.text
    assert client.get(f"/console/{slug}").status_code == 303


def test_wrong_passwords_from_many_addresses_lock_the_account_for_a_while_in_every_server_process(
        console, make_business, service, clients, clock, caplog):
    """Two apps stand for two server processes, each with its own per-address budget: the count is shared."""
    clinic = make_business("clinic")
    _, slug = console(clinic)
    email = f"owner-{clinic}@example.com"
    servers = []
    for _ in range(2):
        servers.append(TestClient(create_app(Settings(secret_key="console-tests"), service=service),
                                  follow_redirects=False))
        clients.append(servers[-1].__enter__())

    def try_password(n: int, password: str, who: str = email):
        return servers[n % 2].post(f"/console/{slug}/login", data={"email": who, "password": password})

    wrong = [try_password(n, f"guess number {n}") for n in range(5)]
    locked = try_password(5, PASSWORD)  # even the right password waits now
    unknown = [try_password(n, f"guess number {n}", "nobody@example.com") for n in range(6)]
    clock.now += timedelta(seconds=31)
    after_the_wait = try_password(6, PASSWORD)

    assert [w.status_code for w in wrong] == [401] * 5
    assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
    assert 'data-code="too_many_attempts"' in locked.text
    assert [u.status_code for u in unknown] == [401] * 5 + [429]  # an unknown email is locked alike
    assert after_the_wait.status_code == 303  # the lock ends on its own, and the count starts again
    logged = [r.getMessage() for r in caplog.records if r.name == "nextslot.core.accounts.staff"]
    assert len(logged) == 10 and "5 wrong in a row, locked for 0:00:30" in logged[4]
    assert not [line for line in logged if "guess number" in line or email in line]  # no password, a masked email


def test_the_lock_grows_with_each_wrong_try_and_stops_at_fifteen_minutes():
    from nextslot.core.accounts.staff import lockout

    assert [lockout(n).total_seconds() for n in (1, 4, 5, 6, 7, 10, 30)] == [0, 0, 30, 60, 120, 900, 900]


def test_a_signed_in_owner_sees_today_with_every_resource(console, make_business):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}")
    assert page.status_code == 200
    assert "Monday 23 November" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    for name in ("Dr Asha Patel", "Consultation room 1"):
        assert name in page.text


def test_without_a_session_every_page_asks_to_sign_in_and_every_write_is_refused(console, make_business, service):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic)
    client, slug = console(clinic)
    client.cookies.clear()
    answer = client.get(f"/console/{slug}/bookings/{code}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/{slug}/login?next=/console/{slug}/bookings/{code}"
    assert client.post(f"/console/{slug}/bookings/{code}/cancel", data={"csrf": "x"}).status_code == 401
    assert service.get_booking(clinic, code).status == "booked"


def test_staff_of_one_business_never_see_another(console, make_business, service):
    mine, theirs = make_business("clinic"), make_business("clinic")
    their_code = book_by_agent(service, theirs)
    client, my_slug = console(mine)
    their_slug = "-".join(my_slug.split("-")[:-1]) + "-" + slug_of(service.session_factory, theirs).split("-")[-1]
    cookie = client.cookies.get("nextslot_console")
    # the cookie is scoped to my console's path; sent anyway, it is no session at theirs
    client.cookies.set("nextslot_console", cookie, path=f"/console/{their_slug}")
    assert client.get(f"/console/{their_slug}").status_code == 303
    assert client.get(f"/console/{their_slug}/bookings/{their_code}").status_code == 303
    # and their booking's code means nothing at mine
    assert client.get(f"/console/{my_slug}/bookings/{their_code}").status_code == 404


def test_a_post_without_the_session_csrf_token_or_from_another_site_changes_nothing(console, make_business, service):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic)
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}/bookings/{code}").text
    assert client.post(f"/console/{slug}/bookings/{code}/cancel", data={"key": key_of(page)}).status_code == 403
    assert client.post(f"/console/{slug}/bookings/{code}/cancel", data={"csrf": csrf_of(page)},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert service.get_booking(clinic, code).status == "booked"


def test_a_staff_role_can_look_at_settings_but_not_change_them(console, make_business, session_factory):
    clinic = make_business("clinic")
    client, slug = console(clinic, "staff")
    page = client.get(f"/console/{slug}/settings")
    assert page.status_code == 200 and "only an owner can change settings" in page.text
    answer = client.post(f"/console/{slug}/settings/reminders", data={"csrf": csrf_of(page.text), "offsets": "30"})
    assert answer.status_code == 403
    with session_factory() as s:
        assert s.get(Business, clinic).details.get("reminder_offsets_minutes") != [30]


def test_an_owner_changes_reminders_branding_and_templates_and_a_broken_template_is_refused(
        console, make_business, session_factory):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    def save(section: str, **fields: str):
        return client.post(f"/console/{slug}/settings/{section}", data={"csrf": csrf, **fields})

    assert save("reminders", offsets="120, 1440").status_code == 303
    assert save("branding", colour="#7a1f5c").status_code == 303
    broken = save("templates", **{"template.reminder": "See you {{ wen }}"})
    assert broken.status_code == 422 and 'data-code="invalid_template"' in broken.text
    ours = "Hi {{ name }}, see you {{ when }} ({{ code }})."
    assert save("templates", **{"template.reminder": ours}).status_code == 303
    with session_factory() as s:
        details = s.get(Business, clinic).details
    assert details["reminder_offsets_minutes"] == [1440, 120]
    assert details["page"] == {"colour": "#7a1f5c"}
    assert details["templates"]["en"] == {"reminder": ours}
    assert "#7a1f5c" in client.get(f"/b/{slug}").text  # the public page wears it


def test_time_off_added_at_the_console_blocks_booking_on_every_channel(console, make_business, service):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    added = client.post(f"/console/{slug}/settings/time-off", data={
        "csrf": csrf, "resource": "", "starts_at": "2026-11-24T08:00", "ends_at": "2026-11-24T13:00",
        "reason": "Training"})
    assert added.status_code == 303
    result = service.book(clinic, BookingCreate(service="consultation", starts_at=TUESDAY_NINE, source="mcp",
                                                customer=CustomerIn(name="A", phone="+447900950222")))
    assert not isinstance(result, Booked)
    assert "Training" in client.get(f"/console/{slug}?date=2026-11-24").text


def test_an_invalid_configuration_is_refused_whole_with_the_field(console, make_business):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}/settings").text
    config = html.unescape(re.search(r"<textarea id=\"config-yaml\"[^>]*>(.*?)</textarea>", page, re.S).group(1))
    broken = config.replace("duration: 20", "duration: -5", 1)
    assert broken != config
    answer = client.post(f"/console/{slug}/settings/config", data={"csrf": csrf_of(page), "config": broken})
    assert answer.status_code == 422 and 'data-code="invalid_config"' in answer.text


def test_a_walk_in_is_booked_through_the_core_and_a_lost_race_offers_the_nearest_times(
        console, make_business, service, session_factory):
    clinic = make_business("clinic")
    client, slug = console(clinic, "staff")
    form = client.get(f"/console/{slug}/book/consultation/details?at={TUESDAY_NINE}")
    assert form.status_code == 200
    data = {"csrf": csrf_of(form.text), "key": key_of(form.text), "at": TUESDAY_NINE, "customer.name": "Walk In",
            "customer.phone": "07900 950333"}
    booked = client.post(f"/console/{slug}/book/consultation", data=data)
    assert booked.status_code == 303
    code = booked.headers["location"].split("/")[-1].split("?")[0]
    again_the_same = client.post(f"/console/{slug}/book/consultation", data=data)  # a double tap
    assert again_the_same.headers["location"] == booked.headers["location"]
    with session_factory() as s:
        booking = s.scalars(select(Booking).where(Booking.business_id == clinic, Booking.code == code)).one()
        history = s.scalars(select(BookingHistory).where(BookingHistory.booking_id == booking.id)).all()
        assert booking.source == "console" and [h.actor for h in history] == ["Sam staff"]
    # every doctor at 09:00 taken, then one more walk-in for 09:00 from a form rendered earlier
    while isinstance(service.book(clinic, BookingCreate(
            service="consultation", starts_at=TUESDAY_NINE, source="mcp",
            customer=CustomerIn(name="x", phone=f"+4479009504{len(history):02d}"))), Booked):
        history.append(None)
    again = client.get(f"/console/{slug}/book/consultation/details?at={TUESDAY_NINE}")
    lost = client.post(f"/console/{slug}/book/consultation",
                       data={**data, "key": key_of(again.text), "customer.phone": "07900 950334"})
    assert lost.status_code == 409 and 'data-code="slot_taken"' in lost.text and 'name="alt"' in lost.text


def test_confirm_move_no_show_and_cancel_from_the_booking_page(console, make_business, service, clock):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic, "2026-11-23T10:00:00Z")
    client, slug = console(clinic)

    def act(action: str, **fields: str):
        page = client.get(f"/console/{slug}/bookings/{code}").text
        return client.post(f"/console/{slug}/bookings/{code}/{action}",
                           data={"csrf": csrf_of(page), "key": key_of(page), **fields})

    assert act("confirm").status_code == 303
    assert service.get_booking(clinic, code).status == "confirmed"
    moved = act("move", at="2026-11-23T11:00:00Z")
    assert moved.status_code == 303 and service.get_booking(clinic, code).starts_at.utc.hour == 11
    early = act("no-show")
    assert early.status_code == 409  # not before the appointment has started
    clock.now += timedelta(hours=3, minutes=30)
    assert act("no-show").status_code == 303
    assert service.get_booking(clinic, code).status == "no_show"
    detail = client.get(f"/console/{slug}/bookings/{code}").text
    assert "rescheduled" in detail and "no show" in detail and "Sam owner" in detail


def test_the_calendar_fragment_changes_when_an_agent_books_and_answers_304_otherwise(console, make_business, service):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    url = f"/console/{slug}?date=2026-11-24&view=day&partial=1"
    first = client.get(url)
    tag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    code = book_by_agent(service, clinic)
    after = client.get(url, headers={"If-None-Match": tag})
    assert after.status_code == 200 and f'data-code="{code}"' in after.text


def test_the_page_carries_the_tag_it_was_rendered_with_so_a_booking_made_before_the_first_poll_shows(
        console, make_business, service):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}?date=2026-11-24&view=day")
    tag = re.search(r'data-etag="([^"]*)"', page.text)[1].replace("&#34;", '"')
    url = f"/console/{slug}?date=2026-11-24&view=day&partial=1"
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304  # unchanged: the page is left alone
    code = book_by_agent(service, clinic)  # between the render and the first poll
    after = client.get(url, headers={"If-None-Match": tag})
    assert after.status_code == 200 and f'data-code="{code}"' in after.text


def test_week_view_and_one_resource(console, make_business, service):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic)
    client, slug = console(clinic)
    week = client.get(f"/console/{slug}?date=2026-11-25&view=week")
    assert week.status_code == 200 and "Week of Monday 23 November" in week.text and code in week.text
    assert client.get(f"/console/{slug}?resource=nobody").status_code == 404
    one = client.get(f"/console/{slug}?date=2026-11-24&resource=dr-patel")
    assert one.status_code == 200 and one.text.count('class="colhead') == 1
    assert '<option value="dr-okafor">Dr Femi Okafor</option>' in one.text  # the others stay pickable


def test_a_session_ends_after_its_shift_and_at_sign_out(console, make_business, clock):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}").text
    assert client.post(f"/console/{slug}/logout", data={"csrf": csrf_of(page)}).status_code == 303
    assert client.get(f"/console/{slug}").status_code == 303
    client, slug = console(make_business("clinic"))
    clock.now += timedelta(hours=12, minutes=1)
    assert client.get(f"/console/{slug}").status_code == 303


def test_customers_show_no_shows_and_the_deposit_the_next_booking_will_ask(
        console, make_business, service, clock):
    clinic = make_business("clinic")
    codes = [book_by_agent(service, clinic, at, "+447900950555") for at in
             ("2026-11-24T09:00:00Z", "2026-11-24T11:00:00Z")]
    clock.now += timedelta(days=2)
    client, slug = console(clinic)
    for code in codes:
        page = client.get(f"/console/{slug}/bookings/{code}").text
        client.post(f"/console/{slug}/bookings/{code}/no-show", data={"csrf": csrf_of(page), "key": key_of(page)})
    listing = client.get(f"/console/{slug}/customers?q=agent")
    assert listing.status_code == 200 and "required" in listing.text
    customer = re.search(r'/customers/(\d+)"', listing.text).group(1)
    detail = client.get(f"/console/{slug}/customers/{customer}")
    assert "Required" in detail.text and "Did not come to" in detail.text


def test_an_owner_sets_hours_and_a_services_buffers_with_forms_and_availability_follows(
        console, make_business, service):
    from nextslot.schemas.commands import SlotQuery

    clinic = make_business("clinic")
    client, slug = console(clinic)
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    week = {f"hours.{d}": "" for d in ("mon", "wed", "thu", "fri", "sat", "sun")}
    assert client.post(f"/console/{slug}/settings/hours", data={
        "csrf": csrf, "resource": "dr-patel", **week, "hours.tue": "14:00-16:00"}).status_code == 303
    bad = client.post(f"/console/{slug}/settings/hours",
                      data={"csrf": csrf, "resource": "", "hours.tue": "25:00-26:00"})
    assert bad.status_code == 422 and 'data-code="invalid_config"' in bad.text
    changed = client.post(f"/console/{slug}/settings/service", data={
        "csrf": csrf, "service": "consultation", "duration": "30", "buffer_before": "10", "buffer_after": "5",
        "step": "15", "min_notice": "60", "horizon_days": "60", "offsets": "60"})
    assert changed.status_code == 303
    slots = service.find_slots(clinic, SlotQuery(service="consultation", starts_from="2026-11-24T00:00:00Z",
                                                 until="2026-11-25T00:00:00Z", resources=["dr-patel"], limit=50))
    starts = [s.starts_at.business_local.strftime("%H:%M") for s in slots.slots]
    assert starts[0] == "14:15" and starts[-1] == "15:15"  # 10 minutes prep first; 30 + 5 must end by 16:00
    [offered] = [s for s in service.list_services(clinic) if s.key == "consultation"]
    assert offered.duration_minutes == 30
    page = client.get(f"/console/{slug}/settings").text
    assert 'value="14:00-16:00"' in page
    assert client.post(f"/console/{slug}/settings/hours", data={  # every resource at once
        "csrf": csrf, "resource": "", "hours.tue": "10:00-12:00"}).status_code == 303
    slots = service.find_slots(clinic, SlotQuery(service="consultation", starts_from="2026-11-23T00:00:00Z",
                                                 until="2026-11-27T00:00:00Z", limit=200))
    assert {s.starts_at.business_local.strftime("%a") for s in slots.slots} == {"Tue"}
    assert all("10:00" <= s.starts_at.business_local.strftime("%H:%M") < "12:00" for s in slots.slots)


def test_a_live_hold_shows_on_the_calendar_as_held(console, make_business, service):
    from nextslot.core.results import Held
    from nextslot.schemas.commands import HoldCreate

    clinic = make_business("clinic")
    held = service.hold(clinic, HoldCreate(service="consultation", starts_at=TUESDAY_NINE, source="mcp"))
    assert isinstance(held, Held)
    client, slug = console(clinic)
    calendar = client.get(f"/console/{slug}?date=2026-11-24").text
    assert 'class="blk hold' in calendar and "Held" in calendar


def test_a_drop_on_the_calendar_moves_by_wall_time_and_an_impossible_drop_offers_free_times(
        console, make_business, service):
    clinic = make_business("clinic")
    code = book_by_agent(service, clinic)
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}/bookings/{code}").text

    def drop(local: str, key: str):
        return client.post(f"/console/{slug}/bookings/{code}/move",
                           data={"csrf": csrf_of(page), "key": key, "local": local})

    assert drop("2026-11-24T14:00", "drop-key-0000000001").status_code == 303
    assert service.get_booking(clinic, code).starts_at.business_local.strftime("%H:%M") == "14:00"
    closed = drop("2026-11-24T22:00", "drop-key-0000000002")  # after hours
    assert closed.status_code == 409 and ('data-code="slot_taken"' in closed.text or 'class="problem"' in closed.text)
    assert drop("not a time", "drop-key-0000000003").status_code == 422
    assert service.get_booking(clinic, code).starts_at.business_local.strftime("%H:%M") == "14:00"


def test_templates_that_fail_to_render_are_refused_from_the_form_and_from_the_yaml(
        console, make_business, session_factory):
    clinic = make_business("clinic")
    client, slug = console(clinic)
    page = client.get(f"/console/{slug}/settings").text
    csrf = csrf_of(page)
    form = client.post(f"/console/{slug}/settings/templates", data={"csrf": csrf, "template.reminder": "{{ 1/0 }}"})
    assert form.status_code == 422 and 'data-code="invalid_template"' in form.text and "divides by zero" in form.text
    config = yaml.safe_load(html.unescape(
        re.search(r"<textarea id=\"config-yaml\"[^>]*>(.*?)</textarea>", page, re.S).group(1)))
    config["business"]["details"]["templates"] = {"fr": {"cancelled": "{{ 'x' * 10**9 }}"}}
    answer = client.post(f"/console/{slug}/settings/config", data={"csrf": csrf, "config": yaml.safe_dump(config)})
    assert answer.status_code == 422 and 'data-code="invalid_config"' in answer.text
    assert "business.details.templates.fr.cancelled" in html.unescape(answer.text)
    with session_factory() as s:
        assert "templates" not in s.get(Business, clinic).details


def test_an_owner_sets_the_cancellation_policy_and_fair_assignment_and_every_channel_follows(
        console, make_business, service, clock):
    from nextslot.core.results import Rejected

    clinic = make_business("clinic")
    client, slug = console(clinic)
    csrf = csrf_of(client.get(f"/console/{slug}/settings").text)
    bad = client.post(f"/console/{slug}/settings/cancellation", data={
        "csrf": csrf, "cutoff_hours": "24", "late_fee": "-5", "currency": "GBP"})
    assert bad.status_code == 422 and 'data-code="invalid_config"' in bad.text
    saved = client.post(f"/console/{slug}/settings/cancellation", data={
        "csrf": csrf, "cutoff_hours": "48", "late_cancel": "refuse", "keep_deposit": "yes"})
    assert saved.status_code == 303
    page = client.get(f"/console/{slug}/settings").text
    assert 'name="cutoff_hours" type="number" min="0" value="48"' in page
    code = book_by_agent(service, clinic)
    refused = service.cancel(clinic, BookingChange(code=code, source="sms"))
    assert isinstance(refused, Rejected) and refused.code == "cancel_cutoff"
    assert client.post(f"/console/{slug}/settings/assignment", data={
        "csrf": csrf, "service": "consultation", "strategy": "round_robin"}).status_code == 303
    assert 'value="round_robin" selected' in client.get(f"/console/{slug}/settings").text
    assert client.post(f"/console/{slug}/settings/assignment", data={
        "csrf": csrf, "service": "consultation", "strategy": "sideways"}).status_code == 422
    cleared = client.post(f"/console/{slug}/settings/cancellation", data={"csrf": csrf, "cutoff_hours": ""})
    assert cleared.status_code == 303
    assert service.cancel(clinic, BookingChange(code=code, source="sms")).booking.status == "cancelled"


def test_the_console_tells_a_fall_back_nights_two_1_30s_apart_wherever_it_shows_them(
        console, make_business, service, clock):
    clock.now = datetime(2026, 10, 30, 12, tzinfo=UTC)
    owl = make_business({
        "business": {"slug": "owl", "name": "Owl Laundry", "timezone": "America/New_York", "country": "US"},
        "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "resources": [{"key": "m1", "name": "Machine", "kind": "device"}],
        "services": [{"key": "wash", "name": "Wash", "duration": 30, "step": 30, "min_notice": 0, "horizon_days": 60,
                      "requires": [{"label": "m", "one_of": ["m1"]}]}]})
    codes = [service.book(owl, BookingCreate(service="wash", starts_at=at, customer=CustomerIn(
        name=f"N{i}", phone=f"+1212555010{i}"))).booking.code
        for i, at in enumerate(("2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"))]  # 1:30 EDT, then 1:30 EST
    client, slug = console(owl)
    before, after = "Sun 01 Nov 01:30 before the clocks go back", "Sun 01 Nov 01:30 after the clocks go back"
    day = client.get(f"/console/{slug}?date=2026-11-01&view=day").text
    assert re.findall(r'<tr data-code="[^"]+">\s*<td>([^<]*)</td>', day) == [before, after]
    first, second = (html.unescape(client.get(f"/console/{slug}/bookings/{c}").text) for c in codes)
    assert f"<dt>When</dt><dd>{before}–Sun 01 Nov 01:00 after the clocks go back</dd>" in first  # not "01:30–01:00"
    assert f"<dt>When</dt><dd>{after}–Sun 01 Nov 02:00</dd>" in second
    assert f"Now: {after}." in html.unescape(client.get(f"/console/{slug}/bookings/{codes[1]}/move").text)
    details = html.unescape(client.get(f"/console/{slug}/book/wash/details?at=2026-11-01T06:00:00Z").text)
    assert '<p class="when">Sun 01 Nov 01:00 after the clocks go back</p>' in details
