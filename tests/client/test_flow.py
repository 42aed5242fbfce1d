"""The sans-IO call pipeline, driven by hand with scripted outcomes and a fake clock (no I/O, no sleeping)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether import Headers, Policy, Request, Response
from tether.auth import Auth
from tether.client import CallEnv, Send, call_flow
from tether.errors import (
    ClientError,
    ConnectError,
    DeadlineExceeded,
    RateLimited,
    ReadError,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    ServerError,
    TransportError,
    TransportTimeout,
    Unauthorized,
)
from tether.events import AttemptStarted, CallCompleted, Event, GaveUp, RetryScheduled, RetrySuppressed
from tether.policies import CircuitBreaker, RateLimit, RetryBudget, RetryBudgetState
from tether.testing import FakeClock

Step = int | TransportError | tuple[int, dict[str, str]]


class Script:
    """Answers each Send with the next scripted step, advancing the fake clock by ``latency`` per attempt."""

    def __init__(self, steps: Sequence[Step], clock: FakeClock, latency: float = 0.0) -> None:
        self.steps = list(steps)
        self.clock = clock
        self.latency = latency
        self.sends: list[Send] = []
        self.sleeps: list[float] = []
        self.answers: list[Response | TransportError] = []

    def answer(self, action: Send) -> Response | TransportError:
        self.sends.append(action)
        answer = self._answer(action)
        self.answers.append(answer)
        return answer

    def _answer(self, action: Send) -> Response | TransportError:
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, TransportError):
            if isinstance(step, TransportTimeout) and action.timeout is not None:
                self.clock.advance(action.timeout)
            return type(step)(str(step.summary))
        if action.timeout is not None and self.latency > action.timeout:
            self.clock.advance(action.timeout)
            return TransportTimeout("no answer within the attempt timeout")
        self.clock.advance(self.latency)
        status, headers = step if isinstance(step, tuple) else (step, {})
        return Response(status, headers=Headers(headers), content=b'{"ok": false}', request=action.request)


def run(flow: Generator[Any, Any, Response], script: Script) -> Response:
    action = next(flow)
    while True:
        if isinstance(action, Send):
            outcome: object = script.answer(action)
        else:
            script.sleeps.append(action.seconds)
            script.clock.advance(action.seconds)
            outcome = None
        try:
            action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def env(clock: FakeClock, budget: RetryBudget | None = None, hooks: Sequence[Callable[[Event], None]] = ()) -> CallEnv:
    state = RetryBudgetState(budget, clock.monotonic()) if budget else None
    return CallEnv(clock, budget=state, hooks=hooks, rand=lambda: 0.5)


def request(method: str = "GET", headers: dict[str, str] | None = None) -> Request:
    return Request(method, "https://api.example.com/v1/things?api_key=sk_live_SECRET", headers=Headers(headers))


def call(
    steps: Sequence[Step],
    *,
    policy: Policy | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    budget: RetryBudget | None = None,
    hooks: Sequence[Callable[[Event], None]] = (),
    latency: float = 0.0,
    auth: Auth | None = None,
) -> tuple[Response, Script]:
    clock = FakeClock()
    script = Script(steps, clock, latency)
    flow = call_flow(request(method, headers), policy or Policy(budget=None), env(clock, budget, hooks), auth)
    return run(flow, script), script


def test_first_attempt_success_sends_once_and_never_sleeps() -> None:
    response, script = call([200])
    assert response.status_code == 200
    assert len(script.sends) == 1
    assert script.sleeps == []


def test_retries_retryable_statuses_with_jittered_backoff() -> None:
    response, script = call([503, 502, 200])
    assert response.status_code == 200
    assert len(script.sends) == 3
    # rand is fixed at 0.5: full jitter gives half of each ceiling (0.1, 0.2)
    assert script.sleeps == [0.05, 0.1]


def test_gives_up_after_the_allowed_retries_with_the_typed_error() -> None:
    with pytest.raises(ServerError) as caught:
        call([503], policy=Policy(retries=2, budget=None))
    error = caught.value
    assert (error.status_code, error.attempts) == (503, 3)
    assert "3 attempts" in str(error)


def test_non_retryable_status_raises_at_once() -> None:
    with pytest.raises(Unauthorized) as caught:
        call([401, 200])
    assert caught.value.attempts == 1


def test_raise_for_status_false_returns_the_final_response() -> None:
    response, script = call([503], policy=Policy(retries=1, budget=None, raise_for_status=False))
    assert response.status_code == 503
    assert len(script.sends) == 2


def test_post_without_a_key_is_not_retried() -> None:
    with pytest.raises(ServerError) as caught:
        call([503, 200], method="POST")
    assert caught.value.attempts == 1


def test_post_with_a_key_is_retried_and_keeps_the_same_key() -> None:
    response, script = call([503, 200], method="POST", headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert [s.request.headers["Idempotency-Key"] for s in script.sends] == ["k-1", "k-1"]


def test_custom_key_header_counts_as_keyed() -> None:
    from tether import Idempotency

    policy = Policy(budget=None, idempotency=Idempotency(header="X-Request-Id"))
    response, script = call([503, 200], method="PATCH", headers={"X-Request-Id": "r-1"}, policy=policy)
    assert len(script.sends) == 2
    assert response.status_code == 200


def test_post_connect_error_is_retried_even_without_a_key() -> None:
    response, script = call([ConnectError("refused"), 201], method="POST")
    assert response.status_code == 201
    assert len(script.sends) == 2


def test_post_read_error_without_key_is_not_retried() -> None:
    with pytest.raises(ReadError) as caught:
        call([ReadError("reset"), 200], method="POST")
    assert caught.value.attempts == 1
    assert caught.value.method == "POST"


def test_retry_after_is_honoured_never_earlier() -> None:
    response, script = call([(429, {"Retry-After": "7"}), 200])
    assert response.status_code == 200
    assert script.sleeps == [7.0]


def test_x_ratelimit_reset_epoch_is_honoured_on_429() -> None:
    clock_wall = FakeClock().time()
    _, script = call([(429, {"X-RateLimit-Reset": str(int(clock_wall) + 12)}), 200])
    assert script.sleeps == [12.0]


def test_retry_after_beyond_deadline_raises_at_once_without_sleeping() -> None:
    with pytest.raises(RetryAfterTooLong) as caught:
        call([(429, {"Retry-After": "120"}), 200], policy=Policy(deadline=30, budget=None))
    error = caught.value
    assert error.retry_after == 120
    assert isinstance(error.__cause__, RateLimited)
    assert error.__cause__.retry_after == 120
    assert "120 s" in str(error)


def test_retry_after_beyond_the_cap_raises_at_once() -> None:
    with pytest.raises(RetryAfterTooLong, match="max_retry_after"):
        call([(503, {"Retry-After": "11"})], policy=Policy(max_retry_after=10, deadline=None, budget=None))


def test_attempt_timeouts_shrink_to_the_deadline_and_timeout_at_deadline_is_deadline_exceeded() -> None:
    policy = Policy(deadline=25, attempt_timeout=10, retries=5, budget=None)
    with pytest.raises(DeadlineExceeded) as caught:
        call([TransportTimeout("slow")], policy=policy)
    error = caught.value
    assert isinstance(error.__cause__, TransportTimeout)
    assert error.last_error is error.__cause__
    assert error.elapsed <= 25.0


def test_deadline_error_when_backoff_would_pass_it() -> None:
    from tether.policies import Backoff

    policy = Policy(deadline=1, retries=3, budget=None, backoff=Backoff(initial=5, max=5))
    with pytest.raises(DeadlineExceeded) as caught:
        call([500], policy=policy)
    assert isinstance(caught.value.__cause__, ServerError)


def test_budget_suppresses_retries_and_chains_the_last_error() -> None:
    seen: list[Event] = []
    budget = RetryBudget(ratio=0, burst=1, min_per_second=0)
    with pytest.raises(RetryBudgetExhausted) as caught:
        call([503], budget=budget, hooks=[seen.append], policy=Policy(budget=budget))
    error = caught.value
    assert isinstance(error.__cause__, ServerError)
    assert error.last_error is error.__cause__
    assert error.attempts == 2
    assert [type(e) for e in seen if isinstance(e, RetrySuppressed)] == [RetrySuppressed]


def test_events_in_order() -> None:
    seen: list[Event] = []
    call([503, 200], hooks=[seen.append])
    assert [type(e) for e in seen] == [AttemptStarted, RetryScheduled, AttemptStarted, CallCompleted]
    assert all("SECRET" not in e.url for e in seen)


def test_gave_up_event_carries_the_error() -> None:
    seen: list[Event] = []
    with pytest.raises(ServerError):
        call([500], hooks=[seen.append], policy=Policy(retries=0, budget=None))
    gave_up = [e for e in seen if isinstance(e, GaveUp)]
    assert len(gave_up) == 1
    assert isinstance(gave_up[0].error, ServerError)


def test_a_failing_hook_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    response, _ = call([503, 200], hooks=[broken])
    assert response.status_code == 200
    assert "hook bug" in caplog.text


def test_logs_attempts_at_debug_and_failure_at_warning_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    with pytest.raises(ServerError):
        call([500], policy=Policy(retries=1, budget=None), headers={"Authorization": "Bearer sk_live_TOKEN"})
    levels = {r.levelname for r in caplog.records}
    assert {"DEBUG", "WARNING"} <= levels
    assert "attempt 1" in caplog.text
    assert "SECRET" not in caplog.text
    assert "TOKEN" not in caplog.text


def test_a_failed_call_logs_one_warning_even_when_the_budget_suppressed_its_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During an outage every call fails: one WARNING per call, not one per event (the suppression is DEBUG)."""
    caplog.set_level(logging.DEBUG, logger="tether")
    budget = RetryBudget(ratio=0, burst=1, min_per_second=0)
    with pytest.raises(RetryBudgetExhausted):
        call([503], budget=budget, policy=Policy(budget=budget))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "retry suppressed by the retry budget" in warnings[0].getMessage()
    assert any("suppressed" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


class RefreshOn401:
    """A minimal refresh-on-401 auth, the shape OAuth will take: resend once with a new token."""

    def __init__(self) -> None:
        self.token = "old"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        response = yield request.with_headers({"Authorization": f"Bearer {self.token}"})
        if response.status_code == 401:
            self.token = "new"
            yield request.with_headers({"Authorization": f"Bearer {self.token}"})


def test_auth_flow_can_resend_after_401() -> None:
    auth = RefreshOn401()
    response, script = call([401, 200], auth=auth)
    assert response.status_code == 200
    assert [s.request.headers["Authorization"] for s in script.sends] == ["Bearer old", "Bearer new"]


def test_auth_flow_second_401_raises_unauthorized_no_loop() -> None:
    with pytest.raises(Unauthorized) as caught:
        call([401], auth=RefreshOn401())
    assert caught.value.attempts == 2


outcomes = st.lists(
    st.one_of(
        st.sampled_from([200, 201, 400, 404, 408, 425, 429, 500, 502, 503, 504]),
        st.tuples(
            st.sampled_from([429, 503]), st.integers(min_value=0, max_value=90).map(lambda s: {"Retry-After": str(s)})
        ),
        st.sampled_from(["connect", "read", "timeout"]),
    ),
    min_size=1,
    max_size=12,
)


def _step(raw: object) -> Step:
    errors = {"connect": ConnectError("c"), "read": ReadError("r"), "timeout": TransportTimeout("t")}
    return errors[raw] if isinstance(raw, str) else raw  # type: ignore[return-value]


@settings(max_examples=300)
@given(
    steps=outcomes,
    deadline=st.floats(min_value=0.5, max_value=120),
    attempt_timeout=st.floats(min_value=0.1, max_value=30),
    retries=st.integers(min_value=0, max_value=6),
    latency=st.floats(min_value=0, max_value=5),
    method=st.sampled_from(["GET", "POST", "PUT"]),
)
def test_properties_of_any_call(
    steps: list[object], deadline: float, attempt_timeout: float, retries: int, latency: float, method: str
) -> None:
    """Whatever happens: the call ends within its deadline, never retries earlier than Retry-After, makes at most
    retries+1 attempts, gives each attempt at most its timeout, and repeats a keyless POST only when it was surely
    not processed (connect error or 429)."""
    clock = FakeClock()
    start = clock.monotonic()
    script = Script([_step(s) for s in steps], clock, latency=latency)
    policy = Policy(
        deadline=deadline, attempt_timeout=attempt_timeout, retries=retries, budget=None, max_retry_after=60
    )
    with contextlib.suppress(TransportError, DeadlineExceeded, RetryAfterTooLong, ClientError, ServerError):
        run(call_flow(request(method), policy, env(clock)), script)
    assert 1 <= len(script.sends) <= retries + 1
    for send in script.sends:
        assert send.timeout is not None
        assert 0 <= send.timeout <= attempt_timeout
    assert clock.monotonic() - start <= deadline + 1e-6
    # sleep k follows attempt k
    for answer, slept in zip(script.answers, script.sleeps, strict=False):
        if isinstance(answer, Response) and "Retry-After" in answer.headers:
            assert slept >= float(answer.headers["Retry-After"])
    if method == "POST":
        for answer in script.answers[:-1]:
            assert isinstance(answer, ConnectError) or (isinstance(answer, Response) and answer.status_code == 429)


def test_a_learned_stop_past_the_deadline_is_refused_locally_and_says_where_it_came_from() -> None:
    clock = FakeClock()
    shared = env(clock)
    policy = Policy(budget=None, deadline=5.0)
    first = Script([(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "60"})], clock)
    run(call_flow(request(), policy, shared), first)
    with pytest.raises(RateLimited) as caught:
        run(call_flow(request(), policy, shared), Script([200], clock))
    assert caught.value.response is None
    assert caught.value.retry_after == pytest.approx(60.0)
    assert "the quota the provider announced" in str(caught.value)
    assert "declared" not in str(caught.value)


def test_equal_settings_built_per_call_share_their_circuit_and_limiter() -> None:
    """States are found by the setting's value: a policy built per call (``Policy(breaker=CircuitBreaker(...))`` in
    each call) finds the circuit and quotas of an equal one built before, and the client keeps one per value."""
    clock = FakeClock()
    shared = env(clock)
    for _ in range(3):  # a circuit opened by per-call policies refuses the next such call
        policy = Policy(budget=None, retries=0, raise_for_status=False, breaker=CircuitBreaker(min_calls=3))
        run(call_flow(request(), policy, shared), Script([503], clock))
    (circuit,) = shared.circuits().values()
    assert circuit.phase == "open"
    url = "https://api.example.com/v1/things"
    assert shared.limiter_for(Policy(rate_limits=[RateLimit(10)]), "GET", url) is shared.limiter_for(  # type: ignore[arg-type]
        Policy(rate_limits=(RateLimit(10),)), "GET", url
    )
