"""Message texts: defaults in English, Spanish, French and German, overridable per business.

Templates are Jinja2 in a bounded sandbox (core/message_templates.py), because a business writes its own:
they can use the booking's fields and nothing else. Times are rendered in the customer's zone (else the
business's).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from nextslot.core.business.message_templates import render_text
from nextslot.reminders.text_fit import fits, fitted
from nextslot.schemas.spoken import AT, REPEATS, WEEKDAYS, spoken_day  # shared with the chat
from nextslot.schemas.times import repeat_note, spoken_time

log = logging.getLogger(__name__)

DEFAULTS: dict[str, dict[str, str]] = {
    "en": {
        "confirmation": "Hi {{ name }}, you're booked for {{ service }} at {{ business }} on {{ when }}. "
                        "Your code is {{ code }}. Reply C to confirm or X to cancel."
                        "{% if manage_url %} Change or cancel: {{ manage_url }} Add to your calendar: "
                        "{{ calendar_url }}{% endif %}",
        "waitlist_offer": "Good news, {{ name }}: {{ service }}{% if party | int > 1 %} for {{ party }} people{% endif %}"
                          " at {{ business }} on {{ when }} has just opened up. "
                          "Reply YES within {{ minutes }} minutes to book it{% if offer_url %} (or tap {{ offer_url }})"
                          "{% endif %}, or NO to keep waiting for another time.",
        "deposit_requested": "Hi {{ name }}, to confirm {{ service }} at {{ business }} on {{ when }}, please pay "
                             "the {{ deposit }} deposit by {{ pay_by }}: {{ pay_url }} (code {{ code }}).",
        "reminder": "Reminder: {{ service }} at {{ business }} on {{ when }} (code {{ code }}). "
                    "Reply C to confirm or X to cancel.",
        "rescheduled": "Your {{ service }} at {{ business }} has moved from {{ previous_when }} to {{ when }}. "
                       "Code {{ code }}.{% if manage_url %} Details: {{ manage_url }}{% endif %}",
        "cancelled": "Your {{ service }} at {{ business }} on {{ when }} is cancelled (code {{ code }}).",
        "staff_rescheduled": "{{ service }} with {{ customer }} (code {{ code }}) has moved from {{ previous_when }} "
                             "to {{ when }}.",
        "staff_cancelled": "Cancelled: {{ service }} with {{ customer }} on {{ when }} (code {{ code }}).",
        "business_webhook_disabled": "{{ business }}: your webhook endpoint {{ url }} (id {{ endpoint_id }}) was "
                                     "turned off on {{ when }}: {{ reason }}. Booking events are no longer sent "
                                     "to it. Once it answers again, turn it back on in the staff API: "
                                     "{{ reenable }}. Events from then on are sent; the ones missed are not.",
        "business_calendar_reconnect": "{{ business }}: {{ staff }}'s {{ provider }} calendar{% if account %} "
                                       "({{ account }}){% endif %} refused nextslot's connection on {{ when }} "
                                       "({{ reason }}). Until it is connected again, new events in it are not "
                                       "seen and bookings are not written into it; the busy time last read from "
                                       "it still blocks bookings. To reconnect: {{ reconnect }}.",
    },
    "es": {
        "confirmation": "Hola {{ name }}, tu cita de {{ service }} en {{ business }} es el {{ when }}. "
                        "Código {{ code }}. Responde C para confirmar o X para cancelar."
                        "{% if manage_url %} Cambiar o cancelar: {{ manage_url }} Añadir al calendario: "
                        "{{ calendar_url }}{% endif %}",
        "reminder": "Recordatorio: {{ service }} en {{ business }} el {{ when }} (código {{ code }}). "
                    "Responde C para confirmar o X para cancelar.",
        "rescheduled": "Tu cita de {{ service }} en {{ business }} pasa del {{ previous_when }} al {{ when }}. "
                       "Código {{ code }}.{% if manage_url %} Detalles: {{ manage_url }}{% endif %}",
        "cancelled": "Tu cita de {{ service }} en {{ business }} del {{ when }} está cancelada (código {{ code }}).",
        "waitlist_offer": "Buenas noticias, {{ name }}: se ha liberado {{ service }}{% if party | int > 1 %} para "
                          "{{ party }} personas{% endif %} en {{ business }} el {{ when }}. "
                          "Responde SÍ en {{ minutes }} minutos para reservarlo{% if offer_url %} (o toca {{ offer_url }}){% endif %}, "
                          "o NO para seguir esperando.",
        "deposit_requested": "Hola {{ name }}, para confirmar {{ service }} en {{ business }} el {{ when }}, paga "
                             "la señal de {{ deposit }} antes del {{ pay_by }}: {{ pay_url }} (código {{ code }}).",
    },
    "fr": {
        "confirmation": "Bonjour {{ name }}, votre rendez-vous {{ service }} chez {{ business }} est le {{ when }}. "
                        "Code {{ code }}. Répondez C pour confirmer ou X pour annuler."
                        "{% if manage_url %} Modifier ou annuler : {{ manage_url }} Ajouter à l'agenda : "
                        "{{ calendar_url }}{% endif %}",
        "reminder": "Rappel : {{ service }} chez {{ business }} le {{ when }} (code {{ code }}). "
                    "Répondez C pour confirmer ou X pour annuler.",
        "rescheduled": "Votre rendez-vous {{ service }} chez {{ business }} passe du {{ previous_when }} au "
                       "{{ when }}. Code {{ code }}.{% if manage_url %} Détails : {{ manage_url }}{% endif %}",
        "cancelled": "Votre rendez-vous {{ service }} chez {{ business }} du {{ when }} est annulé (code {{ code }}).",
        "waitlist_offer": "Bonne nouvelle, {{ name }} : {{ service }}{% if party | int > 1 %} pour {{ party }} "
                          "personnes{% endif %} chez {{ business }} le {{ when }} vient de se "
                          "libérer. Répondez OUI dans les {{ minutes }} minutes pour le réserver{% if offer_url %} (ou touchez "
                          "{{ offer_url }}){% endif %}, ou NON pour attendre un autre créneau.",
        "deposit_requested": "Bonjour {{ name }}, pour confirmer {{ service }} chez {{ business }} le {{ when }}, "
                             "réglez l'acompte de {{ deposit }} avant le {{ pay_by }} : {{ pay_url }} "
                             "(code {{ code }}).",
    },
    "de": {
        "confirmation": "Hallo {{ name }}, Ihr Termin {{ service }} bei {{ business }} ist am {{ when }}. "
                        "Code {{ code }}. Antworten Sie C zum Bestätigen oder X zum Absagen."
                        "{% if manage_url %} Ändern oder absagen: {{ manage_url }} In den Kalender: "
                        "{{ calendar_url }}{% endif %}",
        "reminder": "Erinnerung: {{ service }} bei {{ business }} am {{ when }} (Code {{ code }}). "
                    "Antworten Sie C zum Bestätigen oder X zum Absagen.",
        "rescheduled": "Ihr Termin {{ service }} bei {{ business }} wurde vom {{ previous_when }} auf den "
                       "{{ when }} verschoben. Code {{ code }}.{% if manage_url %} Details: {{ manage_url }}{% endif %}",
        "cancelled": "Ihr Termin {{ service }} bei {{ business }} am {{ when }} ist abgesagt (Code {{ code }}).",
        "waitlist_offer": "Gute Nachricht, {{ name }}: {{ service }}{% if party | int > 1 %} für {{ party }} "
                          "Personen{% endif %} bei {{ business }} am {{ when }} ist frei "
                          "geworden. Antworten Sie JA innerhalb von {{ minutes }} Minuten, um ihn zu buchen{% if offer_url %} "
                          "(oder tippen Sie auf {{ offer_url }}){% endif %}, oder NEIN, um weiter zu warten.",
        "deposit_requested": "Hallo {{ name }}, um {{ service }} bei {{ business }} am {{ when }} zu bestätigen, "
                             "zahlen Sie bitte die Anzahlung von {{ deposit }} bis {{ pay_by }}: {{ pay_url }} "
                             "(Code {{ code }}).",
    },
}
SUBJECTS = {
    "en": {"confirmation": "Booking confirmed", "reminder": "Appointment reminder", "rescheduled": "Appointment moved",
           "deposit_requested": "Deposit needed to confirm your booking", "waitlist_offer": "A time just opened up",
           "cancelled": "Appointment cancelled", "staff_rescheduled": "Booking moved",
           "staff_cancelled": "Booking cancelled", "business_webhook_disabled": "Webhook endpoint turned off",
           "business_calendar_reconnect": "A staff calendar needs reconnecting"},
    "es": {"confirmation": "Cita confirmada", "reminder": "Recordatorio de cita", "rescheduled": "Cita cambiada",
           "cancelled": "Cita cancelada"},
    "fr": {"confirmation": "Rendez-vous confirmé", "reminder": "Rappel de rendez-vous",
           "rescheduled": "Rendez-vous déplacé", "cancelled": "Rendez-vous annulé"},
    "de": {"confirmation": "Termin bestätigt", "reminder": "Terminerinnerung", "rescheduled": "Termin verschoben",
           "cancelled": "Termin abgesagt"},
}


def spoken_when(instant: datetime, zone: ZoneInfo, language: str) -> str:
    """The time in the customer's language; a wall time the clocks repeat says which of the two it is."""
    local = instant.astimezone(zone)
    if language not in WEEKDAYS:
        return spoken_time(instant, zone)
    day = spoken_day(local.weekday(), local.day, local.month, language)
    return f"{day} {AT[language]} {local:%H:%M}{repeat_note(local, REPEATS[language])}"


# embeddings, overrides and isolates (not the harmless marks LRM/RLM): one left open in a value turns the rest of
# the text around, e.g. a customer named '\u202eAnn' shows the staff "from ma 9 ta ..." instead of their times
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def plain_values(values: dict[str, str]) -> dict[str, str]:
    """The values without direction controls, so that none reaches past its place in the message."""
    return {k: DIRECTION_CONTROLS.sub("", v) if isinstance(v, str) else v for k, v in values.items()}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    text: str  # the body for SMS and WhatsApp: the same one, unless that is longer than Twilio takes


def render(kind: str, language: str, values: dict[str, str], overrides: dict[str, dict[str, str]] | None = None,
           business_id: int | None = None) -> Rendered:
    """The business's own template for this kind and language if it has one that renders, else ours; for a text
    message, one that fits: the same with its names shortened, else ours (shortened too if need be)."""
    language = language if language in DEFAULTS else "en"
    title = SUBJECTS[language].get(kind) or SUBJECTS["en"].get(kind, kind)
    subject = f"{title} - {values.get('business', '')}".strip(" -")
    default = DEFAULTS[language].get(kind) or DEFAULTS["en"][kind]  # staff and business notices: English for now
    mine, body = None, None
    try:  # stored templates were checked, but an older row (or a value unlike the samples) may still fail
        mine = overrides.get(language, {}).get(kind) if overrides else None
        if mine:
            body = render_text(mine, values)
    except Exception as error:  # noqa: BLE001 - one business's template must not stop its message, nor others'
        log.warning("business %s: its %s template (%s) failed (%s); sent ours instead", business_id, kind,
                    language, type(error).__name__)  # the type only: the error's text may quote the customer
    if body is not None and (text := body if fits(body) else fitted(mine, values)) is not None:
        if text != body:
            log.warning("business %s: its %s message (%s) was too long for a text message; its names were "
                        "shortened there", business_id, kind, language)
        return Rendered(subject, body, text)
    if body is not None:
        log.warning("business %s: its %s template (%s) is too long for a text message even with the names "
                    "shortened; ours went by SMS and WhatsApp", business_id, kind, language)
    ours = render_text(default, values)
    text = ours if fits(ours) else fitted(default, values)
    if text != ours:
        log.warning("business %s: the %s message (%s) was too long for a text message; its names were shortened "
                    "there", business_id, kind, language)
    return Rendered(subject, body if body is not None else ours, text or ours)  # none fits: the channel cuts it


EDITABLE = ("confirmation", "reminder", "rescheduled", "cancelled", "waitlist_offer", "deposit_requested")
