"""What a customer's reply means: confirm, cancel, stop, start, or not clear enough to act on.

A reply is only acted on when it says one thing: "yes cancel" or "can I move it?" gets a question
back, never a guess (a wrong cancel loses someone their appointment).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from nextslot.core.booking.codes import ALPHABET, LENGTH


class Intent(StrEnum):
    CONFIRM = "confirm"
    CANCEL = "cancel"
    STOP = "stop"
    START = "start"
    UNCLEAR = "unclear"


CONFIRM = {
    "yes", "y", "yep", "yeah", "confirm", "confirmed", "c", "1", "ok", "okay",  # en
    "si", "confirmo", "confirmar", "confirmado", "vale",  # es
    "oui", "confirme", "confirmer", "daccord",  # fr
    "ja", "bestatigen", "bestatige", "bestatigt", "jawohl",  # de (umlauts folded)
}
CANCEL = {
    "cancel", "cancelled", "canceled", "no", "n", "x", "2",  # en
    "cancelar", "cancelo", "anular", "anulo",  # es
    "annuler", "annule", "non",  # fr
    "absagen", "stornieren", "nein", "abgesagt",  # de
}
STOP = {"stop", "stopall", "unsubscribe", "end", "quit", "baja", "alto", "arret", "stopp"}
START = {"start", "unstop", "alta"}
# Twilio's own SMS keywords (long codes and messaging services, by default): a message of one of these alone, in any
# case, opts the sender out of (or back into) every SMS from our number at Twilio, which refuses them with 21610
TWILIO_OPT_OUT = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
TWILIO_OPT_IN = {"start", "unstop", "yes"}
# what may stand beside a STOP word and leave it a STOP ("please stop", "stop texting me", "STOP STOP"), and nothing
# else: "I'll stop by at 9" or "end time?" is no opt-out
STOP_COMPANY = {"please", "pls", "plz", "all", "now", "it", "me", "this", "these", "just", "thanks", "thank", "you",
                "texting", "messaging", "sending", "text", "texts", "message", "messages", "msgs", "sms",
                "por", "favor", "ya", "svp", "merci", "maintenant", "bitte", "danke", "jetzt"}
# a yes or no that goes on to ask for something else ("yes but can we make it 4 pm instead") is a conversation
CHANGE = {
    "but", "instead", "rather", "move", "change", "reschedule", "earlier", "later", "another", "different",  # en
    "pero", "mejor", "cambiar", "cambiarla", "mover", "otra", "otro", "antes", "despues",  # es
    "mais", "plutot", "changer", "deplacer", "autre", "avancer", "reporter", "tard", "tot",  # fr
    "aber", "lieber", "verschieben", "andern", "anderen", "andere", "spater", "fruher", "stattdessen",  # de
}
# "no" alone, or with thanks, is a cancel; with other words it begins many a yes ("no problem, see you then",
# "no worries", "non, pas de souci", "nein, kein Problem"): those are asked about, never taken as a cancel
PLAIN_NO = {"no", "n", "non", "nein"}
# a yes or no word under one of these, in the same clause, says the opposite or nothing sure ("don't cancel, I'll be
# there", "can't confirm", "ne pas annuler", "nicht absagen"); so does a "no" before it ("no quiero cancelar")
NEGATIONS = {"not", "dont", "cant", "cannot", "wont", "never", "didnt", "doesnt", "shouldnt", "wouldnt", "couldnt",
             "isnt", "arent", "nor", "neither", "nunca", "tampoco", "ni", "ne", "pas", "jamais", "nicht", "kein",
             "keine", "nie", "niemals"}
COURTESY = {"thanks", "thank", "you", "thx", "ty", "please", "pls", "sorry", "gracias", "por", "favor", "lo",
            "siento", "merci", "desole", "danke", "bitte", "leider"}
CONFIRM_EMOJI = ("👍", "✅", "👌", "✔")
CANCEL_EMOJI = ("👎", "❌", "✖")
CODE = re.compile(rf"\b([{ALPHABET}{ALPHABET.lower()}](?:[\s-]?[{ALPHABET}{ALPHABET.lower()}]){{{LENGTH - 1}}})\b")


@dataclass(frozen=True)
class Reply:
    intent: Intent
    codes: tuple[str, ...] = ()  # what could be booking codes in the message, normalised

    @property
    def names_a_code(self) -> bool:
        """A candidate with a digit is surely meant as a code (a word never has one): if it matches no
        booking, the reply must not fall back to another booking."""
        return any(any(ch.isdigit() for ch in c) for c in self.codes)


def folded_words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).replace("'", "").replace("’", "")
    return re.findall(r"[a-z0-9]+", plain)


def code_candidates(text: str) -> tuple[tuple[str, ...], str]:
    """Possible booking codes ('K7M 4PX', 'k7m-4px', 'HXTRKN'), and the text without them."""
    codes = []
    for candidate in CODE.findall(text):
        codes.append(re.sub(r"[\s-]", "", candidate).upper())
        text = text.replace(candidate, " ")
    return tuple(codes), text


def negated(text: str) -> bool:
    """Whether a yes or no word stands in a clause with a negation, or after a "no" in it."""
    for clause in re.split(r"[,.;:!?¡¿\n]+", text):
        words = folded_words(clause)
        answers = [i for i, w in enumerate(words) if w in CONFIRM | CANCEL and w not in PLAIN_NO]
        if answers and (any(w in NEGATIONS for w in words) or any(w in PLAIN_NO for w in words[:answers[-1]])):
            return True
    return False


def parse_reply(text: str) -> Reply:
    codes, rest = code_candidates(text)
    words = folded_words(rest)
    if set(words) & STOP and set(words) <= STOP | STOP_COMPANY:
        return Reply(Intent.STOP, codes)
    if words and words[0] in START and len(words) <= 2:
        return Reply(Intent.START, codes)
    confirm = any(w in CONFIRM for w in words) or any(e in text for e in CONFIRM_EMOJI)
    cancel = any(w in CANCEL for w in words) or any(e in text for e in CANCEL_EMOJI)
    if confirm == cancel or len(words) > 6:  # both, neither, or a whole sentence: ask, don't guess
        return Reply(Intent.UNCLEAR, codes)
    if "?" in text or "¿" in text or negated(rest):  # a question ("do I need to cancel?") is asked, not answered
        return Reply(Intent.UNCLEAR, codes)
    # a change of mind, or a time or day beside the yes ("sí, pero a las 4", "ja, 16 Uhr?"): not a plain answer
    if any(w in CHANGE for w in words) or (len(words) > 1 and any(any(ch.isdigit() for ch in w) for w in words)):
        return Reply(Intent.UNCLEAR, codes)
    if cancel and not any(e in text for e in CANCEL_EMOJI) and {w for w in words if w in CANCEL} <= PLAIN_NO \
            and set(words) - PLAIN_NO - COURTESY:
        return Reply(Intent.UNCLEAR, codes)  # "no problem": no cancel word but a "no" that starts a sentence
    return Reply(Intent.CONFIRM if confirm else Intent.CANCEL, codes)


def twilio_opt_change(body: str, opt_out_type: str | None) -> Intent | None:
    """What Twilio itself did with an inbound SMS: opted the sender out (STOP), back in (START), or neither (None).
    Its Advanced Opt-Out says so in `OptOutType`; without it, its default keywords decide."""
    if opt_out_type:
        return {"STOP": Intent.STOP, "START": Intent.START}.get(opt_out_type.strip().upper())
    word = body.strip().lower()
    return Intent.STOP if word in TWILIO_OPT_OUT else Intent.START if word in TWILIO_OPT_IN else None
