"""Clients sharing rate limits and circuits through the real Redis on loopback, across real processes.

Each process is ``_shared_worker.py`` run with this interpreter, with a tether client of its own; the upstream
(tether's, in this process) counts what reaches it. Every test uses a key prefix of its own, deleted afterwards.
Where the point is an interleaving, a flow is driven by hand on a fake clock against the same Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import tether
from tests.state.conftest import delete_prefix, redis_url  # noqa: F401 - the fixture
from tether import CircuitBreaker, Headers, Policy, RateLimit, Request, Response
from tether.client import CallEnv, Send, Sleep, call_flow
from tether.client._flow import Consult
from tether.client._shared import SharedGuards
from tether.errors import CircuitOpen, ConfigurationError, SharedStateUnavailable
from tether.policies import RetryBudget, RetryBudgetState
from tether.state import AsyncRedisState, Command, RedisCommands, RedisState
from tether.testing import FakeClock, Reply, Upstream

pytestmark = pytest.mark.integration

WORKER = str(Path(__file__).with_name("_shared_worker.py"))
PROCESSES = 4
URL = "https://api.example.com/v1/things"
Flow = Generator[Any, Any, Response]
RATE = 50  # per second, one at a time (burst 1): any 1 s holds at most RATE + 1 permits
JITTER = 1  # a request may reach the upstream a little late or early: one more may fall into a second


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:  # noqa: F811 - the fixture imported above
    name = f"tether-test:{uuid.uuid4().hex[:12]}:"
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
def counted() -> Iterator[Upstream]:
    with Upstream().running() as server:
        server.route("GET", "/q", Reply(json={"ok": True}))
        server.route("GET", "/warm-up", Reply(json={"ok": True}))
        server.route("GET", "/down", Reply(status=503))
        yield server


def _run_together(args: list[list[str]], timeout: float = 60.0) -> list[str]:
    """Start the workers, wait until each says ready, release them at once; their last output lines."""
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, *arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for arg in args
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.strip() == b"ready", (line, worker.stderr.read() if worker.stderr else b"")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            worker.stdin.flush()
        outputs = []
        for worker in workers:
            out, err = worker.communicate(timeout=timeout)
            assert worker.returncode == 0, err.decode()
            outputs.append(out.decode().strip().splitlines()[-1])
        return outputs
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def _most_in_one_second(counted: Upstream) -> int:
    times = sorted(r.received_at for r in counted.requests_for("/q"))
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_four_processes_sharing_a_quota_never_exceed_it_together(
    kind: str,
    counted: Upstream,
    redis_url: str,  # noqa: F811
    prefix: str,
) -> None:
    common = ["quota", "--upstream", counted.url, "--redis", redis_url, "--prefix", prefix, "--kind", kind]
    outputs = _run_together([common for _ in range(PROCESSES)])
    ends = [json.loads(output) for output in outputs]
    assert all(set(end) == {"200"} for end in ends), ends  # every call waited for its permit and succeeded
    received = len(counted.requests_for("/q"))
    assert received == sum(end["200"] for end in ends)
    assert _most_in_one_second(counted) <= RATE + 1 + JITTER
    assert received >= 2.5 * RATE  # and the quota was used: ~3 s at 50/s, shared by four processes


def test_the_control_four_processes_with_their_own_state_send_four_times_the_quota(
    counted: Upstream,
    redis_url: str,  # noqa: F811
    prefix: str,
) -> None:
    # shows the measure above can fail: without the shared state each process paces only itself
    common = ["quota", "--upstream", counted.url, "--redis", redis_url, "--prefix", prefix, "--memory"]
    _run_together([common for _ in range(PROCESSES)])
    assert _most_in_one_second(counted) > 3 * RATE


def test_a_circuit_opened_by_one_process_fails_fast_in_another(
    counted: Upstream,
    redis_url: str,  # noqa: F811
    prefix: str,
) -> None:
    common = ["breaker", "--upstream", counted.url, "--redis", redis_url, "--prefix", prefix]
    first = json.loads(
        subprocess.run([sys.executable, WORKER, *common, "--calls", "6"], capture_output=True, check=True, timeout=60)
        .stdout.decode()
        .strip()
        .splitlines()[-1]
    )
    assert first == ["ServerError"] * 4 + ["CircuitOpen"] * 2  # opened after min_calls failures
    sent = len(counted.requests_for("/down"))
    assert sent == 4
    second = json.loads(
        subprocess.run([sys.executable, WORKER, *common, "--calls", "3"], capture_output=True, check=True, timeout=60)
        .stdout.decode()
        .strip()
        .splitlines()[-1]
    )
    assert second == ["CircuitOpen"] * 3  # another process: refused at once, nothing sent
    assert len(counted.requests_for("/down")) == sent


async def test_the_async_client_reports_an_open_shared_circuit_with_its_key(
    counted: Upstream,
    redis_url: str,  # noqa: F811
    prefix: str,
) -> None:
    policy = Policy(retries=0, budget=None, breaker=CircuitBreaker(min_calls=2, failure_ratio=0.5, open_for=60.0))
    async with AsyncRedisState(redis_url, prefix=prefix) as state:
        async with tether.AsyncClient(counted.url, policy=policy, state=state) as one:
            for _ in range(2):
                with pytest.raises(tether.ServerError):
                    await one.get("/down")
        async with tether.AsyncClient(counted.url, policy=policy, state=state) as other:
            with pytest.raises(CircuitOpen) as caught:
                await other.get("/down")
    assert caught.value.key == counted.url
    assert 0 < caught.value.retry_after <= 60.0
    assert len(counted.requests_for("/down")) == 2


def test_a_fail_closed_state_that_cannot_be_reached_refuses_the_call_with_its_context(counted: Upstream) -> None:
    policy = Policy(retries=0, budget=None, rate_limits=(RateLimit(10),))
    with (
        RedisState("redis://127.0.0.1:9/0", on_unavailable="closed", timeout=0.2) as state,
        tether.Client(counted.url, policy=policy, state=state) as client,
        pytest.raises(SharedStateUnavailable) as caught,
    ):
        client.get("/q")
    assert caught.value.method == "GET"
    assert caught.value.url == f"{counted.url}/q"
    assert counted.requests_for("/q") == []


def test_a_fail_open_state_that_cannot_be_reached_keeps_calling_on_local_state(counted: Upstream) -> None:
    policy = Policy(retries=0, budget=None, rate_limits=(RateLimit(10),))
    with (
        RedisState("redis://127.0.0.1:9/0", timeout=0.2) as state,
        tether.Client(counted.url, policy=policy, state=state) as client,
    ):
        assert client.get("/q").status_code == 200
        assert state.stats().fallbacks >= 1


def test_a_client_refuses_the_other_kind_of_state(redis_url: str) -> None:  # noqa: F811
    with RedisState(redis_url) as blocking, pytest.raises(ConfigurationError, match="AsyncRedisState"):
        tether.AsyncClient("https://api.example.com", state=blocking)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="RedisState"):
        tether.Client("https://api.example.com", state=object())  # type: ignore[arg-type]


# -- one process: a flow driven by hand, a state that fails on cue ------------------------------------------------


def _get(url: str = URL) -> Request:
    return Request("GET", url, headers=Headers())


def _response(send: Send, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers=Headers(headers or {}), content=b"{}", request=send.request)


def _drive(flow: Flow, clock: FakeClock, answer: Callable[[Send], Response]) -> Response:
    """Run ``flow`` alone to its end: sleeps jump the clock, sends are answered by ``answer``, commands run."""
    action = next(flow)
    while True:
        outcome: object
        if isinstance(action, Send):
            outcome = answer(action)
        elif isinstance(action, Sleep):
            clock.advance(action.seconds)
            outcome = None
        elif isinstance(action, Consult):
            try:
                outcome = action.state.execute(action.command)
            except SharedStateUnavailable as exc:
                outcome = exc
        else:  # pragma: no cover - a flow alone never waits for a turn
            raise TypeError(f"unexpected {action!r}")
        try:
            action = flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class _FlakyRedisState(RedisState):
    """A RedisState whose connection fails for the commands ``fail`` picks (Redis going away mid-call)."""

    def __init__(self, url: str, fail: Callable[[Command[Any]], bool], **options: Any) -> None:
        super().__init__(url, **options)
        self.fail = fail

    def _run(self, command: Command[Any]) -> object:
        if self.fail(command):
            raise redis.ConnectionError("Connection reset by peer (injected)")
        return super()._run(command)


class _FlakyAsyncRedisState(AsyncRedisState):
    """The asyncio twin of :class:`_FlakyRedisState`."""

    def __init__(self, url: str, fail: Callable[[Command[Any]], bool], **options: Any) -> None:
        super().__init__(url, **options)
        self.fail = fail

    async def _run(self, command: Command[Any]) -> object:
        if self.fail(command):
            raise redis.ConnectionError("Connection reset by peer (injected)")
        return await super()._run(command)


def _script_is(name: str) -> Callable[[Command[Any]], bool]:
    return lambda command: command.script.name == name


AFTER_THE_RESPONSE = [
    pytest.param("circuit_record", Policy(retries=0, budget=None, breaker=CircuitBreaker()), {}, id="circuit-record"),
    pytest.param(
        "limiter_learn",
        Policy(retries=0, budget=None),
        {"RateLimit-Remaining": "99", "RateLimit-Reset": "60"},
        id="learned-quota",
    ),
]


@pytest.mark.parametrize(("script", "policy", "headers"), AFTER_THE_RESPONSE)
def test_a_fail_closed_state_lost_after_the_response_still_returns_it_sync(
    script: str,
    policy: Policy,
    headers: dict[str, str],
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """The POST reached the provider and succeeded; Redis failing for the *bookkeeping after it* (recording the
    circuit's outcome, learning the announced quota) loses that bookkeeping, not the response: raising
    SharedStateUnavailable ("no request was sent") would make a caller retrying on it charge twice."""
    with Upstream().running() as upstream:
        upstream.route("POST", "/v1/charges", Reply(json={"id": "ch_1"}, headers=headers))
        with (
            _FlakyRedisState(redis_url, _script_is(script), prefix=prefix, on_unavailable="closed") as state,
            tether.Client(upstream.url, policy=policy, state=state) as client,
        ):
            try:
                response = client.post("/v1/charges", json={"amount": 100})
            except SharedStateUnavailable as error:
                sent = len(upstream.requests_for("/v1/charges"))
                pytest.fail(f"the charge went through ({sent} POST sent, answered 200) but the call raised {error}")
    assert response.json() == {"id": "ch_1"}


@pytest.mark.parametrize(("script", "policy", "headers"), AFTER_THE_RESPONSE)
async def test_a_fail_closed_state_lost_after_the_response_still_returns_it_async(
    script: str,
    policy: Policy,
    headers: dict[str, str],
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """The asyncio twin of the test above: the same flow, the response returned."""
    async with Upstream() as upstream:
        upstream.route("POST", "/v1/charges", Reply(json={"id": "ch_1"}, headers=headers))
        async with (
            _FlakyAsyncRedisState(redis_url, _script_is(script), prefix=prefix, on_unavailable="closed") as state,
            tether.AsyncClient(upstream.url, policy=policy, state=state) as client,
        ):
            try:
                response = await client.post("/v1/charges", json={"amount": 100})
            except SharedStateUnavailable as error:
                sent = len(upstream.requests_for("/v1/charges"))
                pytest.fail(f"the charge went through ({sent} POST sent, answered 200) but the call raised {error}")
    assert response.json() == {"id": "ch_1"}


def test_a_retry_refused_by_an_unavailable_state_keeps_the_failure_it_retried(
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """A 503, then Redis fails the retry budget's spend: the call ends with SharedStateUnavailable, which keeps the
    503 (status, body, Retry-After) as ``last_error`` and ``__cause__``, as RetryBudgetExhausted, CircuitOpen or
    RateLimited raised at the same point of the flow do."""

    def spend(command: Command[Any]) -> bool:
        return command.script.name == "budget_settle" and command.args[-1] == "1"

    policy = Policy(retries=2, budget=RetryBudget())
    with Upstream().running() as upstream:
        upstream.route("GET", "/v1/things", Reply(status=503, body="maintenance"), Reply(json={}))
        with (
            _FlakyRedisState(redis_url, spend, prefix=prefix, on_unavailable="closed") as state,
            tether.Client(upstream.url, policy=policy, state=state, clock=FakeClock()) as client,
            pytest.raises(SharedStateUnavailable) as caught,
        ):
            client.get("/v1/things")
    error = caught.value
    linked = [getattr(error, "last_error", None), error.__cause__, error.__context__]
    assert any(isinstance(found, tether.ServerError) for found in linked), (
        f"{error!r} carries nothing of the 503 it was retrying: {linked}"
    )


@pytest.mark.parametrize("where", ["local-control", "shared"])
def test_the_shared_retry_budget_funds_retries_after_a_redirect_to_another_host(
    where: str,
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """Every call is redirected from api.example.com to files.example.com, and one in ten needs one retry there:
    well within a 25 % budget. The local budget (one per client) allows each retry; so must the shared one, which
    keeps one budget per call, its first host's, for the deposit and the spend alike (spending from the current
    host's, after the redirect, would draw on a budget no call ever deposits in: refused after its burst)."""
    clock = FakeClock()
    config = RetryBudget(ratio=0.25, burst=1.0, min_per_second=0.0)
    policy = Policy(retries=1, budget=config)
    state = None
    if where == "shared":
        state = RedisState(redis_url, prefix=prefix, on_unavailable="closed", timeout=5.0, deposit_interval=0.0)
        env = CallEnv(clock, budget=None, rand=lambda: 0.0, shared=SharedGuards(state))
    else:
        env = CallEnv(clock, budget=RetryBudgetState(config, clock.monotonic()), rand=lambda: 0.0)
    try:
        for number in range(1, 41):
            tries = 0

            def answer(send: Send, number: int = number) -> Response:
                nonlocal tries
                if send.request.url.startswith("https://api.example.com"):
                    return _response(send, 307, {"Location": "https://files.example.com/v1/blob"})
                tries += 1
                return _response(send, 503 if number % 10 == 0 and tries == 1 else 200)

            assert _drive(call_flow(_get(), policy, env), clock, answer).status_code == 200
    finally:
        if state is not None:
            state.close()


@pytest.mark.parametrize("where", ["local", "shared"])
def test_a_cancelled_probe_gives_its_permit_back_instead_of_reopening_the_circuit(
    where: str,
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """Half-open, a probe is let through and its caller is cancelled (a client disconnect, a task group torn
    down) before the answer: the flow is closed at its ``yield Send``. Its permit goes back without a verdict,
    so the next call probes at once, rather than every call being refused for ``probe_timeout`` (30 s) and the
    circuit re-opening as if the provider had failed: the cancellation is the caller's, not the provider's.
    Nothing can be yielded to Redis while the flow is being closed: a shared release rides with the client's
    next command."""
    clock = FakeClock()
    breaker = CircuitBreaker(min_calls=1, open_for=1.0, probe_timeout=30.0)
    policy = Policy(retries=0, budget=None, breaker=breaker, raise_for_status=False)
    state = None
    if where == "shared":
        state = RedisState(redis_url, prefix=prefix, on_unavailable="closed", timeout=5.0)
        state.commands = RedisCommands(prefix=prefix, server_time=False)  # decide on the fake clock
        env = CallEnv(clock, budget=None, shared=SharedGuards(state))
    else:
        env = CallEnv(clock, budget=None)
    try:
        assert _drive(call_flow(_get(), policy, env), clock, lambda send: _response(send, 503)).status_code == 503
        clock.advance(2.0)  # past open_for: the next call is a probe
        probe = call_flow(_get(), policy, env)
        action = next(probe)
        while isinstance(action, Consult):
            action = probe.send(action.state.execute(action.command))
        assert isinstance(action, Send)
        probe.close()  # cancelled on the wire
        clock.advance(0.5)
        try:
            response = _drive(call_flow(_get(), policy, env), clock, lambda send: _response(send, 200))
        except CircuitOpen as refused:
            pytest.fail(f"a cancelled probe shut the circuit: {refused}")
        assert response.status_code == 200
    finally:
        if state is not None:
            state.close()


@pytest.mark.parametrize("where", ["local-control", "shared"])
def test_a_client_scoped_circuit_is_keyed_by_the_clients_provider(
    where: str,
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """``scope="client"`` is "the whole client (one provider)". Locally each client has its own CallEnv; through
    Redis the key is the client's base URL origin, so a failing provider does not open the circuit of another
    provider's client scoped ``"client"`` (the same key serves ``rate_limit_scope="client"``'s quotas)."""
    policy = Policy(retries=0, budget=None, breaker=CircuitBreaker(scope="client", min_calls=2, open_for=60.0))
    with Upstream().running() as failing, Upstream().running() as healthy:
        failing.route("GET", "/x", Reply(status=503))
        healthy.route("GET", "/x", Reply(json={"ok": True}))
        state = RedisState(redis_url, prefix=prefix, timeout=5.0) if where == "shared" else None
        try:
            with tether.Client(failing.url, policy=policy, state=state) as stripe:
                for _ in range(2):
                    with pytest.raises(tether.ServerError):
                        stripe.get("/x")
            with tether.Client(healthy.url, policy=policy, state=state) as github:
                try:
                    assert github.get("/x").status_code == 200
                except CircuitOpen as refused:
                    pytest.fail(f"a healthy provider refused because another one failed: {refused}")
        finally:
            if state is not None:
                state.close()


def test_a_new_client_honours_a_stop_another_client_learned(
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """One client is told ``429 Retry-After: 30``; the stop is written to the shared limiter. A second client on
    the same state (another process, or a fresh client) consults the shared limiter from its first call, before
    any response *it* read announced a quota, and is refused without sending (its deadline is shorter)."""
    policy = Policy(retries=0, budget=None, deadline=5.0)
    with Upstream().running() as upstream:
        upstream.route("GET", "/x", Reply(status=429, headers={"Retry-After": "30"}))
        with RedisState(redis_url, prefix=prefix, timeout=5.0, on_unavailable="closed") as state:
            with tether.Client(upstream.url, policy=policy, state=state) as first, pytest.raises(tether.RateLimited):
                first.get("/x")
            with tether.Client(upstream.url, policy=policy, state=state) as second, pytest.raises(tether.RateLimited):
                second.get("/x")
        sent = len(upstream.requests_for("/x"))
    assert sent == 1, f"{sent} requests reached a provider that had asked for 30 s of quiet"


def test_an_open_shared_circuit_fails_fast_instead_of_queueing_for_a_slot(
    redis_url: str,  # noqa: F811 - the fixture
    prefix: str,
) -> None:
    """With the bulkhead's slots taken, a call asks the shared circuit (without taking a permit) before it queues:
    opened by another process, it refuses the call at once with ``CircuitOpen`` rather than after the wait."""
    clock = FakeClock()
    breaker = CircuitBreaker(min_calls=1, open_for=60.0)
    policy = Policy(retries=0, budget=None, breaker=breaker, bulkhead=tether.Bulkhead(1, max_queue=5))
    with RedisState(redis_url, prefix=prefix, on_unavailable="closed", timeout=5.0) as state:
        state.commands = RedisCommands(prefix=prefix, server_time=False)  # decide on the fake clock
        guards = SharedGuards(state, client="https://api.example.com")
        env = CallEnv(clock, budget=None, shared=guards)
        slow = call_flow(_get(), policy, env)
        action = next(slow)
        while isinstance(action, Consult):
            action = slow.send(action.state.execute(action.command))
        assert isinstance(action, Send)  # holds the only slot
        key = guards.stored(breaker.key("GET", URL))
        permit = state.acquire(key, breaker, clock.monotonic()).permit
        assert isinstance(permit, tether.policies.Admitted)
        assert state.record(key, breaker, permit, clock.monotonic(), failed=True, duration=0.1) == "open"
        with pytest.raises(CircuitOpen) as caught:
            _drive(call_flow(_get(), policy, env), clock, _response)
        assert caught.value.retry_after == pytest.approx(60.0, abs=0.5)
        (compartment,) = env.compartments().values()
        assert compartment.queued == 0
        slow.close()
