"""Customers' replies over SMS and WhatsApp: confirm or cancel through the core, STOP and START, and a
question back when the reply is not clear. Every reply is stored with what it was read as and answered."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nextslot.conversations.intake import Incoming, already_received, has_open_conversation, receive
from nextslot.core.results import Booked, Rejected, SlotTaken
from nextslot.core.service import BookingService
from nextslot.core.waitlist.offers import answerable_offer
from nextslot.reminders.replies import Intent, Reply, parse_reply
from nextslot.reminders.templates import spoken_when
from nextslot.reminders.whatsapp_window import record_inbound
from nextslot.schemas.commands import BookingChange
from nextslot.schemas.statuses import ACTIVE
from nextslot.storage.tables import Booking, Business, Customer, InboundMessage, Service, WaitlistEntry
from nextslot.tools.phrases import cost_phrase, phrase

ANSWERS = {
    "en": {
        "late_terms": "{reason} Reply X again within the hour to cancel anyway.",
        "confirmed": "Thanks, your {service} on {when} is confirmed.",
        "cancelled": "Your {service} on {when} is cancelled.",
        "unclear": "Sorry, I didn't catch that. For your {service} on {when}, reply C to confirm or X to cancel.",
        "no_booking": "We couldn't find an upcoming appointment for this number.",
        "refused": "We couldn't change your {service} on {when}: {reason} Please call us.",
        "stopped": "You won't get more messages here. Reply START to get them again.",
        "started": "You'll get messages here again.",
        "offer_booked": "You're booked for {service} on {when}. Your code is {code}.",
        "offer_gone": "Sorry, {service} on {when} has gone. {openings}",
        "offer_declined": "No problem, we'll keep looking for another time for you.",
        "openings": "Other openings: {times}. Book at any time by replying to us or on our booking page.",
        "no_openings": "We'll let you know when another time opens up.",
    },
    "es": {
        "late_terms": "{reason} Responde X de nuevo en la próxima hora para cancelar igualmente.",
        "confirmed": "Gracias, tu cita de {service} el {when} está confirmada.",
        "cancelled": "Tu cita de {service} el {when} está cancelada.",
        "unclear": "Perdona, no lo he entendido. Para tu cita de {service} el {when}, responde C para confirmar o "
                   "X para cancelar.",
        "no_booking": "No encontramos ninguna cita próxima para este número.",
        "refused": "No pudimos cambiar tu cita de {service} el {when}: {reason} Llámanos, por favor.",
        "stopped": "No recibirás más mensajes aquí. Responde START para volver a recibirlos.",
        "started": "Volverás a recibir mensajes aquí.",
        "offer_booked": "Reservado: {service} el {when}. Tu código es {code}.",
        "offer_gone": "Lo sentimos, {service} el {when} ya no está libre. {openings}",
        "offer_declined": "De acuerdo, seguiremos buscando otra hora para ti.",
        "openings": "Otras horas libres: {times}.",
        "no_openings": "Te avisaremos cuando se libere otra hora.",
    },
    "fr": {
        "late_terms": "{reason} Répondez X à nouveau dans l'heure pour annuler quand même.",
        "confirmed": "Merci, votre rendez-vous {service} le {when} est confirmé.",
        "cancelled": "Votre rendez-vous {service} le {when} est annulé.",
        "unclear": "Désolé, je n'ai pas compris. Pour votre rendez-vous {service} le {when}, répondez C pour "
                   "confirmer ou X pour annuler.",
        "no_booking": "Nous n'avons trouvé aucun rendez-vous à venir pour ce numéro.",
        "refused": "Nous n'avons pas pu modifier votre rendez-vous {service} le {when} : {reason} Appelez-nous.",
        "stopped": "Vous ne recevrez plus de messages ici. Répondez START pour les recevoir à nouveau.",
        "started": "Vous recevrez à nouveau des messages ici.",
        "offer_booked": "C'est réservé : {service} le {when}. Votre code est {code}.",
        "offer_gone": "Désolé, {service} le {when} n'est plus libre. {openings}",
        "offer_declined": "Entendu, nous continuons à chercher un autre créneau pour vous.",
        "openings": "Autres créneaux libres : {times}.",
        "no_openings": "Nous vous préviendrons dès qu'un autre créneau se libère.",
    },
    "de": {
        "late_terms": "{reason} Antworten Sie innerhalb einer Stunde erneut X, um trotzdem abzusagen.",
        "confirmed": "Danke, Ihr Termin {service} am {when} ist bestätigt.",
        "cancelled": "Ihr Termin {service} am {when} ist abgesagt.",
        "unclear": "Entschuldigung, das habe ich nicht verstanden. Für Ihren Termin {service} am {when}: antworten "
                   "Sie C zum Bestätigen oder X zum Absagen.",
        "no_booking": "Wir haben keinen anstehenden Termin für diese Nummer gefunden.",
        "refused": "Ihr Termin {service} am {when} konnte nicht geändert werden: {reason} Bitte rufen Sie uns an.",
        "stopped": "Sie erhalten hier keine Nachrichten mehr. Antworten Sie START, um sie wieder zu erhalten.",
        "started": "Sie erhalten hier wieder Nachrichten.",
        "offer_booked": "Gebucht: {service} am {when}. Ihr Code ist {code}.",
        "offer_gone": "Leider ist {service} am {when} nicht mehr frei. {openings}",
        "offer_declined": "Kein Problem, wir suchen weiter nach einem anderen Termin für Sie.",
        "openings": "Andere freie Zeiten: {times}.",
        "no_openings": "Wir melden uns, sobald ein anderer Termin frei wird.",
    },
}


@dataclass(frozen=True)
class Conversations:
    """The webhook's side of conversations: how long one lasts idle, the number written to, any media."""

    idle: timedelta
    to: str | None = None
    media: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sender:
    customer_ids: list[int]
    business_id: int | None  # of the first matching customer, for replies about no booking
    language: str


@dataclass(frozen=True)
class Target:
    """The booking a reply is about, as plain data (read in a transaction that is over)."""

    booking_id: int | None  # None: a waitlist offer, not a booking yet
    business_id: int
    customer_id: int
    code: str
    service_name: str
    starts_at: datetime
    zone: ZoneInfo


def handle_reply(service: BookingService, channel: str, sender: str, body: str,
                 provider_id: str | None = None, conversations: Conversations | None = None) -> str | None:
    """Act on one inbound message and return the answer to send back (a retried message is answered again,
    not acted on again). With `conversations`, a message that is not a clear keyword answer, or comes in the
    middle of a conversation, is stored for the conversation instead and None returned: answered later."""
    phone = sender.removeprefix("whatsapp:")
    if channel == "whatsapp":  # the customer wrote: WhatsApp takes free text from us for the next 24 hours
        with service.uow() as uow:
            record_inbound(uow.session, phone, conversations.to if conversations else None, service.now(),
                           conversations.idle if conversations else timedelta(minutes=30))
            uow.commit()
    with service.uow() as uow:
        if provider_id and (seen := uow.session.scalars(
                select(InboundMessage.answer).where(InboundMessage.provider_id == provider_id)).one_or_none()):
            return seen
        if conversations and already_received(uow.session, provider_id):
            return None
        customers = uow.session.execute(select(Customer.id, Customer.business_id, Customer.language)
                                        .where(Customer.phone == phone).order_by(Customer.id)).all()
    who = Sender([c.id for c in customers], customers[0].business_id if customers else None,
                 next((c.language for c in customers if c.language in ANSWERS), "en"))
    reply = parse_reply(body)
    if conversations and reply.intent not in (Intent.STOP, Intent.START) and (
            reply.intent is Intent.UNCLEAR or conversations.media
            or has_open_conversation(service, channel, phone, conversations.idle)):
        incoming = Incoming(channel, phone, body, provider_id, conversations.to, conversations.media)
        if receive(service, incoming, conversations.idle):
            return None
    record = dict(channel=channel, sender=phone, provider_id=provider_id, body=body, intent=reply.intent.value)
    words = ANSWERS[who.language]

    if reply.intent in (Intent.STOP, Intent.START):
        stop = reply.intent is Intent.STOP
        set_opt_out(service, who.customer_ids, channel, stop)
        return store(service, record, words["stopped" if stop else "started"], "opted_out" if stop else "opted_in",
                     who)
    if reply.intent in (Intent.CONFIRM, Intent.CANCEL) and not reply.codes:
        offer = offer_answered(service, who.customer_ids)
        if offer is not None:  # a yes or no right after a waitlist offer is about the offer
            return answer_offer(service, record, who, offer, reply.intent is Intent.CONFIRM, channel)
    target = target_booking(service, who.customer_ids, reply, service.now())
    if target is None:
        return store(service, record, words["no_booking"], "no_booking", who)
    details = {"service": target.service_name, "when": spoken_when(target.starts_at, target.zone, who.language)}
    if reply.intent is Intent.UNCLEAR:
        return store(service, record, words["unclear"].format(**details), "asked_again", who, target)
    change = BookingChange(code=target.code, source=channel, actor="customer")
    if reply.intent is Intent.CONFIRM:
        result, outcome = service.confirm(target.business_id, change), "confirmed"
    else:
        if asked_late_terms(service, target):  # a second cancel within the hour of being told the cost accepts it
            change = change.model_copy(update={"late_terms": "accept"})
        result, outcome = service.cancel(target.business_id, change), "cancelled"
    if isinstance(result, Rejected) and result.code == "late_terms_not_accepted":
        facts = dict(result.details)
        question = result.message if who.language == "en" or not facts else phrase(
            "late_terms", who.language, hours=facts["hours"],
            cost=cost_phrase(facts["cost"], facts["amount"], facts["kind"], who.language))
        return store(service, record, words["late_terms"].format(reason=question), "late_terms_asked", who,
                     target)
    if isinstance(result, Rejected):
        return store(service, record, words["refused"].format(**details, reason=result.message), "refused", who,
                     target)
    return store(service, record, words[outcome].format(**details), outcome, who, target)


LATE_TERMS_ANSWER = timedelta(hours=1)


def asked_late_terms(service: BookingService, target: Target) -> bool:
    """Whether this customer was told, within the hour, what cancelling this booking late costs."""
    with service.uow() as uow:
        return uow.session.scalar(select(InboundMessage.id).where(
            InboundMessage.booking_id == target.booking_id, InboundMessage.customer_id == target.customer_id,
            InboundMessage.outcome == "late_terms_asked",
            InboundMessage.created_at > service.now() - LATE_TERMS_ANSWER).limit(1)) is not None


@dataclass(frozen=True)
class OfferTarget:
    offer_id: int
    business_id: int
    customer_id: int
    service_name: str
    starts_at: datetime
    zone: ZoneInfo


def offer_answered(service: BookingService, customer_ids: list[int]) -> OfferTarget | None:
    with service.uow() as uow:
        offer = answerable_offer(uow.session, customer_ids, service.now())
        if offer is None:
            return None
        facts = uow.session.execute(
            select(Service.name, Customer.timezone, Business.timezone)
            .join(WaitlistEntry, WaitlistEntry.service_id == Service.id).join(Customer, Customer.id == offer.customer_id)
            .join(Business, Business.id == offer.business_id).where(WaitlistEntry.id == offer.entry_id)).one()
        return OfferTarget(offer.id, offer.business_id, offer.customer_id, facts[0], offer.starts_at,
                           ZoneInfo(facts[1] or facts[2]))


def answer_offer(service: BookingService, record: dict, who: Sender, offer: OfferTarget, yes: bool,
                 channel: str) -> str:
    words = ANSWERS[who.language]
    details = {"service": offer.service_name, "when": spoken_when(offer.starts_at, offer.zone, who.language)}
    target = Target(None, offer.business_id, offer.customer_id, "", offer.service_name, offer.starts_at, offer.zone)
    if not yes:
        service.decline_offer(offer.offer_id, channel)
        return store(service, record, words["offer_declined"], "offer_declined", who, target)
    result = service.accept_offer(offer.offer_id, channel)
    if isinstance(result, Booked):
        booked = Target(result.booking.id, offer.business_id, offer.customer_id, result.booking.code,
                        offer.service_name, offer.starts_at, offer.zone)
        return store(service, record, words["offer_booked"].format(**details, code=result.booking.code_spoken),
                     "offer_accepted", who, booked)
    if isinstance(result, SlotTaken):
        times = [spoken_when(a.starts_at.utc, offer.zone, who.language) for a in result.alternatives]
        openings = words["openings"].format(times="; ".join(times)) if times else words["no_openings"]
        return store(service, record, words["offer_gone"].format(**details, openings=openings), "offer_lost", who,
                     target)
    return store(service, record, words["refused"].format(**details, reason=result.message), "refused", who, target)


def target_booking(service: BookingService, customer_ids: list[int], reply: Reply, now: datetime) -> Target | None:
    """The booking a reply is about: the one whose code it names, else (if it surely names none) this
    number's next upcoming one."""
    if not customer_ids:
        return None
    with service.uow() as uow:
        query = (select(Booking.id, Booking.business_id, Booking.customer_id, Booking.code, Service.name,
                        Booking.starts_at, Customer.timezone, Business.timezone)
                 .join(Business, Business.id == Booking.business_id).join(Service, Service.id == Booking.service_id)
                 .join(Customer, Customer.id == Booking.customer_id).where(Booking.customer_id.in_(customer_ids)))
        row = None
        if reply.codes:
            row = uow.session.execute(query.where(Booking.code.in_(reply.codes)).limit(1)).first()
        if row is None and not reply.names_a_code:
            row = uow.session.execute(query.where(Booking.status.in_(ACTIVE), Booking.ends_at > now)
                                      .order_by(Booking.starts_at).limit(1)).first()
    if row is None:
        return None
    booking_id, business_id, customer_id, booking_code, service_name, starts_at, customer_zone, business_zone = row
    return Target(booking_id, business_id, customer_id, booking_code, service_name, starts_at,
                  ZoneInfo(customer_zone or business_zone))


def set_opt_out(service: BookingService, customer_ids: list[int], channel: str, stop: bool) -> None:
    with service.uow() as uow:
        for customer in uow.session.scalars(select(Customer).where(Customer.id.in_(customer_ids))
                                            .with_for_update()):
            others = [c for c in customer.opted_out if c != channel]
            customer.opted_out = [*others, channel] if stop else others
        uow.commit()


def store(service: BookingService, record: dict, answer: str, outcome: str, who: Sender,
          target: Target | None = None) -> str:
    with service.uow() as uow:
        uow.session.add(InboundMessage(
            **record, answer=answer, outcome=outcome, created_at=service.now(),
            customer_id=target.customer_id if target else (who.customer_ids[0] if who.customer_ids else None),
            business_id=target.business_id if target else who.business_id,
            booking_id=target.booking_id if target else None,
        ))
        try:
            uow.commit()
        except IntegrityError:  # the same message, retried by Twilio while we were answering it
            pass
    return answer
