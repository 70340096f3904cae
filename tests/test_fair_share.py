"""Places shared between parties: one party never holds more than its most, a waiter never waits while it could
take a place, and a place that comes free goes to the waiting party holding the fewest (then first come)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nextslot.fair_share import FairShare, Waiter


def test_one_party_alone_gets_its_most_in_arrival_order():
    share, woken = FairShare(4, 3), []
    assert [share.take("a") for _ in range(4)] == [True, True, True, False]
    first, second = share.join("a", lambda: woken.append(1)), share.join("a", lambda: woken.append(2))
    assert share.take("b")  # the place the busy party may not take is another's at once
    assert (share.busy, share.waiting) == (4, 2)
    share.give_back("a")
    assert woken == [1] and first.granted and not second.granted
    share.give_back("b")  # a place "a" may not take: it holds its most again
    assert woken == [1] and share.free == 1


def test_a_freed_place_goes_to_the_waiting_party_holding_the_fewest_though_it_came_later():
    share, woken = FairShare(4, 3), []
    for party in "aaab":
        assert share.take(party)
    share.join("a", lambda: woken.append("a"))
    share.join("b", lambda: woken.append("b"))
    share.give_back("a")  # "a" now holds 2 and "b" 1
    assert woken == ["b"]
    share.give_back("b")  # "a" 2, "b" 1: the first of the party with fewer
    assert woken == ["b", "a"]


def test_a_waiter_that_gives_up_leaves_no_trace():
    share = FairShare(1, 1)
    assert share.take("a")
    waiter = share.join("b", lambda: pytest.fail("woken after it left"))
    share.leave_line(waiter)
    share.give_back("a")
    assert (share.free, share.waiting, dict(share.held)) == (1, 0, {})


def test_sizes_that_cannot_be_shared_are_refused():
    for size, most in ((0, 1), (2, 0), (2, 3)):
        with pytest.raises(ValueError):
            FairShare(size, most)


OPS = st.lists(st.tuples(st.sampled_from(["ask", "end", "quit"]), st.sampled_from("abc"), st.integers(0, 50)),
               max_size=80)


@settings(max_examples=2000, deadline=None)
@given(size=st.integers(1, 5), spare=st.integers(0, 2), ops=OPS)
def test_shares_hold_whatever_the_order_of_asks_ends_and_give_ups(size, spare, ops):
    share = FairShare(size, max(1, size - spare))
    holding: list[str] = []  # one entry per place held, by party
    waiting: list[Waiter] = []
    granted: list[Waiter] = []

    def ask(party: str) -> None:
        if share.take(party):
            holding.append(party)
        else:
            waiter = share.join(party, lambda: granted.append(waiter))
            waiting.append(waiter)

    for op, party, pick in ops:
        if op == "ask":
            ask(party)
        elif op == "end" and holding:
            gone = holding.pop(pick % len(holding))
            eligible = {w.party for w in waiting if share.held[w.party] - (w.party == gone) < share.most}
            fewest = min((share.held[p] - (p == gone) for p in eligible), default=None)
            share.give_back(gone)
            for waiter in granted:  # the one woken, if any: of a party that held the fewest, its first waiter
                assert share.held[waiter.party] - 1 == fewest
                assert waiter is min((w for w in waiting if w.party == waiter.party), key=lambda w: w.seq)
                waiting.remove(waiter)
                holding.append(waiter.party)
            assert len(granted) <= 1
            granted.clear()
        elif op == "quit" and waiting:
            share.leave_line(waiting.pop(pick % len(waiting)))
        assert share.free + sum(share.held.values()) == size and share.free >= 0
        assert sorted(holding) == sorted(share.held.elements())
        assert all(count <= share.most for count in share.held.values())
        assert share.waiting == len(waiting)
        # nobody waits who could take a place now
        assert all(share.free == 0 or share.held[w.party] >= share.most for w in waiting)
