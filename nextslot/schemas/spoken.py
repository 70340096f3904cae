"""The languages customers get answers in (English, Spanish, French, German), and the messages' own day and month
names (reminders/templates.py). The tools and the pages say times through one function: languages.local_when."""


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


DAY_FORMS = {  # how each language writes a weekday, a day and a month: 'martes 24 de noviembre', 'Dienstag, 24. November'
    "es": "{weekday} {day} de {month}",
    "fr": "{weekday} {day} {month}",
    "de": "{weekday}, {day}. {month}",
}


AT = {"es": "a las", "fr": "à", "de": "um"}  # the word between a day and its time: 'martes 24 de noviembre a las 09:00'


def spoken_day(weekday: int, day: int, month: int, language: str) -> str:
    """A date as the messages and the guided chat say it in `language` (one of WEEKDAYS' languages)."""
    return DAY_FORMS[language].format(weekday=WEEKDAYS[language][weekday], day=day, month=MONTHS[language][month - 1])


def language_of(given: str | None) -> str:
    """One of LANGUAGES: 'es-MX' is Spanish; anything else unknown is English."""
    short = (given or "en").strip().lower()[:2]
    return short if short in LANGUAGES else "en"

