"""Contact proofs in the core: the per-contact limit holds under concurrent requests, and a code is only good
with the challenge it was issued under."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from nextslot.core.customers.proofs import CODES_PER_CONTACT, CodeRequested
from nextslot.core.results import Rejected


def test_concurrent_requests_for_one_contact_get_three_codes_and_no_more(service, make_business):
    clinic = make_business("clinic")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: service.request_contact_code(clinic, "+447911123456"), range(8)))
    assert sum(isinstance(r, CodeRequested) for r in results) == CODES_PER_CONTACT
    assert {r.code for r in results if isinstance(r, Rejected)} == {"too_many_codes"}


def test_a_challenge_of_another_business_is_unknown_here(service, make_business):
    clinic, other = make_business("clinic"), make_business("clinic")
    sent = service.request_contact_code(clinic, "ann@example.com")
    assert isinstance(sent, CodeRequested) and sent.channel == "email"
    refused = service.verify_contact_code(other, sent.challenge, "000000")
    assert isinstance(refused, Rejected) and refused.code == "unknown_challenge"
    assert service.proven_contact(clinic, "nsp_nothing").code == "proof_required"


def test_concurrent_guesses_at_one_code_get_five_tries_between_them(service, make_business):
    clinic = make_business("clinic")
    sent = service.request_contact_code(clinic, "+447911123456")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: service.verify_contact_code(clinic, sent.challenge, f"{n:06d}"), range(12)))
    codes = sorted(r.code for r in results)
    assert codes.count("wrong_code") == 5 and codes.count("code_expired") == 7, codes
