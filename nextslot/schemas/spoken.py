"""Times spoken the local way in the languages customers get answers in: English, Spanish, French, German.

'Tuesday 25 November at 5:30 pm', 'martes 25 de noviembre a las 17:30', 'mardi 25 novembre à 17h30',
'Dienstag, 25. November um 17:30'; a wall time a fall-back night shows twice says which of the two it is.
"""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from nextslot.schemas.times import repeat_note, spoken_time

LANGUAGES = ("en", "es", "fr", "de")
MONTHS = {
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
}
REPEATS = {  # the first and second showing of a wall time a fall-back night repeats
    "es": (" (antes del cambio de hora)", " (después del cambio de hora)"),
    "fr": (" (avant le changement d'heure)", " (après le changement d'heure)"),
    "de": (" (vor der Zeitumstellung)", " (nach der Zeitumstellung)"),
}
WEEKDAYS = {
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
}
AT = {"en": " at ", "es": " a las ", "fr": " à ", "de": " um "}  # between the day and the clock time


def language_of(given: str | None) -> str:
    """One of LANGUAGES: 'es-MX' is Spanish; anything else unknown is English."""
    short = (given or "en").strip().lower()[:2]
    return short if short in LANGUAGES else "en"


def spoken_day(local: date, language: str) -> str:
    weekday, month = WEEKDAYS[language][local.weekday()], MONTHS[language][local.month - 1]
    return {"es": f"{weekday} {local.day} de {month}", "fr": f"{weekday} {local.day} {month}",
            "de": f"{weekday}, {local.day}. {month}"}[language]


def spoken_clock(local: datetime, language: str) -> str:
    clock = f"{local.hour}h{local.minute:02d}" if language == "fr" else f"{local.hour}:{local.minute:02d}"
    return clock + repeat_note(local, REPEATS[language])


def spoken_in(instant: datetime, zone: ZoneInfo, language: str = "en") -> str:
    """The instant in `zone`, spoken in `language` the way its speakers say times."""
    language = language_of(language)
    if language == "en":
        return spoken_time(instant, zone)
    local = instant.astimezone(zone)
    return f"{spoken_day(local, language)}{AT[language]}{spoken_clock(local, language)}"
