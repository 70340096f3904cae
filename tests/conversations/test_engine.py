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
