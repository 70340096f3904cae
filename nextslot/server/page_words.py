"""The booking and manage pages in the visitor's language: Spanish, French and German for each English text the
pages show (the English is the key). The language comes from `?lang=`, else the browser's Accept-Language,
else English; a text with no translation here stays English."""
from __future__ import annotations

from typing import Any

from nextslot.schemas.spoken import LANGUAGES, language_of

WORDS: dict[str, tuple[str, str, str]] = {  # English: (Spanish, French, German)
    "Skip to main content": ("Saltar al contenido", "Aller au contenu", "Zum Inhalt springen"),
    "Book with {name}": ("Reservar con {name}", "Réserver chez {name}", "Termin bei {name} buchen"),
    "Choose a service": ("Elija un servicio", "Choisissez une prestation", "Wählen Sie eine Leistung"),
    "Nothing can be booked online yet.": ("Aún no se puede reservar nada en línea.",
                                          "Rien ne peut encore être réservé en ligne.",
                                          "Online ist noch nichts buchbar."),
    "Questions? Chat with us": ("¿Preguntas? Escríbanos", "Des questions ? Écrivez-nous", "Fragen? Schreiben Sie uns"),
    "Open the chat": ("Abrir el chat", "Ouvrir le chat", "Chat öffnen"),
    "Share this page": ("Compartir esta página", "Partager cette page", "Diese Seite teilen"),
    "deposit": ("de depósito", "d'acompte", "Anzahlung"),
    "All services": ("Todos los servicios", "Toutes les prestations", "Alle Leistungen"),
    "with": ("con", "avec", "bei"),
    "or": ("o", "ou", "oder"),
    "and": ("y", "et", "und"),
    "deposit when booking": ("de depósito al reservar", "d'acompte à la réservation", "Anzahlung bei der Buchung"),
    "Pick a branch": ("Elija una sede", "Choisissez une agence", "Wählen Sie eine Filiale"),
    "At": ("En", "À", "In"),
    "another branch": ("otra sede", "une autre agence", "andere Filiale"),
    "Pick a time": ("Elija una hora", "Choisissez un horaire", "Wählen Sie eine Uhrzeit"),
    "No time suits you? Tell me when one opens": ("¿Ninguna hora le viene bien? Avíseme cuando haya una",
                                                  "Aucun horaire ne convient ? Prévenez-moi quand un se libère",
                                                  "Keine Zeit passt? Sagen Sie mir Bescheid, wenn eine frei wird"),
    "Times shown in": ("Horas en", "Horaires affichés en", "Zeiten in"),
    "Show": ("Mostrar", "Afficher", "Anzeigen"),
    "left": ("libres", "restantes", "frei"),
    "No free times from {first} to {last}.": ("No hay horas libres del {first} al {last}.",
                                              "Aucun horaire libre du {first} au {last}.",
                                              "Keine freien Zeiten vom {first} bis {last}."),
    "Next free time: {day}": ("Próxima hora libre: {day}", "Prochain horaire libre : {day}",
                              "Nächste freie Zeit: {day}"),
    "More days": ("Más días", "Plus de jours", "Weitere Tage"),
    "Earlier days": ("Días anteriores", "Jours précédents", "Frühere Tage"),
    "Later days": ("Días siguientes", "Jours suivants", "Spätere Tage"),
    "There is a problem": ("Hay un problema", "Il y a un problème", "Es gibt ein Problem"),
    "Booking code": ("Código de reserva", "Code de réservation", "Buchungscode"),
    "What": ("Qué", "Quoi", "Was"),
    "When": ("Cuándo", "Quand", "Wann"),
    "Name": ("Nombre", "Nom", "Name"),
    "Status": ("Estado", "Statut", "Status"),
    "Deposit": ("Depósito", "Acompte", "Anzahlung"),
    "time": ("hora", "heure", "Zeit"),
    "Your details": ("Sus datos", "Vos coordonnées", "Ihre Angaben"),
    "Other times": ("Otras horas", "Autres horaires", "Andere Zeiten"),
    "Your name": ("Su nombre", "Votre nom", "Ihr Name"),
    "Mobile phone": ("Móvil", "Téléphone mobile", "Mobiltelefon"),
    "Email": ("Correo electrónico", "E-mail", "E-Mail"),
    "We send your confirmation and reminders here: give a phone number, an email address, or both.": (
        "Le enviamos aquí la confirmación y los recordatorios: indique un teléfono, un correo o ambos.",
        "Nous envoyons ici votre confirmation et vos rappels : indiquez un téléphone, un e-mail, ou les deux.",
        "Bestätigung und Erinnerungen senden wir hierhin: geben Sie eine Telefonnummer, eine E-Mail oder beides an."),
    "About your appointment": ("Sobre su cita", "À propos de votre rendez-vous", "Zu Ihrem Termin"),
    "How many people": ("Cuántas personas", "Combien de personnes", "Wie viele Personen"),
    "Book {when}": ("Reservar {when}", "Réserver {when}", "{when} buchen"),
    "Book and pay deposit": ("Reservar y pagar el depósito", "Réserver et payer l'acompte",
                             "Buchen und Anzahlung zahlen"),
    "Sorry, that time was just taken": ("Lo siento, esa hora se acaba de ocupar", "Désolé, ce créneau vient d'être pris",
                                        "Leider wurde diese Zeit gerade vergeben"),
    "See all free times": ("Ver todas las horas libres", "Voir tous les horaires libres", "Alle freien Zeiten ansehen"),
    "You're booked": ("Reserva hecha", "C'est réservé", "Sie sind gebucht"),
    "Almost done: your deposit is awaited": ("Casi listo: falta su depósito", "Presque fini : votre acompte est attendu",
                                             "Fast fertig: Ihre Anzahlung steht aus"),
    "Add to your calendar": ("Añadir a su calendario", "Ajouter à votre agenda", "Zum Kalender hinzufügen"),
    "Change or cancel this booking": ("Cambiar o cancelar esta reserva", "Modifier ou annuler cette réservation",
                                      "Diese Buchung ändern oder absagen"),
    "Pay the {amount} deposit": ("Pagar el depósito de {amount}", "Payer l'acompte de {amount}",
                                 "Die Anzahlung von {amount} zahlen"),
    "Your booking": ("Su reserva", "Votre réservation", "Ihre Buchung"),
    "Your booking has been moved to {when}.": ("Su reserva se ha cambiado al {when}.",
                                               "Votre réservation a été déplacée au {when}.",
                                               "Ihre Buchung wurde auf {when} verschoben."),
    "Your booking has been cancelled.": ("Su reserva ha sido cancelada.", "Votre réservation a été annulée.",
                                         "Ihre Buchung wurde abgesagt."),
    "Change the time": ("Cambiar la hora", "Changer l'horaire", "Zeit ändern"),
    "Cancel the booking": ("Cancelar la reserva", "Annuler la réservation", "Buchung absagen"),
    "This appointment has started, so it can no longer be changed here.": (
        "Esta cita ya ha empezado, así que aquí ya no se puede cambiar.",
        "Ce rendez-vous a commencé : il ne peut plus être modifié ici.",
        "Dieser Termin hat begonnen und kann hier nicht mehr geändert werden."),
    "Book another appointment with {name}": ("Reservar otra cita con {name}", "Prendre un autre rendez-vous chez {name}",
                                             "Einen weiteren Termin bei {name} buchen"),
    "Cancel your booking?": ("¿Cancelar su reserva?", "Annuler votre réservation ?", "Buchung absagen?"),
    "Yes, cancel it": ("Sí, cancelarla", "Oui, l'annuler", "Ja, absagen"),
    "Yes, cancel anyway": ("Sí, cancelar de todos modos", "Oui, annuler quand même", "Ja, trotzdem absagen"),
    "No, keep it": ("No, mantenerla", "Non, la garder", "Nein, behalten"),
    "Pick a new time": ("Elija una nueva hora", "Choisissez un nouvel horaire", "Wählen Sie eine neue Zeit"),
    "now on": ("ahora el", "actuellement le", "jetzt am"),
}
STATUS = {"Booked": ("Reservada", "Réservée", "Gebucht"), "Confirmed": ("Confirmada", "Confirmée", "Bestätigt"),
          "Awaiting deposit": ("Pendiente de depósito", "Acompte attendu", "Anzahlung ausstehend"),
          "Cancelled": ("Cancelada", "Annulée", "Abgesagt"), "Missed": ("No asistió", "Manquée", "Versäumt")}


def tr(language: str, text: str, **values: Any) -> str:
    """`text` in `language`, its {placeholders} filled."""
    found = WORDS.get(text) or STATUS.get(text)
    if found is not None and language in LANGUAGES[1:]:
        text = found[LANGUAGES.index(language) - 1]
    return text.format(**values) if values else text


def page_language(query_lang: str | None, accept_language: str | None) -> tuple[str, bool]:
    """(language, chosen): `?lang=` wins (and is kept in links), else the browser's first language we speak."""
    if query_lang and language_of(query_lang) == query_lang.strip().lower()[:2]:
        return language_of(query_lang), True
    ranked = []
    for part in (accept_language or "").split(",")[:20]:
        name, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((-weight, len(ranked), name))
    for _, _, name in sorted(ranked):
        if name[:2].lower() in LANGUAGES:
            return name[:2].lower(), False
    return "en", False
