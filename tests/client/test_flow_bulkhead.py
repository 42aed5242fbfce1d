"""The bulkhead in the sans-IO pipeline: several flows share one CallEnv and are driven by hand, step by step."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import Any

import pytest

from tether import Headers, Policy, Request, Response
from tether.client import CallEnv, Send, Sleep, call_flow
from tether.client._flow import WaitTurn
from tether.errors import BulkheadFull, CircuitOpen, DeadlineExceeded
from tether.policies import CLOSED_ADMISSION, Bulkhead, CircuitBreaker, Compartment, RateLimit, Ticket
from tether.testing import FakeClock

Flow = Generator[Any, Any, Response]
URL = "https://api.example.com/v1/things"


def _setup(bulkhead: Bulkhead, **policy: Any) -> tuple[FakeClock, CallEnv, Policy]:
    clock = FakeClock()
    return clock, CallEnv(clock, budget=None, rand=lambda: 0.5), Policy(budget=None, bulkhead=bulkhead, **policy)


def _flow(env: CallEnv, policy: Policy) -> Flow:
    return call_flow(Request("GET", URL, headers=Headers()), policy, env)


def _ok(send: Send, status: int = 200) -> Response:
    return Response(status, headers=Headers(), content=b"{}", request=send.request)


def _compartment(env: CallEnv) -> Compartment:
    (compartment,) = env.compartments().values()
    return compartment


def _finish(flow: Flow, action: Any) -> Response:
    with pytest.raises(StopIteration) as stop:
        flow.send(_ok(action))
    return stop.value.value  # type: ignore[no-any-return]


def test_a_full_line_turns_the_call_away_before_sending() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=0))
    first = _flow(env, policy)
    assert isinstance(next(first), Send)
    with pytest.raises(BulkheadFull) as caught:
        next(_flow(env, policy))
    assert caught.value.attempts == 0
    assert caught.value.key == "https://api.example.com"
    assert "line is full" in str(caught.value)
    assert "Bulkhead(max_concurrent" in str(caught.value)  # says what to do


def test_a_queued_call_waits_for_its_turn_then_sends() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5), deadline=10.0)
    first, second = _flow(env, policy), _flow(env, policy)
    sending = next(first)
    waiting = next(second)
    assert isinstance(waiting, WaitTurn)
    assert waiting.timeout == pytest.approx(10.0)  # no max_wait: as long as the deadline allows
    assert _finish(first, sending).status_code == 200
    assert isinstance(waiting.ticket, Ticket)  # a bulkhead's ticket (an auth flow's WaitFor gives a Signal)
    assert waiting.ticket.granted  # the slot was handed over as the first request ended
    assert isinstance(second.send(True), Send)
    assert _compartment(env).active == 1


def test_waiting_past_max_wait_is_bulkhead_full_with_the_wait() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5, max_wait=0.25), deadline=10.0)
    first = _flow(env, policy)  # kept referenced: a flow collected mid-send is closed, which frees its slot
    next(first)
    second = _flow(env, policy)
    waiting = next(second)
    assert waiting.timeout == pytest.approx(0.25)
    with pytest.raises(BulkheadFull) as caught:
        second.send(False)
    assert caught.value.waited == pytest.approx(0.25)
    assert "max_wait" in str(caught.value)
    assert _compartment(env).queued == 0  # it left the line


def test_waiting_until_the_deadline_is_deadline_exceeded() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5, max_wait=60.0), deadline=2.0)
    first = _flow(env, policy)
    next(first)
    second = _flow(env, policy)
    assert next(second).timeout == pytest.approx(2.0)
    with pytest.raises(DeadlineExceeded, match="waiting in the bulkhead's line"):
        second.send(False)


def test_a_turn_that_comes_as_the_wait_times_out_is_taken() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5, max_wait=0.25))
    first, second = _flow(env, policy), _flow(env, policy)
    sending = next(first)
    next(second)
    _finish(first, sending)  # hands the slot over ...
    assert isinstance(second.send(False), Send)  # ... just as the shell's wait timed out: not lost, used
    assert _compartment(env).active == 1


def test_a_call_cancelled_in_line_leaves_it_and_gives_back_a_slot_handed_over() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5))
    first, second, third = _flow(env, policy), _flow(env, policy), _flow(env, policy)
    sending = next(first)
    next(second)
    next(third)
    second.close()  # cancelled while waiting: out of the line
    assert _compartment(env).queued == 1
    _finish(first, sending)  # the slot goes to the third
    third.close()  # cancelled after its turn came, before it knew: the slot must come back
    assert (_compartment(env).active, _compartment(env).queued) == (0, 0)


def test_a_call_cancelled_while_sending_frees_its_slot() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=5))
    first = _flow(env, policy)
    next(first)
    first.close()
    assert _compartment(env).active == 0


def test_no_slot_is_held_while_sleeping_between_attempts() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=0))
    first = _flow(env, policy)
    sending = next(first)
    assert isinstance(first.send(_ok(sending, 503)), Sleep)
    assert _compartment(env).active == 0
    assert isinstance(next(_flow(env, policy)), Send)  # another call goes meanwhile


def test_each_host_has_its_own_compartment() -> None:
    _, env, policy = _setup(Bulkhead(1, max_queue=0))
    first = _flow(env, policy)
    next(first)
    other = call_flow(Request("GET", "https://other.example.com/x", headers=Headers()), policy, env)
    assert isinstance(next(other), Send)


def test_equal_bulkhead_settings_built_per_call_share_one_compartment() -> None:
    """Compartments are found by the setting's value, not its identity: a policy built per call (an equal but new
    ``Bulkhead`` each time) shares the compartment of the one before, so the bound holds."""
    env = CallEnv(FakeClock(), budget=None, rand=lambda: 0.5)
    first = _flow(env, Policy(budget=None, bulkhead=Bulkhead(1, max_queue=0)))
    assert isinstance(next(first), Send)
    second = _flow(env, Policy(budget=None, bulkhead=Bulkhead(1, max_queue=0)))
    with pytest.raises(BulkheadFull):
        next(second)
    assert len(env.compartments()) == 1


# -- the bulkhead with the other guards ------------------------------------------------------------------------


def _through_pacing(clock: FakeClock, flow: Flow, action: Any) -> Any:
    """The flow's next action past any pacing wait (each ``Sleep`` passes on the clock)."""
    while isinstance(action, Sleep):
        clock.advance(action.seconds)
        action = flow.send(None)
    return action


def test_calls_leaving_the_line_together_still_keep_the_declared_rate() -> None:
    """The rate-limit permit is booked once a call holds its slot, not before it queues: booked before, the
    permits of calls waiting behind a slow request (0.1 s apart) are all due when it ends, and the line lets the
    calls go back to back, closer than ``RateLimit(10, burst=1)`` allows."""
    clock, env, policy = _setup(Bulkhead(1, max_queue=5), retries=0, rate_limits=(RateLimit(10, per=1.0, burst=1),))
    first, second, third = _flow(env, policy), _flow(env, policy), _flow(env, policy)
    sent_at: list[float] = []

    def sent(flow: Flow, action: Any) -> Send:
        action = _through_pacing(clock, flow, action)
        assert isinstance(action, Send)
        sent_at.append(clock.monotonic())
        return action

    sending = sent(first, next(first))
    assert isinstance(_through_pacing(clock, second, next(second)), WaitTurn)  # the first is on the wire
    assert isinstance(_through_pacing(clock, third, next(third)), WaitTurn)
    clock.advance(3.0)  # a slow first request
    _finish(first, sending)  # hands its slot to the second
    _finish(second, sent(second, second.send(True)))  # a fast answer: the slot goes to the third at once
    sent(third, third.send(True))

    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert min(gaps) >= 0.1 - 1e-9, f"sends at {sent_at}: closer than the 0.1 s RateLimit(10, burst=1) allows"


def test_the_pacing_wait_holds_the_slot_it_was_booked_under() -> None:
    """Between its turn and its send a call waits for its rate-limit permit holding its slot: the calls behind it
    in line stay there, and the slot is given back if the call is cancelled during that wait."""
    clock, env, policy = _setup(Bulkhead(1, max_queue=5), retries=0, rate_limits=(RateLimit(10, per=1.0, burst=1),))
    first, second = _flow(env, policy), _flow(env, policy)
    _finish(first, next(first))
    pacing = next(second)  # the slot is free, the permit 0.1 s away
    assert isinstance(pacing, Sleep)
    assert pacing.seconds == pytest.approx(0.1)
    assert (_compartment(env).active, _compartment(env).queued) == (1, 0)
    third = _flow(env, policy)
    assert isinstance(next(third), WaitTurn)
    second.close()  # cancelled while pacing: the slot goes to the call in line
    assert (_compartment(env).active, _compartment(env).queued) == (1, 0)
    assert isinstance(_through_pacing(clock, third, third.send(True)), Send)


def test_an_open_circuit_fails_fast_instead_of_queueing_for_a_slot() -> None:
    """With the circuit open, a call is refused with ``CircuitOpen`` at once, not after a wait in the bulkhead's
    line (until another request ends, its max_wait or its deadline), nor turned away with ``BulkheadFull``."""
    breaker = CircuitBreaker(min_calls=1, open_for=60.0)
    clock, env, policy = _setup(Bulkhead(1, max_queue=5), retries=0, breaker=breaker)
    slow = _flow(env, policy)
    assert isinstance(next(slow), Send)  # holds the only slot for a while
    circuit = env.circuit_for(breaker, "GET", URL)
    assert circuit.record(CLOSED_ADMISSION, clock.monotonic(), failed=True, duration=0.1)  # another call failed
    assert circuit.phase == "open"
    with pytest.raises(CircuitOpen) as caught:
        next(_flow(env, policy))
    assert caught.value.retry_after == pytest.approx(60.0, abs=0.2)
    assert _compartment(env).queued == 0
    clock.advance(61.0)  # due to probe: the call queues for its turn, and the circuit lets it probe then
    assert isinstance(next(_flow(env, policy)), WaitTurn)
