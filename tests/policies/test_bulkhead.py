"""The bulkhead compartment as a pure state machine: enter, queue, hand over, withdraw; nothing waits here."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import ConfigurationError
from tether.policies import Bulkhead, Compartment, Ticket


def test_admits_up_to_max_concurrent_then_queues_then_refuses() -> None:
    compartment = Compartment(Bulkhead(2, max_queue=1))
    assert compartment.enter() is True
    assert compartment.enter() is True
    queued = compartment.enter()
    assert isinstance(queued, Ticket)
    assert compartment.enter() is False  # the line is full
    assert (compartment.active, compartment.queued) == (2, 1)


def test_leave_hands_the_slot_to_the_first_in_line_and_wakes_it() -> None:
    compartment = Compartment(Bulkhead(1, max_queue=3))
    assert compartment.enter() is True
    first, second = compartment.enter(), compartment.enter()
    assert isinstance(first, Ticket)
    assert isinstance(second, Ticket)
    woken: list[str] = []
    first.arm(lambda: woken.append("first"))
    second.arm(lambda: woken.append("second"))
    compartment.leave()
    assert woken == ["first"]
    assert first.granted
    assert not second.granted
    assert compartment.active == 1  # handed over, never freed in between
    compartment.leave()
    assert woken == ["first", "second"]
    compartment.leave()
    assert (compartment.active, compartment.queued) == (0, 0)


def test_a_newcomer_never_jumps_the_line() -> None:
    compartment = Compartment(Bulkhead(1, max_queue=2))
    compartment.enter()
    waiting = compartment.enter()
    assert isinstance(waiting, Ticket)
    compartment.leave()  # to the ticket, not to whoever asks next
    assert waiting.granted
    assert isinstance(compartment.enter(), Ticket)


def test_arming_a_ticket_already_granted_wakes_at_once() -> None:
    compartment = Compartment(Bulkhead(1))
    compartment.enter()
    ticket = compartment.enter()
    assert isinstance(ticket, Ticket)
    compartment.leave()  # granted before anyone waits on it
    woken: list[bool] = []
    ticket.arm(lambda: woken.append(True))
    assert woken == [True]


def test_withdraw_leaves_the_line_or_reports_a_slot_handed_over_meanwhile() -> None:
    compartment = Compartment(Bulkhead(1, max_queue=2))
    compartment.enter()
    gone, late = compartment.enter(), compartment.enter()
    assert isinstance(gone, Ticket)
    assert isinstance(late, Ticket)
    assert compartment.withdraw(gone) is False
    assert compartment.queued == 1
    compartment.leave()  # goes to `late`, the only one left in line
    assert late.granted
    assert compartment.withdraw(late) is True  # it holds the slot now and must leave in turn
    compartment.leave()
    assert (compartment.active, compartment.queued) == (0, 0)


@pytest.mark.parametrize(
    "options",
    [
        {"max_concurrent": 0},
        {"max_concurrent": True},
        {"max_concurrent": 1.5},
        {"max_concurrent": 1, "max_queue": -1},
        {"max_concurrent": 1, "max_wait": 0},
        {"max_concurrent": 1, "scope": "planet"},
    ],
)
def test_nonsense_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="Bulkhead needs"):
        Bulkhead(**options)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 4),
    line=st.integers(0, 4),
    steps=st.lists(st.sampled_from(["enter", "leave", "withdraw"]), max_size=60),
)
def test_slots_in_use_never_exceed_the_limit_and_nothing_is_lost(limit: int, line: int, steps: list[str]) -> None:
    compartment = Compartment(Bulkhead(limit, max_queue=line))
    holding = 0  # callers that hold a slot, as they themselves know it
    waiting: list[Ticket] = []
    for step in steps:
        if step == "enter":
            entered = compartment.enter()
            if entered is True:
                holding += 1
            elif isinstance(entered, Ticket):
                waiting.append(entered)
        elif step == "leave" and holding:
            compartment.leave()
            holding -= 1
        elif step == "withdraw" and waiting and compartment.withdraw(waiting.pop(0)):
            holding += 1
        for ticket in [t for t in waiting if t.granted]:  # woken callers now hold their slot
            waiting.remove(ticket)
            holding += 1
        assert compartment.active == holding <= limit
        assert compartment.queued == len(waiting) <= line
        if waiting:
            assert holding == limit  # nobody waits while a slot is free


def test_threads_entering_and_leaving_at_once_keep_the_count_exact() -> None:
    compartment = Compartment(Bulkhead(3, max_queue=1000))
    peak = [0]
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            entered = compartment.enter()
            if isinstance(entered, Ticket):
                turn = threading.Event()
                entered.arm(turn.set)
                assert turn.wait(5)
            elif entered is False:
                continue
            with lock:
                peak[0] = max(peak[0], compartment.active)
            compartment.leave()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (compartment.active, compartment.queued) == (0, 0)
    assert 1 <= peak[0] <= 3
