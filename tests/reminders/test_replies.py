"""Reading customers' replies: one clear meaning is acted on, anything else is asked about."""
import pytest

from nextslot.reminders.replies import Intent, parse_reply

CASES = {
    Intent.CONFIRM: ["yes", "Yes!", "C", "c", "1", "👍", "ok 👍", "confirm", "Sí", "si", "confirmo", "oui",
                     "Je confirme", "ja", "Ja, bestätigen"],
    Intent.CANCEL: ["cancel", "X", "2", "no", "No.", "cancel please", "cancelar", "Non", "annuler", "nein",
                    "absagen", "❌"],
    Intent.STOP: ["STOP", "stop", "Unsubscribe", "baja", "arrêt", "stopp"],
    Intent.START: ["START", "unstop"],
    Intent.UNCLEAR: ["", "yes cancel", "no yes", "can I move it to Friday?", "maybe", "👍 ❌",
                     "I will be there yes thank you so much for the reminder",
                     # a yes or no that asks for another time is for the conversation, not the fast path
                     "yes but can we make it 4 pm instead", "yes, 4pm?", "Sí, pero mejor a las 4",
                     "oui mais plutôt 16h", "ja aber lieber um 16 Uhr", "no, move it", "nein, verschieben",
                     "non, plus tard ?", "no, otra hora"],
}


@pytest.mark.parametrize("intent,text", [(i, t) for i, texts in CASES.items() for t in texts])
def test_replies_in_four_languages_mean_what_they_say(intent, text):
    assert parse_reply(text).intent is intent


def test_a_booking_code_in_the_reply_is_picked_out_however_it_is_typed():
    assert parse_reply("K7M 4PX cancel") == parse_reply("cancel k7m-4px")
    reply = parse_reply("cancel k7m-4px")
    assert reply.codes == ("K7M4PX",) and reply.intent is Intent.CANCEL and reply.names_a_code
    assert parse_reply("yes HXTRKN").codes == ("HXTRKN",) and not parse_reply("yes HXTRKN").names_a_code
    assert parse_reply("confirmed").codes == ()
