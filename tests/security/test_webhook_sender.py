"""The event-webhook sender against receivers an attacker runs on loopback: a trickled answer, a hang, a redirect
into the network, a gigabyte body, a refused port, an internal address. Each delivery ends within its one time
limit, reads no body, follows nothing, and stores a short category that names no address and quotes no exception."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from nextslot.storage.tables import WebhookDelivery, WebhookEndpoint
from nextslot.webhooks.delivery import WebhookSender
from tests.conftest import free_port
from tests.security.conftest import Listener
from tests.security.hostile import HostileServer, answer, hang, pour, trickle
from tests.webhooks.test_delivery import book, register

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def deliver_once(service, make_business, session_factory, clock, url: str, allow_private: bool = True,
                 timeout: float = 1.0) -> tuple[WebhookDelivery, WebhookEndpoint]:
    """Register `url` for a new business, book, run the sender once; the delivery row and endpoint after."""
    business = make_business("clinic")
    endpoint = register(session_factory, business, url)
    book(service, business)
    WebhookSender(session_factory, allow_private=allow_private, timeout=timeout, clock=clock).send_due()
    with session_factory() as s:
        [delivery] = s.scalars(select(WebhookDelivery).where(WebhookDelivery.business_id == business)).all()
        stored = s.get(WebhookEndpoint, endpoint.id)
        # out of the way of other tests' senders, which claim every business's deliveries
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(status="failed"))
        s.commit()
    return delivery, stored


def assert_reveals_nothing(delivery: WebhookDelivery) -> None:
    text = str(delivery.log)
    for leak in ("127.0.0.1", "Error", "Errno", "Traceback", "http://", "socket"):
        assert leak not in text, (leak, text)


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_time_limit(service, make_business, session_factory,
                                                                     clock):
    """One byte every 0.2 s: no read ever waits the second the sender allows, yet the answer would take 8 s."""
    with HostileServer(trickle(OK)) as receiver:
        delivery, _ = deliver_once(service, make_business, session_factory, clock, f"{receiver.url}/hook")
        assert not receiver.finished.is_set() and receiver.sent < len(OK)
    assert (delivery.log[-1]["status_code"], delivery.log[-1]["error"]) == (None, "timeout")
    assert_reveals_nothing(delivery)


def test_a_receiver_that_never_answers_is_a_timeout(service, make_business, session_factory, clock):
    with HostileServer(hang) as receiver:
        delivery, _ = deliver_once(service, make_business, session_factory, clock, f"{receiver.url}/hook")
    assert delivery.log[-1]["error"] == "timeout" and delivery.attempts == 1


def test_a_gigabyte_answer_is_not_read(service, make_business, session_factory, clock):
    with HostileServer(pour) as receiver:
        delivery, _ = deliver_once(service, make_business, session_factory, clock, f"{receiver.url}/hook")
        sent = receiver.sent
    assert (delivery.log[-1]["status_code"], delivery.log[-1]["error"]) == (200, None)
    assert sent < 64 << 20  # what socket buffers took before the sender hung up, not the gigabyte


def test_a_redirect_is_an_answer_and_its_target_is_never_called(service, make_business, session_factory, clock):
    inside = Listener()
    try:
        to = f"http://127.0.0.1:{inside.port}/admin"
        with HostileServer(answer(307, {"Location": to})) as receiver:
            delivery, _ = deliver_once(service, make_business, session_factory, clock, f"{receiver.url}/hook")
    finally:
        inside.close()
    assert inside.accepted == 0
    assert (delivery.log[-1]["status_code"], delivery.log[-1]["error"]) == (307, "HTTP 307")


def test_an_error_answer_is_stored_as_its_status_without_its_body(service, make_business, session_factory, clock):
    body = b"Traceback: connection to 10.1.2.3:5432 failed for user admin"
    with HostileServer(answer(500, body=body)) as receiver:
        delivery, _ = deliver_once(service, make_business, session_factory, clock, f"{receiver.url}/hook")
    assert (delivery.log[-1]["status_code"], delivery.log[-1]["error"]) == (500, "HTTP 500")
    assert "10.1.2.3" not in str(delivery.log)


def test_a_closed_port_is_a_refused_connection(service, make_business, session_factory, clock):
    delivery, _ = deliver_once(service, make_business, session_factory, clock, f"http://127.0.0.1:{free_port()}/h")
    assert delivery.log[-1]["error"] == "connection refused"
    assert_reveals_nothing(delivery)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]"])
def test_an_internal_address_is_refused_and_stored_without_the_address(host, service, make_business,
                                                                       session_factory, clock):
    """Registered while private targets were allowed (or under another DNS answer); sent by a production sender."""
    inside = Listener()
    try:
        delivery, _ = deliver_once(service, make_business, session_factory, clock,
                                   f"http://{host}:{inside.port}/hook", allow_private=False)
    finally:
        inside.close()
    assert inside.accepted == 0
    assert delivery.log[-1]["error"] == "refused: internal address"
    assert_reveals_nothing(delivery)
