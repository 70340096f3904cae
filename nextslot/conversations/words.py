"""What the conversation says, in English, Spanish, French and German, and a first guess at a new number's
language from its first message (a known customer's own language wins)."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from nextslot.reminders.replies import folded_words
from nextslot.reminders.templates import WEEKDAYS, spoken_when
from nextslot.schemas.spoken import spoken_day

LANGUAGES = ("en", "es", "fr", "de")

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "menu": "Hi{name}! This is {business}. Reply with a number:",
        "book": "Book an appointment", "mine": "My bookings", "back": "Menu",
        "pick_service": "Which service?", "pick_day": "Which day for {service}?",
        "pick_time": "Which time on {day}?", "ask_name": "What name should the booking be under?",
        "confirm": "Book {service} on {when} for {name}?", "yes": "Yes", "no": "No",
        "booked": "Booked: {service} on {when}. Your code is {code}.",
        "deposit": "A deposit of {amount} is due to keep it; a payment link follows.",
        "taken": "Sorry, that time has just been taken. The nearest free times:",
        "nothing_free": "Nothing is free for {service} in the next two weeks. Reply 0 for the menu.",
        "no_bookings": "You have no upcoming bookings with us. Reply 1 to book one.",
        "your_bookings": "Your upcoming bookings:", "move": "Move it", "cancel": "Cancel it",
        "booking_action": "{service} on {when}:",
        "confirm_cancel": "Cancel {service} on {when}?", "yes_cancel": "Yes, cancel", "keep": "No, keep it",
        "cancelled": "Cancelled: {service} on {when}.",
        "moved": "Moved: {service} is now on {when}. Your code is still {code}.",
        "kept": "OK, nothing changed. Reply 0 for the menu.",
        "not_understood": "Please reply with one of the numbers.",
        "failed": "Sorry, we couldn't do that. Reply 0 for the menu, or call us.",
        "too_many_bookings": "That is as many bookings as a chat can make in a day. Reply 0 for the menu and "
                             "choose \"Talk to a person\" to book more.",
        "too_many_contact": "No more can be booked for that phone number or email this way. Reply 0 for the menu "
                            "and choose \"Talk to a person\" to book more.",
        "media": "Thanks! We can only read text here: please write what you need.",
        "cap": "We can't chat freely any more for now, but these choices still work.",
        "slow_down": "You're sending messages faster than we can answer. Please wait a little and write again.",
        "model_down": "Our assistant is not available right now, but these choices work.",
        "person": "Talk to a person",
        "handoff": "Thanks, a person from {business} will answer you here as soon as they can.",
        "verify_first": "To see or change a booking, first confirm it is yours: use \"It's my booking\" below "
                        "the chat to get a code by text or email.",
        "code": "Your {business} code is {code}. It is valid for 10 minutes. Never share it.",
    },
    "es": {
        "menu": "¡Hola{name}! Somos {business}. Responde con un número:",
        "book": "Reservar una cita", "mine": "Mis citas", "back": "Menú",
        "pick_service": "¿Qué servicio?", "pick_day": "¿Qué día para {service}?",
        "pick_time": "¿A qué hora el {day}?", "ask_name": "¿A qué nombre hacemos la reserva?",
        "confirm": "¿Reservar {service} el {when} a nombre de {name}?", "yes": "Sí", "no": "No",
        "booked": "Reservado: {service} el {when}. Tu código es {code}.",
        "deposit": "Hay que pagar una señal de {amount} para mantenerla; te enviamos un enlace de pago.",
        "taken": "Lo sentimos, esa hora acaba de ocuparse. Las horas libres más cercanas:",
        "nothing_free": "No hay horas libres para {service} en las próximas dos semanas. Responde 0 para el menú.",
        "no_bookings": "No tienes citas próximas con nosotros. Responde 1 para reservar.",
        "your_bookings": "Tus próximas citas:", "move": "Cambiarla", "cancel": "Cancelarla",
        "booking_action": "{service} el {when}:",
        "confirm_cancel": "¿Cancelar {service} el {when}?", "yes_cancel": "Sí, cancelar", "keep": "No, mantenerla",
        "cancelled": "Cancelada: {service} el {when}.",
        "moved": "Cambiada: {service} ahora es el {when}. Tu código sigue siendo {code}.",
        "kept": "De acuerdo, no hemos cambiado nada. Responde 0 para el menú.",
        "not_understood": "Responde con uno de los números, por favor.",
        "failed": "Lo sentimos, no ha sido posible. Responde 0 para el menú o llámanos.",
        "too_many_bookings": "Es el máximo de reservas que un chat puede hacer en un día. Responde 0 para el menú "
                             "y elige \"Hablar con una persona\" para reservar más.",
        "too_many_contact": "Por aquí no se puede reservar nada más para ese número o correo. Responde 0 para el "
                            "menú y elige \"Hablar con una persona\" para reservar más.",
        "media": "¡Gracias! Aquí solo podemos leer texto: escríbenos qué necesitas.",
        "cap": "Ahora no podemos seguir chateando libremente, pero estas opciones siguen funcionando.",
        "slow_down": "Nos envías mensajes más rápido de lo que podemos responder. Espera un poco y vuelve a escribir.",
        "model_down": "Nuestro asistente no está disponible ahora, pero estas opciones funcionan.",
        "person": "Hablar con una persona",
        "handoff": "Gracias, una persona de {business} te responderá aquí en cuanto pueda.",
        "verify_first": "Para ver o cambiar una cita, confirma primero que es tuya: usa \"Es mi cita\" debajo del "
                        "chat para recibir un código por SMS o correo.",
        "code": "Tu código de {business} es {code}. Vale 10 minutos. No lo compartas.",
    },
    "fr": {
        "menu": "Bonjour{name} ! Ici {business}. Répondez par un numéro :",
        "book": "Prendre rendez-vous", "mine": "Mes rendez-vous", "back": "Menu",
        "pick_service": "Quelle prestation ?", "pick_day": "Quel jour pour {service} ?",
        "pick_time": "À quelle heure le {day} ?", "ask_name": "À quel nom faut-il réserver ?",
        "confirm": "Réserver {service} le {when} au nom de {name} ?", "yes": "Oui", "no": "Non",
        "booked": "C'est réservé : {service} le {when}. Votre code est {code}.",
        "deposit": "Un acompte de {amount} est à régler pour le garder ; un lien de paiement suit.",
        "taken": "Désolé, ce créneau vient d'être pris. Les créneaux libres les plus proches :",
        "nothing_free": "Rien de libre pour {service} dans les deux semaines. Répondez 0 pour le menu.",
        "no_bookings": "Vous n'avez aucun rendez-vous à venir chez nous. Répondez 1 pour réserver.",
        "your_bookings": "Vos prochains rendez-vous :", "move": "Le déplacer", "cancel": "L'annuler",
        "booking_action": "{service} le {when} :",
        "confirm_cancel": "Annuler {service} le {when} ?", "yes_cancel": "Oui, annuler", "keep": "Non, le garder",
        "cancelled": "Annulé : {service} le {when}.",
        "moved": "Déplacé : {service} est maintenant le {when}. Votre code reste {code}.",
        "kept": "D'accord, rien n'a changé. Répondez 0 pour le menu.",
        "not_understood": "Merci de répondre par l'un des numéros.",
        "failed": "Désolé, cela n'a pas marché. Répondez 0 pour le menu, ou appelez-nous.",
        "too_many_bookings": "C'est le maximum de réservations qu'une discussion peut faire en un jour. Répondez 0 "
                             "pour le menu et choisissez « Parler à une personne » pour en faire d'autres.",
        "too_many_contact": "Plus rien ne peut être réservé par ce biais pour ce numéro ou cet e-mail. Répondez 0 "
                            "pour le menu et choisissez « Parler à une personne » pour en faire d'autres.",
        "media": "Merci ! Nous ne lisons que le texte ici : écrivez-nous ce qu'il vous faut.",
        "cap": "Nous ne pouvons plus discuter librement pour le moment, mais ces choix fonctionnent.",
        "slow_down": "Vous envoyez des messages plus vite que nous ne pouvons répondre. Patientez un peu, puis "
                     "réécrivez-nous.",
        "model_down": "Notre assistant n'est pas disponible pour le moment, mais ces choix fonctionnent.",
        "person": "Parler à une personne",
        "handoff": "Merci, une personne de {business} va vous répondre ici dès que possible.",
        "verify_first": "Pour voir ou modifier un rendez-vous, confirmez d'abord qu'il est à vous : utilisez "
                        "« C'est mon rendez-vous » sous la discussion pour recevoir un code par SMS ou e-mail.",
        "code": "Votre code {business} est {code}. Il est valable 10 minutes. Ne le partagez pas.",
    },
    "de": {
        "menu": "Hallo{name}! Hier ist {business}. Antworten Sie mit einer Zahl:",
        "book": "Termin buchen", "mine": "Meine Termine", "back": "Menü",
        "pick_service": "Welche Leistung?", "pick_day": "Welcher Tag für {service}?",
        "pick_time": "Welche Uhrzeit am {day}?", "ask_name": "Auf welchen Namen soll gebucht werden?",
        "confirm": "{service} am {when} für {name} buchen?", "yes": "Ja", "no": "Nein",
        "booked": "Gebucht: {service} am {when}. Ihr Code ist {code}.",
        "deposit": "Eine Anzahlung von {amount} ist fällig, um ihn zu halten; ein Zahlungslink folgt.",
        "taken": "Leider wurde diese Zeit gerade vergeben. Die nächsten freien Zeiten:",
        "nothing_free": "In den nächsten zwei Wochen ist für {service} nichts frei. Antworten Sie 0 für das Menü.",
        "no_bookings": "Sie haben keine anstehenden Termine bei uns. Antworten Sie 1 zum Buchen.",
        "your_bookings": "Ihre nächsten Termine:", "move": "Verschieben", "cancel": "Absagen",
        "booking_action": "{service} am {when}:",
        "confirm_cancel": "{service} am {when} absagen?", "yes_cancel": "Ja, absagen", "keep": "Nein, behalten",
        "cancelled": "Abgesagt: {service} am {when}.",
        "moved": "Verschoben: {service} ist jetzt am {when}. Ihr Code bleibt {code}.",
        "kept": "In Ordnung, nichts wurde geändert. Antworten Sie 0 für das Menü.",
        "not_understood": "Bitte antworten Sie mit einer der Zahlen.",
        "failed": "Das hat leider nicht geklappt. Antworten Sie 0 für das Menü oder rufen Sie uns an.",
        "too_many_bookings": "Mehr Buchungen sind in einem Chat an einem Tag nicht möglich. Antworten Sie 0 für das "
                             "Menü und wählen Sie „Mit einer Person sprechen“, um weitere zu buchen.",
        "too_many_contact": "Für diese Nummer oder E-Mail kann auf diesem Weg nichts mehr gebucht werden. Antworten "
                            "Sie 0 für das Menü und wählen Sie „Mit einer Person sprechen“, um weitere zu buchen.",
        "media": "Danke! Wir können hier nur Text lesen: Schreiben Sie uns bitte, was Sie brauchen.",
        "cap": "Freies Chatten geht gerade nicht mehr, aber diese Auswahl funktioniert weiterhin.",
        "slow_down": "Sie senden Nachrichten schneller, als wir antworten können. Bitte warten Sie kurz und "
                     "schreiben Sie dann erneut.",
        "model_down": "Unser Assistent ist gerade nicht erreichbar, aber diese Auswahl funktioniert.",
        "person": "Mit einer Person sprechen",
        "handoff": "Danke, eine Person von {business} antwortet Ihnen hier, so bald sie kann.",
        "verify_first": "Um einen Termin zu sehen oder zu ändern, bestätigen Sie zuerst, dass er Ihrer ist: "
                        "Mit „Mein Termin“ unter dem Chat erhalten Sie einen Code per SMS oder E-Mail.",
        "code": "Ihr Code für {business} ist {code}. Er gilt 10 Minuten. Geben Sie ihn nicht weiter.",
    },
}

HINTS = {  # words that give a new number's language away
    "es": {"hola", "quiero", "cita", "reservar", "gracias", "buenos", "buenas", "puedo", "por", "favor", "manana"},
    "fr": {"bonjour", "salut", "rendez", "vous", "je", "voudrais", "merci", "pour", "demain", "svp"},
    "de": {"hallo", "guten", "tag", "ich", "mochte", "termin", "danke", "bitte", "morgen", "einen"},
}


def guess_language(text: str, default: str = "en") -> str:
    """The language most of the message's tell-tale words belong to, else `default`."""
    words = set(folded_words(text))
    scores = {lang: len(words & hints) for lang, hints in HINTS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] else default


def say(language: str, key: str, **values: str) -> str:
    return WORDS.get(language, WORDS["en"])[key].format(**values)


def choices(question: str, options: list[str], language: str, back: bool = True) -> str:
    """A question and its numbered answers (0 goes back to the menu)."""
    lines = [question, *(f"{i} {o}" for i, o in enumerate(options, start=1))]
    if back:
        lines.append(f"0 {say(language, 'back')}")
    return "\n".join(lines)


def day_label(day: date, language: str) -> str:
    if language in WEEKDAYS:
        return spoken_day(day.weekday(), day.day, day.month, language)
    return f"{day:%A} {day.day} {day:%B}"


def when(instant: datetime, zone: ZoneInfo, language: str) -> str:
    return spoken_when(instant, zone, language)
