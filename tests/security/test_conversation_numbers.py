"""A number customers write to names the business their messages are for. Another business's key cannot list that
number too and so read, and answer, its customers' texts; two businesses listing one new number at once: one wins."""
from __future__ import annotations

import threading
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from nextslot.server.app import create_app
from nextslot.settings import Settings
from nextslot.storage.tables import Conversation
from tests.conftest import example

PUBLIC, TOKEN = "https://book.example.com", "twilio-token"


def new_number() -> str:
    return f"+4420{uuid.uuid4().int % 10**8:08d}"


def with_number(client: TestClient, number: str):
    config = client.get("/v1/config").json()
    config["business"]["details"]["conversations"] = {"numbers": [number]}
    return client.put("/v1/config", json=config)


def test_another_business_cannot_list_a_number_already_given_out(make_business, api, service, session_factory):
    attacker = make_business("clinic")  # the older business: the lower id
    number = new_number()
    victim_config = example("clinic")
    victim_config["business"]["details"] = {**victim_config["business"]["details"],
                                            "conversations": {"numbers": [number]}}
    victim = make_business(victim_config)

    refused = with_number(api(attacker), number)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "number_in_use" and number in refused.json()["error"]["message"]
    assert with_number(api(victim), number).status_code == 200  # its own again: fine

    settings = Settings(secret_key="x", public_url=PUBLIC, twilio_auth_token=TOKEN)
    form = {"From": "whatsapp:+447911123999", "To": f"whatsapp:{number}", "Body": "my door code is 4471",
            "MessageSid": "SM" + uuid.uuid4().hex}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/webhooks/twilio/inbound", form)
    with TestClient(create_app(settings, service=service)) as http:
        assert http.post("/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}).is_success
    with session_factory() as s:
        assert s.scalars(select(Conversation.business_id).where(Conversation.phone == "+447911123999")).all() == [
            victim]


def test_two_businesses_listing_one_new_number_at_once_one_gets_it(make_business, api):
    clients = [api(make_business("clinic")) for _ in range(2)]
    number, answers = new_number(), []
    barrier = threading.Barrier(2)

    def put(client: TestClient) -> None:
        barrier.wait()
        answers.append(with_number(client, number).status_code)

    threads = [threading.Thread(target=put, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409]


def test_conversation_settings_of_the_wrong_shape_are_refused_with_the_field(make_business, api):
    client = api(make_business("clinic"))
    config = client.get("/v1/config").json()
    for wrong in ("+442079460958", {"numbers": "+442079460958"}, {"model": 7}, {"base_url": "file:///etc/passwd"},
                  {"daily_model_calls": -1}):
        config["business"]["details"]["conversations"] = wrong
        answer = client.put("/v1/config", json=config)
        assert answer.status_code == 422, (wrong, answer.text)
        assert answer.json()["error"]["code"] == "invalid_config", wrong
        assert answer.json()["error"]["field"].startswith("business.details.conversations"), wrong
