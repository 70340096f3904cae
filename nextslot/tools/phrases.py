"""The tools' `say` sentences in the caller's language (English, Spanish, French, German), times spoken the local
way (schemas/spoken.py). A sentence with no translation here is said in English."""
from __future__ import annotations

from typing import Any

from nextslot.schemas.spoken import language_of

PHRASES: dict[str, dict[str, str]] = {
    "offer": {"en": "I can offer {choices}.", "es": "Puedo ofrecerle {choices}.",
              "fr": "Je peux vous proposer {choices}.", "de": "Ich kann Ihnen {choices} anbieten."},
    "offer_later": {"en": "Nothing is free then. The next openings are {choices}.",
                    "es": "No hay nada libre entonces. Los próximos huecos son {choices}.",
                    "fr": "Rien n'est libre à ce moment-là. Les prochains créneaux sont {choices}.",
                    "de": "Dann ist nichts frei. Die nächsten freien Termine sind {choices}."},
    "offer_none": {"en": "Nothing is free then, nor in the month after.",
                   "es": "No hay nada libre entonces, ni en el mes siguiente.",
                   "fr": "Rien n'est libre à ce moment-là, ni dans le mois qui suit.",
                   "de": "Dann ist nichts frei, auch nicht im Monat danach."},
    "taken": {"en": "Sorry, that time has just been taken. The nearest openings are {choices}.",
              "es": "Lo siento, esa hora se acaba de ocupar. Los huecos más cercanos son {choices}.",
              "fr": "Désolé, ce créneau vient d'être pris. Les créneaux les plus proches sont {choices}.",
              "de": "Leider wurde dieser Termin gerade vergeben. Die nächsten freien Termine sind {choices}."},
    "taken_none": {"en": "Sorry, that time has just been taken and I can't see another opening nearby.",
                   "es": "Lo siento, esa hora se acaba de ocupar y no veo otro hueco cerca.",
                   "fr": "Désolé, ce créneau vient d'être pris et je ne vois pas d'autre créneau proche.",
                   "de": "Leider wurde dieser Termin gerade vergeben, und ich sehe keinen anderen in der Nähe."},
    "booked": {"en": "You're booked for {service}{with_}{where} on {when}. Your booking code is {code}.",
               "es": "Reservado: {service}{with_}{where} el {when}. Su código de reserva es {code}.",
               "fr": "C'est réservé : {service}{with_}{where} le {when}. Votre code de réservation est {code}.",
               "de": "Gebucht: {service}{with_}{where} am {when}. Ihr Buchungscode ist {code}."},
    "moved": {"en": "You're now booked for {service}{with_}{where} on {when}. Your booking code is {code}.",
              "es": "Cambiado: {service}{with_}{where} ahora el {when}. Su código de reserva es {code}.",
              "fr": "C'est déplacé : {service}{with_}{where} désormais le {when}. Votre code de réservation est "
                    "{code}.",
              "de": "Verschoben: {service}{with_}{where} jetzt am {when}. Ihr Buchungscode ist {code}."},
    "cancelled": {"en": "Your {service} on {when} is cancelled.",
                  "es": "Su cita de {service} el {when} está cancelada.",
                  "fr": "Votre rendez-vous {service} le {when} est annulé.",
                  "de": "Ihr Termin {service} am {when} ist abgesagt."},
    "confirmed": {"en": "Thank you. Your {service} on {when} is confirmed. See you then.",
                  "es": "Gracias. Su cita de {service} el {when} está confirmada. Hasta entonces.",
                  "fr": "Merci. Votre rendez-vous {service} le {when} est confirmé. À bientôt.",
                  "de": "Danke. Ihr Termin {service} am {when} ist bestätigt. Bis dann."},
    "already_confirmed": {"en": "Your {service} on {when} is confirmed.",
                          "es": "Su cita de {service} el {when} está confirmada.",
                          "fr": "Votre rendez-vous {service} le {when} est confirmé.",
                          "de": "Ihr Termin {service} am {when} ist bestätigt."},
    "late_terms": {"en": "It's within {hours} hours of the appointment, so {cost}. Shall I still cancel?",
                   "es": "Faltan menos de {hours} horas para la cita, así que {cost}. ¿La cancelo de todos modos?",
                   "fr": "Le rendez-vous est dans moins de {hours} heures, donc {cost}. Dois-je quand même annuler ?",
                   "de": "Der Termin ist in weniger als {hours} Stunden: {Cost}. Soll ich trotzdem absagen?"},
    "move_cutoff": {"en": "It's within {hours} hours of the appointment, so it can no longer be moved here; please "
                          "call us{call} to change it.",
                    "es": "Faltan menos de {hours} horas para la cita, así que ya no se puede cambiar por aquí; "
                          "llámenos{call} para cambiarla.",
                    "fr": "Le rendez-vous est dans moins de {hours} heures, il ne peut donc plus être déplacé ici ; "
                          "appelez-nous{call} pour le changer.",
                    "de": "Der Termin ist in weniger als {hours} Stunden, daher kann er hier nicht mehr verschoben "
                          "werden; bitte rufen Sie uns{call} an, um ihn zu ändern."},
    "cancel_cutoff": {"en": "It's within {hours} hours of the appointment, so it can no longer be cancelled here; "
                            "please call us{call} to cancel.",
                      "es": "Faltan menos de {hours} horas para la cita, así que ya no se puede cancelar por aquí; "
                            "llámenos{call} para cancelarla.",
                      "fr": "Le rendez-vous est dans moins de {hours} heures, il ne peut donc plus être annulé ici ; "
                            "appelez-nous{call} pour l'annuler.",
                      "de": "Der Termin ist in weniger als {hours} Stunden, daher kann er hier nicht mehr abgesagt "
                            "werden; bitte rufen Sie uns{call} an, um ihn abzusagen."},
    "call_on": {"en": " on {phone}", "es": " al {phone}", "fr": " au {phone}", "de": " unter {phone}"},
    "late_after": {"en": " As it was late, {cost}.", "es": " Como fue con poca antelación, {cost}.",
                   "fr": " Comme c'était tardif, {cost}.", "de": " Wegen der kurzfristigen Absage: {Cost}."},
    "deposit_kept": {"en": "the {amount} deposit is kept", "es": "se retiene el depósito de {amount}",
                     "fr": "l'acompte de {amount} est conservé", "de": "die Anzahlung von {amount} wird einbehalten"},
    "fee_charged": {"en": "a {amount} {what} fee is charged to the card used for the deposit",
                    "es": "se cobra una penalización de {amount} a la tarjeta del depósito",
                    "fr": "des frais de {amount} sont prélevés sur la carte de l'acompte",
                    "de": "eine Gebühr von {amount} wird von der Karte der Anzahlung abgebucht"},
    "fee_due": {"en": "a {amount} {what} fee applies", "es": "se aplica una penalización de {amount}",
                "fr": "des frais de {amount} s'appliquent", "de": "es fällt eine Gebühr von {amount} an"},
    "with": {"en": " with {name}", "es": " con {name}", "fr": " avec {name}", "de": " bei {name}"},
    "at_place": {"en": " at {place}", "es": " en {place}", "fr": " à {place}", "de": " in {place}"},
    "or": {"en": " or ", "es": " o ", "fr": " ou ", "de": " oder "},
    "places_left": {"en": "{n} places left", "es": "quedan {n} plazas", "fr": "{n} places restantes",
                    "de": "noch {n} Plätze"},
    "place_left": {"en": "1 place left", "es": "queda 1 plaza", "fr": "1 place restante", "de": "noch 1 Platz"},
    # the public channels' caps (core/booking/public_caps.py, server/public_writes.py)
    "too_many_contact": {"en": "I'm sorry, I can't book any more for that number or email this way. Someone from "
                               "the team can book more for you.",
                         "es": "Lo siento, por aquí no puedo reservar nada más para ese número o correo. Alguien "
                               "del equipo puede reservarle más.",
                         "fr": "Désolé, je ne peux plus rien réserver par ce biais pour ce numéro ou cet e-mail. "
                               "Quelqu'un de l'équipe peut en réserver d'autres pour vous.",
                         "de": "Leider kann ich für diese Nummer oder E-Mail auf diesem Weg nichts mehr buchen. "
                               "Jemand aus dem Team kann weitere für Sie buchen."},
    "too_many_caller": {"en": "I'm sorry, I can't make any more bookings on calls from this number today. Someone "
                              "from the team can book more for you.",
                        "es": "Lo siento, hoy no puedo hacer más reservas en llamadas desde este número. Alguien "
                              "del equipo puede reservarle más.",
                        "fr": "Désolé, je ne peux plus faire de réservations aujourd'hui pour les appels de ce "
                              "numéro. Quelqu'un de l'équipe peut en réserver d'autres pour vous.",
                        "de": "Leider kann ich heute für Anrufe von dieser Nummer keine weiteren Buchungen "
                              "vornehmen. Jemand aus dem Team kann weitere für Sie buchen."},
    "too_many_address": {"en": "I'm sorry, no more bookings can be made from here today. Someone from the team can "
                               "book more for you.",
                         "es": "Lo siento, hoy no se pueden hacer más reservas desde aquí. Alguien del equipo puede "
                               "reservarle más.",
                         "fr": "Désolé, aucune autre réservation ne peut être faite d'ici aujourd'hui. Quelqu'un de "
                               "l'équipe peut en réserver d'autres pour vous.",
                         "de": "Leider können von hier aus heute keine weiteren Buchungen vorgenommen werden. Jemand "
                               "aus dem Team kann weitere für Sie buchen."},
    "too_many_holds": {"en": "I can't hold any more times on calls from this number today, but I can book the "
                             "time for you straight away.",
                       "es": "Hoy no puedo reservar provisionalmente más horas en llamadas desde este número, pero "
                             "puedo hacerle la reserva ahora mismo.",
                       "fr": "Je ne peux plus bloquer de créneaux aujourd'hui pour les appels de ce numéro, mais je "
                             "peux réserver le créneau tout de suite.",
                       "de": "Ich kann heute für Anrufe von dieser Nummer keine weiteren Termine vormerken, aber ich "
                             "kann den Termin gleich für Sie buchen."},
    "series_too_long": {"en": "I can book at most {max} appointments of a series at once. Shall I book the first "
                              "{max}?",
                        "es": "Puedo reservar como máximo {max} citas de una serie a la vez. ¿Reservo las primeras "
                              "{max}?",
                        "fr": "Je peux réserver au plus {max} rendez-vous d'une série à la fois. Dois-je réserver "
                              "les {max} premiers ?",
                        "de": "Ich kann höchstens {max} Termine einer Serie auf einmal buchen. Soll ich die ersten "
                              "{max} buchen?"},
}


def phrase(key: str, language: str | None, **values: Any) -> str:
    """The sentence `key` in `language` (else English); `{Cost}` is `cost` starting a sentence (German)."""
    texts = PHRASES[key]
    if "cost" in values:
        values["Cost"] = values["cost"][:1].upper() + values["cost"][1:]
    return texts.get(language_of(language), texts["en"]).format(**values)


def cost_phrase(cost: str, amount: str, kind: str, language: str | None) -> str:
    """What a late cancel or a no-show costs: deposit_kept, fee_charged or fee_due."""
    what = "late-cancellation" if kind == "late_cancel" else "missed-appointment"
    key = cost if cost in ("deposit_kept", "fee_charged", "fee_due") else "fee_due"
    return phrase(key, language, amount=amount, what=what)
