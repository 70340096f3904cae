"""Refusals as a visitor reads them, in their language. English pages show the core's own sentence (it can
name the exact value); other languages get the sentence for its reason code from the catalogs, and a reason we
have no sentence for keeps the core's English rather than saying something vaguer."""
from __future__ import annotations

from dataclasses import replace

from nextslot.languages import gettext
from nextslot.languages.catalogs import N_
from nextslot.server.booking_form import Problem

BY_CODE = {
    "contact_required": N_("Give a phone number or an email address, so we can send your confirmation."),
    "invalid_phone": N_("That is not a valid phone number; give it with the country code, e.g. +34 612 345 678."),
    "invalid_email": N_("That is not a valid email address."),
    "intake_required": N_("Please answer this question."),
    "intake_invalid": N_("Please check this answer."),
    "in_past": N_("That time has already passed. Pick another time."),
    "too_soon": N_("That time is too soon to book online. Pick a later time."),
    "beyond_horizon": N_("That time is too far ahead to book yet. Pick an earlier time."),
    "outside_hours": N_("That time is not open for booking. Pick a time from the list."),
    "off_slot_step": N_("Pick a time from the list."),
    "invalid_time": N_("Pick a time from the list."),
    "form_expired": N_("This form has expired. Please check your details and send it again."),
    "unknown_service": N_("The service is no longer offered."),
    "booking_in_past": N_("This appointment is already over."),
    "booking_not_active": N_("This booking can no longer be changed."),
    "cancel_cutoff": N_("It is too close to the appointment to cancel it here. Please contact the business."),
    "move_cutoff": N_("It is too close to the appointment to move it here. Please contact the business."),
    "window_reversed": N_("The last day comes before the first one."),
    "window_in_past": N_("Those days are already over."),
    "invalid_dates": N_("Give the first and last day that would suit you."),
    "too_many_bookings": N_("No more bookings can be made online with these details for now. Please contact the "
                            "business to book more."),
}
BY_ERROR = {  # pydantic's error types for a field of the form
    "missing": N_("%(field)s: please fill this in."),
    "string_too_short": N_("%(field)s: please fill this in."),
    "string_too_long": N_("%(field)s: this is too long."),
}
OTHER_ERROR = N_("%(field)s: please check this.")
LABELS = {"customer.name": N_("Your name"), "customer.phone": N_("Mobile phone"), "customer.email": N_("Email"),
          "earliest_date": N_("From"), "latest_date": N_("Until"), "day_start": N_("Not before (time of day)"),
          "day_end": N_("Finished by")}


def translated(problem: Problem, language: str) -> Problem:
    """The problem as the page shows it in the language (English: exactly the sentence given)."""
    if language == "en":
        return problem
    if problem.error_type is not None:  # the form's own check of one field
        label = LABELS.get(problem.field or "")
        field = gettext(language, label) if label else (problem.field or "")
        return replace(problem, message=gettext(language, BY_ERROR.get(problem.error_type, OTHER_ERROR),
                                                field=field))
    if problem.code in BY_CODE:
        return replace(problem, message=gettext(language, BY_CODE[problem.code]))
    return problem
