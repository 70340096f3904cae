"""Two scheduler processes answering the same conversations: each message answered once, in order."""
from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from nextslot.conversations.intake import Incoming, receive
from nextslot.storage.tables import Conversation, ConversationMessage

ANSWERING_PROCESS = """
import sys
from nextslot.conversations.engine import ConversationEngine
from nextslot.core.service import BookingService
from nextslot.settings import Settings
from nextslot.storage.engine import build_session_factory, engine_for
service = BookingService(build_session_factory(engine_for(sys.argv[1])))
engine = ConversationEngine(service, Settings())
print(sum(engine.process_due() for _ in range(40)))
"""


def test_two_scheduler_processes_answer_each_message_once_and_in_order(chat_for, service, session_factory,
                                                                      database_url):
    from datetime import timedelta

    with chat_for() as chat:
        phones = [f"+4479112003{i:02d}" for i in range(12)]
        for phone in phones:
            for n, body in enumerate(("hello", "2", "0")):
                assert receive(service, Incoming("sms", phone, body, f"SMtwo{phone}{n}", chat.to),
                               timedelta(minutes=30))
        runs = [subprocess.Popen([sys.executable, "-c", ANSWERING_PROCESS, database_url], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert all(run.returncode == 0 for run in runs), outputs
        claimed = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert sum(claimed) >= len(phones)  # every conversation was claimed (by one process or the other)
        with session_factory() as s:
            for phone in phones:
                rows = s.execute(select(ConversationMessage.direction, ConversationMessage.body)
                                 .join(Conversation).where(Conversation.phone == phone)
                                 .order_by(ConversationMessage.id)).all()
                replies = [body.splitlines()[0] for direction, body in rows if direction == "out"]
                assert replies == ["Hi! This is Riverside Clinic. Reply with a number:",
                                   "You have no upcoming bookings with us. Reply 1 to book one.",
                                   "Hi! This is Riverside Clinic. Reply with a number:"], (phone, rows)


def test_messages_posted_at_once_from_one_number_and_retried_are_stored_once_and_each_answered_once(chat_for):
    from concurrent.futures import ThreadPoolExecutor

    phone = "+447911200501"
    with chat_for() as chat:
        sids = [f"SM{phone[1:]:0>30}{n:02d}" for n in range(8)]  # Twilio's shape: SM and 32 hex digits
        posts = [*sids, *sids[:4]]  # Twilio retries four of them while the first tries are still in flight
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda sid: chat.send(phone, "0", sid=sid), posts))
        assert [a.status_code for a in answers] == [200] * 12
        chat.run()
        messages = chat.messages(phone)
        incoming = [m for m in messages if m.direction == "in"]
        assert sorted(m.provider_id for m in incoming) == sorted(sids)  # each stored once, in one conversation
        assert len({m.conversation_id for m in messages}) == 1
        assert all(m.processed_at is not None and m.attempts == 1 for m in incoming)
        replies = [m for m in messages if m.direction == "out"]
        assert len(replies) == 8 and all(r.body.startswith("Hi! This is Riverside Clinic.") for r in replies)
        assert len(chat.replies(phone)) == 8  # Twilio was asked to deliver each answer once
        assert [m.direction for m in messages] == ["in"] * 8 + ["out"] * 8  # all stored before any was answered
