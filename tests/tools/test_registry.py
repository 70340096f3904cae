"""Every tool through `execute`, in-process: the one path every export (MCP, OpenAI, voice) shares."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from nextslot.core.business.catalog import DAYS
from nextslot.storage.tables import Booking, WaitlistEntry
from nextslot.tools.context import ToolContext
from nextslot.tools.registry import TOOLS, execute, untitled

TUESDAY = "2026-11-24"  # the frozen clock stands on Monday 23 November 2026, 08:00 UTC
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
def clinic(make_business) -> int:
    return make_business("clinic")


@pytest.fixture
def ctx(service, clinic) -> ToolContext:
    return ToolContext(service=service, business_id=clinic, channel="test")


def call(ctx: ToolContext, name: str, **args):
    return execute(name, args, ctx)


def first_slot(ctx: ToolContext, **args) -> dict:
    reply = call(ctx, "find_available_slots", service="consultation", date=TUESDAY, **args)
    assert reply.ok, reply.data
    return reply.data["slots"][0]


def book(ctx: ToolContext, starts_at: str, name: str = "Ann Lee", phone: str = "07911 123456", **args):
    return call(ctx, "book_appointment", service="consultation", starts_at=starts_at, customer_name=name,
                phone=phone, **args)


def error_code(reply) -> str:
    assert not reply.ok, reply.data
    return reply.data["error"]["code"]


def test_every_tool_has_a_strict_input_schema_an_output_schema_and_a_description():
    assert set(TOOLS) == {"list_services", "get_business_info", "find_available_slots", "hold_slot",
                          "book_appointment", "book_series", "reschedule_appointment", "cancel_appointment",
                          "confirm_appointment", "find_appointments", "join_waitlist", "customer_history"}
    for spec in TOOLS.values():
        assert spec.input_schema()["additionalProperties"] is False
        assert "say" in spec.output_schema()["properties"]
        assert len(spec.description) > 60


def test_published_schemas_carry_no_generated_titles_and_lose_nothing_else():
    def titles(schema: Any) -> int:  # "title" keywords where a schema is, not a property or a value so named
        if isinstance(schema, list):
            return sum(titles(item) for item in schema)
        if not isinstance(schema, dict):
            return 0
        return ("title" in schema) + sum(
            sum(titles(sub) for sub in value.values()) if key in ("properties", "$defs") else titles(value)
            for key, value in schema.items() if key not in ("default", "enum", "const", "examples"))

    for spec in TOOLS.values():
        for published, generated in ((spec.input_schema(), spec.input_model.model_json_schema()),
                                     (spec.output_schema(), spec.output_model.model_json_schema(
                                         by_alias=True, mode="serialization"))):
            assert titles(generated) > 0 and titles(published) == 0, spec.name
            assert set(published.get("properties", {})) == set(generated.get("properties", {}))
            assert published.get("required") == generated.get("required")
            assert len(json.dumps(published)) < len(json.dumps(generated))
    kept = {"type": "object", "title": "Note", "properties": {"title": {"type": "string", "title": "Title"}},
            "default": {"title": "Dr"}, "$defs": {"title": {"type": "string"}}}
    assert untitled(kept) == {"type": "object", "properties": {"title": {"type": "string"}},
                              "default": {"title": "Dr"}, "$defs": {"title": {"type": "string"}}}


def test_every_tool_declares_what_a_call_does_and_the_declarations_agree():
    for spec in TOOLS.values():
        e = spec.effects
        assert all(isinstance(v, bool) for v in (e.read_only, e.destructive, e.idempotent, e.open_world)), spec.name
        assert not (e.read_only and e.destructive) and (e.idempotent or not e.read_only), spec.name
    reads = {name for name, spec in TOOLS.items() if spec.read_only}
    assert reads == {"list_services", "get_business_info", "find_available_slots", "find_appointments",
                     "customer_history"}
    assert {name for name, spec in TOOLS.items() if spec.effects.destructive} == {
        "cancel_appointment", "reschedule_appointment"}
    assert not any(spec.effects.open_world for spec in TOOLS.values())


def test_services_and_business_info_come_from_the_configuration(ctx):
    services = call(ctx, "list_services")
    assert [s["key"] for s in services.data["services"]] == ["consultation", "ultrasound"]
    assert "Dr Asha Patel" in services.data["services"][0]["staff"]
    info = call(ctx, "get_business_info").data
    assert info["address"].startswith("12 Riverside Walk") and "24 hours" in info["policies"]
    hours = {d["day"]: d["hours"] for d in info["opening_hours"]}
    assert hours["Thursday"] == ["08:30-20:00"] and hours["Sunday"] == []
    assert any(c["reason"] == "Christmas" for c in info["closures"])


def opening_hours_of(service, make_business, hours: dict[str, list[str]]) -> dict[str, list[str]]:
    """What get_business_info says of a one-person London business open at `hours`."""
    business = make_business({
        "business": {"slug": "hours", "name": "Hours", "timezone": "Europe/London", "country": "GB"},
        "hours": hours, "resources": [{"key": "a", "name": "A", "kind": "staff"}],
        "services": [{"key": "s", "name": "S", "duration": 30, "requires": [{"label": "x", "one_of": ["a"]}]}]})
    info = call(ToolContext(service=service, business_id=business, channel="test"), "get_business_info").data
    return {d["day"]: d["hours"] for d in info["opening_hours"]}


def test_a_business_open_around_the_clock_is_open_all_day_every_day_even_across_a_clock_change(
    service, make_business, clock
):
    clock.now = datetime(2026, 10, 22, 12, tzinfo=UTC)  # the week ahead has Sunday 25 October's 25 hours
    shown = opening_hours_of(service, make_business, {d: ["00:00-24:00"] for d in WEEK})
    assert shown == {day: ["00:00-24:00"] for day in DAYS}


def test_each_day_shows_its_own_hours_when_one_day_runs_up_to_midnight_and_the_next_starts_there(
    service, make_business
):
    shown = opening_hours_of(service, make_business, {"mon": ["18:00-24:00"], "tue": ["00:00-02:00", "09:00-12:00"]})
    assert shown["Monday"] == ["18:00-24:00"] and shown["Tuesday"] == ["00:00-02:00", "09:00-12:00"]
    assert not any(shown[day] for day in DAYS[2:])


def test_a_booking_is_spoken_with_its_code_spaced_and_the_time_as_a_phrase(ctx):
    slot = first_slot(ctx)
    reply = book(ctx, slot["starts_at"])
    a = reply.data["appointment"]
    assert reply.data["outcome"] == "booked" and a["spoken"] == "Tuesday 24 November at 8:30 am"
    assert a["code_spoken"] in reply.say and "8:30 am" in reply.say and a["with"][0] == "Dr Asha Patel"


def test_the_second_caller_for_a_time_gets_the_nearest_openings_as_data(ctx):
    slot = first_slot(ctx)
    assert book(ctx, slot["starts_at"]).data["outcome"] == "booked"
    lost = book(ctx, slot["starts_at"], name="Bob Ray", phone="07911 123457", staff="Dr Patel")
    assert lost.ok and lost.data["outcome"] == "slot_taken" and lost.data["appointment"] is None
    assert len(lost.data["alternatives"]) == 3 and slot["starts_at"] not in {
        s["starts_at"] for s in lost.data["alternatives"]}
    assert lost.data["alternatives"][0]["spoken"] in lost.say


def test_a_caller_in_another_zone_hears_times_in_their_zone(ctx):
    slot = first_slot(ctx, caller_timezone="America/New_York")
    assert slot["starts_at"] == "2026-11-24T03:30:00-05:00" and slot["timezone"] == "America/New_York"
    reply = book(ctx, slot["starts_at"], caller_timezone="America/New_York")
    assert reply.data["appointment"]["spoken"] == "Tuesday 24 November at 3:30 am"


def test_times_of_day_and_staff_narrow_the_offer_and_an_empty_window_offers_the_next_openings(ctx):
    afternoon = call(ctx, "find_available_slots", service="consultation", date=TUESDAY, earliest_time="14:00",
                     latest_time="15:00", staff="okafor").data
    assert afternoon["slots"] == []  # Dr Okafor does not work on Tuesdays
    assert afternoon["next_openings"][0]["spoken"].startswith("Wednesday 25 November at 2 pm")
    assert afternoon["next_openings"][0]["with"][0] == "Dr Femi Okafor"
    starts = [s["starts_at"][11:16] for s in call(ctx, "find_available_slots", service="consultation", date=TUESDAY,
                                                    earliest_time="14:00", latest_time="15:00", limit=20).data["slots"]]
    assert starts[0] == "14:00" and starts[-1] == "15:00"


def test_model_mistakes_come_back_as_errors_to_act_on(ctx):
    hallucinated = call(ctx, "find_available_slots", service="flu jab")
    assert error_code(hallucinated) == "unknown_service"
    assert hallucinated.data["error"]["suggestions"] == ["consultation", "ultrasound"]
    assert call(ctx, "find_available_slots", service="scan").data["error"]["suggestions"] == ["ultrasound"]
    assert call(ctx, "list_services").ok and call(ctx, "find_available_slots", service="GP Consultation").ok
    naive = book(ctx, "2026-11-24T10:00:00")
    assert error_code(naive) == "missing_timezone" and naive.data["error"]["field"] == "starts_at"
    assert book(ctx, "2026-11-24T10:00:00", timezone="Europe/London").data["outcome"] == "booked"
    wrong = call(ctx, "book_appointment", servce="consultation", starts_at="tomorrow at 5", customer_name=3)
    assert error_code(wrong) == "invalid_arguments"
    message = wrong.data["error"]["message"]
    assert "service is required" in message and "servce is not a parameter" in message and "starts_at" in message
    assert error_code(execute("book_appointment", "{not json", ctx)) == "invalid_json"
    assert error_code(execute("book_appointment", "[1, 2]", ctx)) == "invalid_arguments"
    unknown = execute("book", {}, ctx)
    assert error_code(unknown) == "unknown_tool" and "book_appointment" in unknown.data["error"]["suggestions"]
    assert error_code(book(ctx, first_slot(ctx)["starts_at"], phone="12")) == "invalid_phone"
    assert error_code(call(ctx, "find_available_slots", service="consultation", staff="Dr Who")) == "unknown_resource"


def test_a_local_phone_number_is_read_in_the_business_country(ctx):
    slot = first_slot(ctx)
    book(ctx, slot["starts_at"], phone="07911 123456")
    found = call(ctx, "find_appointments", phone="+44 7911 123456").data["appointments"]
    assert len(found) == 1 and found[0]["customer_name"] == "Ann Lee"


def test_a_mistyped_code_is_refused_and_the_callers_own_near_codes_are_offered(ctx, service):
    code = book(ctx, first_slot(ctx)["starts_at"]).data["appointment"]["code"]
    typo = code[:-1] + ("A" if code[-1] != "A" else "C")
    assert error_code(call(ctx, "cancel_appointment", code=typo)) == "unknown_booking"
    assert "O" in call(ctx, "find_appointments", code="K7MO4P").data["error"]["message"]  # never in a code
    found = call(ctx, "find_appointments", code=typo, phone="07911123456").data
    assert found["near_codes"] == [code] and code in found["say"]
    spaced = f"{code[:3].lower()} - {code[3:]}"
    assert call(ctx, "confirm_appointment", code=spaced).data["outcome"] == "confirmed"


def test_change_tools_reschedule_confirm_and_cancel_through_the_core(ctx, session_factory):
    slots = call(ctx, "find_available_slots", service="consultation", date=TUESDAY).data["slots"]
    code = book(ctx, slots[0]["starts_at"]).data["appointment"]["code"]
    moved = call(ctx, "reschedule_appointment", code=code, new_starts_at=slots[2]["starts_at"])
    assert moved.data["outcome"] == "rescheduled" and moved.data["appointment"]["starts_at"] == slots[2]["starts_at"]
    assert call(ctx, "confirm_appointment", code=code).data["appointment"]["status"] == "confirmed"
    cancelled = call(ctx, "cancel_appointment", code=code, reason="feeling better")
    assert cancelled.data["outcome"] == "cancelled" and cancelled.data["already"] is False
    assert call(ctx, "cancel_appointment", code=code).data["already"] is True
    assert error_code(call(ctx, "reschedule_appointment", code=code, new_starts_at=slots[3]["starts_at"])) == \
        "booking_not_active"
    assert call(ctx, "find_appointments", phone="07911123456").data["appointments"][0]["status"] == "cancelled"


def test_a_retry_with_the_same_idempotency_key_never_books_twice(ctx, session_factory):
    slot = first_slot(ctx)
    first = book(ctx, slot["starts_at"], idempotency_key="call-1-book")
    again = book(ctx, slot["starts_at"], idempotency_key="call-1-book")
    assert again.data["replayed"] is True and again.data["appointment"] == first.data["appointment"]
    platform = ToolContext(ctx.service, ctx.business_id, "vapi", idempotency_key="vapi:tc-9")
    other = first_slot(ctx)
    one, two = (execute("book_appointment", {"service": "consultation", "starts_at": other["starts_at"],
                                             "customer_name": "Cy", "phone": "07911123459"}, platform)
                for _ in range(2))
    assert one.data["appointment"]["code"] == two.data["appointment"]["code"] and two.data["replayed"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == ctx.business_id)) == 2


def test_hold_then_book_converts_the_hold(ctx):
    slot = first_slot(ctx)
    held = call(ctx, "hold_slot", service="consultation", starts_at=slot["starts_at"]).data
    assert held["outcome"] == "held" and held["expires_in_seconds"] == 300
    other = book(ctx, slot["starts_at"], name="Dee", phone="07911123458", staff="Dr Patel")
    assert other.data["outcome"] == "slot_taken"  # the hold keeps Dr Patel's 8:30 for the caller
    mine = book(ctx, slot["starts_at"], hold_id=held["hold_id"])
    assert mine.data["outcome"] == "booked" and mine.data["appointment"]["with"] == held["slot"]["with"]


def test_the_voice_callers_number_is_used_when_the_model_gives_none(ctx):
    voice = ToolContext(ctx.service, ctx.business_id, "vapi", caller_phone="+447911123450")
    reply = execute("book_appointment", {"service": "consultation", "starts_at": first_slot(ctx)["starts_at"],
                                         "customer_name": "Eve"}, voice)
    assert reply.data["outcome"] == "booked"
    assert len(execute("find_appointments", {}, voice).data["appointments"]) == 1


def test_joining_the_waitlist_twice_with_the_same_wish_is_one_entry(ctx, session_factory):
    args = dict(service="ultrasound", customer_name="Fay", phone="07911123451", earliest_date="2026-11-25",
                latest_date="2026-11-28", earliest_time="09:00", staff="Dr Okafor")
    first, second = call(ctx, "join_waitlist", **args), call(ctx, "join_waitlist", **args)
    assert first.data["outcome"] == "waitlisted" and first.data["waitlist_id"] == second.data["waitlist_id"]
    assert first.data["earliest_time"] == "09:00" and first.data["latest_time"] == "24:00"
    with session_factory() as s:
        entry = s.get(WaitlistEntry, first.data["waitlist_id"])
        assert entry.status == "waiting" and len(entry.preferred_resource_ids) == 1
    assert error_code(call(ctx, "join_waitlist", **{**args, "latest_date": "2026-11-20"})) == "window_reversed"
    assert error_code(call(ctx, "join_waitlist", **{**args, "earliest_time": "12:00", "latest_time": "12:20"})) == \
        "window_too_short"
    overnight = call(ctx, "join_waitlist", **{**args, "earliest_time": "22:00", "latest_time": "02:00"})
    assert error_code(overnight) == "window_reversed" and "second wish" in overnight.data["error"]["message"]


def test_one_business_never_sees_another_business_bookings(ctx, service, make_business):
    code = book(ctx, first_slot(ctx)["starts_at"]).data["appointment"]["code"]
    garage = ToolContext(service, make_business("garage"), "test")
    for name, args in (("cancel_appointment", {"code": code}), ("confirm_appointment", {"code": code}),
                       ("reschedule_appointment", {"code": code, "new_starts_at": "2026-11-24T15:00:00+00:00"})):
        assert error_code(execute(name, args, garage)) == "unknown_booking"
    assert error_code(execute("find_appointments", {"code": code}, garage)) == "unknown_booking"
    assert execute("find_appointments", {"phone": "+447911123456"}, garage).data["appointments"] == []
    assert call(ctx, "find_appointments", code=code).data["appointments"][0]["status"] == "booked"


def test_agents_see_a_services_questions_and_deposit_and_book_with_answers_pending_payment(service, make_business):
    garage = ToolContext(service=service, business_id=make_business("garage"), channel="test")
    services = {s["key"]: s for s in call(garage, "list_services").data["services"]}
    van = services["mobile-repair"]
    assert van["deposit"] == "$25.00"
    assert [(q["key"], q["required"]) for q in van["questions"]] == [
        ("address", True), ("problem", True), ("drivable", False)]
    assert services["oil-change"]["questions"][2]["options"] == ["Standard", "Synthetic blend", "Full synthetic"]

    base = dict(service="mobile-repair", starts_at="2026-11-24T10:00:00-05:00", customer_name="Ada",
                phone="+12125550190")
    missing = call(garage, "book_appointment", **base, answers=[{"question": "address", "answer": "1 Elm St"}])
    assert error_code(missing) == "intake_required" and missing.data["error"]["field"] == "intake.problem"
    reply = call(garage, "book_appointment", **base, answers=[
        {"question": "address", "answer": "1 Elm St"}, {"question": "problem", "answer": "Flat battery"},
        {"question": "drivable", "answer": "no"}])
    assert reply.ok, reply.data
    appointment = reply.data["appointment"]
    assert appointment["status"] == "pending_payment" and appointment["deposit_due"] == "$25.00"
    assert "$25.00 deposit" in reply.data["say"] and "payment link" in reply.data["say"]
    stored = service.get_booking(garage.business_id, appointment["code"])
    assert stored.intake == {"address": "1 Elm St", "problem": "Flat battery", "drivable": False}


# --- bad input and bugs (issue 14): a structured error, nothing written, no internal text ------------------


def bookings_of(session_factory, business_id: int) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(Booking).where(Booking.business_id == business_id))


@pytest.mark.parametrize("name, args, field", [
    ("find_available_slots", {"service": "consultation", "date": "9999-12-31", "days": 31}, "date"),
    ("find_available_slots", {"service": "consultation", "date": "0001-01-01"}, "date"),
    ("find_available_slots", {"service": "consult\u0000ation"}, "service"),
    ("hold_slot", {"service": "consultation", "starts_at": "9999-12-31T23:00:00+00:00"}, "starts_at"),
    ("hold_slot", {"service": "consultation", "starts_at": "0001-01-01T00:00:00", "timezone": "America/New_York"},
     "starts_at"),
    ("book_appointment", {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
                          "customer_name": "Ann\u0000Lee", "phone": "07911 123456"}, "customer_name"),
    ("book_appointment", {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
                          "customer_name": "Ann Lee", "phone": "07911 123456", "notes": "gate \u0000 code"}, "notes"),
    ("book_appointment", {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
                          "customer_name": "Ann Lee", "phone": "07911 123456", "hold_id": 2**63}, "hold_id"),
    ("book_appointment", {"service": "consultation", "starts_at": "2026-11-24T09:00:00+00:00",
                          "customer_name": "Ann Lee", "phone": "07911 123456", "idempotency_key": "k\u0000"},
     "idempotency_key"),
    ("join_waitlist", {"service": "consultation", "customer_name": "Ann\u0000", "phone": "07911 123456",
                       "earliest_date": TUESDAY, "latest_date": TUESDAY}, "customer_name"),
])
def test_out_of_range_years_nul_bytes_and_ids_beyond_bigint_are_invalid_arguments(ctx, session_factory, clinic,
                                                                                  name, args, field):
    reply = execute(name, args, ctx)  # before: OverflowError, or psycopg's DataError with the SQL in it
    assert error_code(reply) == "invalid_arguments" and reply.data["error"]["field"] == field
    assert bookings_of(session_factory, clinic) == 0


def test_a_number_too_long_to_read_is_invalid_json_not_an_exception(ctx):
    reply = execute("book_appointment", '{"hold_id": ' + "9" * 5000 + "}", ctx)
    assert error_code(reply) == "invalid_json" and "set_int_max_str_digits" not in reply.text()


def test_a_bug_in_a_tool_answers_a_reference_and_logs_the_traceback_under_it(ctx, monkeypatch, caplog):
    from sqlalchemy.exc import DataError

    def broken(*args, **kwargs):
        raise DataError("SELECT * FROM customers WHERE phone = %(phone)s", {"phone": "+447911123456"}, Exception())

    monkeypatch.setattr(ctx.service, "find_slots", broken)
    reply = call(ctx, "find_available_slots", service="consultation")
    assert error_code(reply) == "internal_error"
    for secret in ("SELECT", "+447911123456", "DataError", "sqlalchemy"):
        assert secret not in reply.text()
    logged = [r for r in caplog.records if r.name == "nextslot.incidents"]
    assert logged and logged[0].exc_info and logged[0].getMessage().split()[2] in reply.data["error"]["message"]
