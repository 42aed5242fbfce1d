"""The call pipeline, written once as a sans-IO generator.

``call_flow`` decides everything about a call — deadline, per-attempt timeout, classification, backoff,
``Retry-After``, the retry budget, the auth flow, the final error — and *yields* the things it cannot
do itself: :class:`Send` (perform this request with this timeout; answer with a :class:`Response` or the
:class:`TransportError` it raised), :class:`Sleep` (wait this long; answer ``None``), :class:`WaitTurn`
(wait for a bulkhead ticket at most this long; answer whether it was granted) and, for a client whose quotas,
circuits and retry budget live in a shared state (Redis), :class:`Consult` (run this command there; answer its
result). The async and sync shells (:mod:`tether.client._drive`) carry those out; a fake clock turns sleeps
into jumps. Its return value
is the final response; policy outcomes and HTTP errors are raised from it with the call's context filled in.

The hot path (first attempt succeeds, nobody listening) allocates one ``Send`` and reads the clock once.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from tether._clock import Clock
from tether._logging import logger, logging_hook
from tether._models import Request, Response
from tether._redaction import redact_url
from tether.auth import Auth, StaticAuth
from tether.auth._protocol import Signal, WaitFor
from tether.client._redirects import REDIRECT_STATUSES, follow
from tether.errors import (
    BulkheadFull,
    CircuitOpen,
    DeadlineExceeded,
    RateLimited,
    ReadError,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    SharedStateUnavailable,
    TetherError,
    TransportError,
    TransportTimeout,
    error_for_response,
)
from tether.events import (
    AttemptStarted,
    CallCompleted,
    CircuitChanged,
    Event,
    GaveUp,
    Hook,
    RetryScheduled,
    RetrySuppressed,
)
from tether.policies import (
    CLOSED_ADMISSION,
    Admitted,
    Bulkhead,
    CircuitBreaker,
    CircuitState,
    Compartment,
    GiveUp,
    Limiter,
    Policy,
    RateLimit,
    Refused,
    RetryBudgetState,
    Ticket,
    decide,
    is_retryable,
    requested_delay,
)
from tether.policies._scope import scope_key
from tether.policies.quota_headers import announces_quota, read_quota

if TYPE_CHECKING:  # tether.state is imported only by a client given a state (see tether.client._shared)
    from tether.client._shared import SharedCircuit, SharedGuards, SharedLimiter
    from tether.policies.breaker import Phase
    from tether.state import Admission, AsyncRedisState, Command, RedisState

__all__ = ["Action", "CallEnv", "Consult", "Outcome", "Send", "Sleep", "WaitTurn", "call_flow"]


@dataclass(slots=True)
class Send:
    """Action: send ``request``, allowing it ``timeout`` seconds (``None``: no limit)."""

    request: Request
    timeout: float | None


@dataclass(slots=True)
class Sleep:
    """Action: wait ``seconds``."""

    seconds: float


@dataclass(slots=True)
class WaitTurn:
    """Action: wait until ``ticket`` is granted, at most ``timeout`` seconds (``None``: no limit)."""

    ticket: Ticket | Signal
    timeout: float | None


@dataclass(slots=True)
class Consult:
    """Action: run ``command`` on the shared ``state``; answer its result, or the ``SharedStateUnavailable`` raised."""

    state: AsyncRedisState | RedisState
    command: Command[Any]


Action = Send | Sleep | WaitTurn | Consult
Outcome = Response | TransportError | bool | None | object
"""What the shell sends back: the response or transport error of a ``Send``; ``None`` after a ``Sleep``; after a
``WaitTurn``, whether the ticket was granted in time; after a ``Consult``, the command's result."""


S = TypeVar("S", bound=Hashable)
T = TypeVar("T")
V = TypeVar("V")


class _Registry(Generic[S, V]):
    """Per-key states under a setting, made on first use.

    A setting is found by its value (settings are frozen dataclasses, or tuples of them): equal settings share
    their states, so a policy built per call finds the states of an equal one built before, and the registry
    holds one setting per distinct value, not every object ever passed.
    """

    __slots__ = ("_by_setting",)

    def __init__(self) -> None:
        self._by_setting: dict[S, dict[str, V]] = {}

    def get(self, setting: S, key: str, make: Callable[[S, str], V]) -> V:
        """The state ``key`` under ``setting``; ``make(setting, key)`` builds it the first time."""
        states = self._by_setting.get(setting)
        if states is None:
            states = self._by_setting.setdefault(setting, {})
        found = states.get(key)
        if found is None:
            found = states.setdefault(key, make(setting, key))
        return found

    def by_key(self) -> dict[str, V]:
        """Every state, by key (the last setting's, if several settings share a key)."""
        return {key: state for states in self._by_setting.values() for key, state in states.items()}


class CallEnv:
    """What a client's calls share: the clock, the retry budget state, the hooks and the random source.

    ``credentials``: the lower-cased names of the headers the client's auth sets, which never follow a redirect
    to another origin.
    """

    __slots__ = (
        "_circuits",
        "_compartments",
        "_limiters",
        "_recent",
        "budget",
        "clock",
        "credentials",
        "hooks",
        "listening",
        "pacing",
        "random",
        "shared",
    )

    def __init__(
        self,
        clock: Clock,
        *,
        budget: RetryBudgetState | None,
        hooks: Sequence[Hook] = (),
        rand: Callable[[], float] = random.random,
        credentials: frozenset[str] = frozenset(),
        shared: SharedGuards | None = None,
    ) -> None:
        self.clock = clock
        self.shared = shared
        self.budget = None if shared is not None else budget  # a shared state keeps the budget
        self.credentials = credentials
        self.hooks: tuple[Hook, ...] = (logging_hook, *hooks)
        self.listening = bool(hooks)
        self.random = rand
        self._circuits: _Registry[CircuitBreaker, CircuitState] = _Registry()
        self._recent: tuple[CircuitBreaker, str, CircuitState] | None = None  # the last host circuit used
        self._limiters: _Registry[tuple[RateLimit, ...], Limiter] = _Registry()
        self._compartments: _Registry[Bulkhead, Compartment] = _Registry()
        # whether any response has announced a quota yet: until one does, calls without declared limits skip
        # the limiter entirely (most providers never announce one). With a shared state, always: another process
        # (or an earlier client) may have learned a quota or a stop this client has not seen.
        self.pacing = shared is not None

    def guards(
        self, policy: Policy, method: str, url: str
    ) -> tuple[CircuitState | SharedCircuit | None, Limiter | SharedLimiter | None]:
        """The circuit and the limiter a call to ``method url`` goes through under ``policy``, where it has them.

        No limiter without declared limits until some response has announced a quota (:attr:`pacing`), except
        with a shared state, whose limiter every call consults.
        """
        breaker = policy.breaker
        circuit: CircuitState | SharedCircuit | None = None
        if breaker is not None:
            shared = self.shared
            circuit = self.circuit_for(breaker, method, url) if shared is None else shared.circuit(breaker, method, url)
        limiter = self.limiter_for(policy, method, url) if policy.rate_limits or self.pacing else None
        return circuit, limiter

    def limiter_for(self, policy: Policy, method: str, url: str) -> Limiter | SharedLimiter:
        """The limiter of the quotas ``policy.rate_limits`` for a call to ``method url``."""
        if self.shared is not None:
            return self.shared.limiter(policy, method, url)
        return self._limiters.get(policy.rate_limits, scope_key(policy.rate_limit_scope, method, url), Limiter)

    def compartment_for(self, policy: Policy, method: str, url: str) -> Compartment | None:
        """The bulkhead compartment a call to ``method url`` goes through under ``policy``, if it has a bulkhead."""
        bulkhead = policy.bulkhead
        if bulkhead is None:
            return None
        return self._compartments.get(bulkhead, bulkhead.key(method, url), Compartment)

    def compartments(self) -> dict[str, Compartment]:
        """Every bulkhead compartment the calls have used, by key."""
        return self._compartments.by_key()

    def circuit_for(self, breaker: CircuitBreaker, method: str, url: str) -> CircuitState:
        """The circuit a call to ``method url`` belongs to under ``breaker``.

        Most calls of a client go to one host: the last host circuit is remembered, and a URL on the same origin
        finds it without working out its key.
        """
        recent = self._recent
        if recent is not None and (recent[0] is breaker or recent[0] == breaker) and url.startswith(recent[1]):
            follows = url[len(recent[1]) : len(recent[1]) + 1]
            if not follows or follows in "/?#":
                return recent[2]
        circuit = self.circuit(breaker, breaker.key(method, url))
        if breaker.scope == "host":
            self._recent = (breaker, circuit.key, circuit)
        return circuit

    def circuit(self, breaker: CircuitBreaker, key: str) -> CircuitState:
        """The circuit ``key`` under the ``breaker`` setting, created closed on first use."""
        return self._circuits.get(breaker, key, CircuitState)

    def circuits(self) -> dict[str, CircuitState]:
        """Every circuit the calls have used, by key (the last setting's, if several settings share a key)."""
        return self._circuits.by_key()

    def emit(self, event: Event) -> None:
        """Send ``event`` to every hook; a failing hook is logged, never allowed to break the call."""
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:
                logger.exception("tether hook %r failed on %s", hook, event.name)

    def observed(self) -> bool:
        """Whether anything listens to routine (non-failure) events."""
        return self.listening or logger.isEnabledFor(logging.DEBUG)


class _Stats:
    """A call's running totals; ``budget_key``: the shared retry budget it deposits in and spends from."""

    __slots__ = ("attempts", "budget_key", "started")

    def __init__(self, started: float, budget_key: str = "") -> None:
        self.started = started
        self.attempts = 0
        self.budget_key = budget_key


def _reason(outcome: Response | TransportError) -> str:
    if isinstance(outcome, Response):
        return f"status {outcome.status_code}"
    return type(outcome).__name__


def call_flow(
    request: Request, policy: Policy, env: CallEnv, auth: Auth | None = None
) -> Generator[Action, Outcome, Response]:
    """The whole call: the auth flow around the attempt loop; raises typed errors per ``policy``.

    Without auth, or with static auth, the attempt loop *is* the call: one generator, no nesting.
    """
    stats = _Stats(env.clock.monotonic())
    if env.budget is not None and policy.budget is not None:
        env.budget.record_request(stats.started)
    elif env.shared is not None and policy.budget is not None:
        # one budget for the whole call, its first host's: a redirect or an auth request to another host spends
        # from the budget the call deposited in
        stats.budget_key = env.shared.budget_key(request.method, request.url)
    if auth is None:
        return _attempts(request, policy, env, stats, final=True)
    if isinstance(auth, StaticAuth):
        return _attempts(auth.apply(request), policy, env, stats, final=True)
    return _authenticated(request, policy, env, stats, auth)


def _authenticated(
    request: Request, policy: Policy, env: CallEnv, stats: _Stats, auth: Auth
) -> Generator[Action, Outcome, Response]:
    """Run each request the auth flow yields through the attempt loop, until it is satisfied."""
    flow = auth.auth_flow(request)
    outgoing = next(flow)
    while True:
        if isinstance(outgoing, WaitFor):  # e.g. another call's token refresh: the driver waits, the flow re-checks
            yield WaitTurn(outgoing.signal, outgoing.timeout)
            outgoing = next(flow)
            continue
        response = yield from _attempts(outgoing, policy, env, stats, final=False)
        try:
            outgoing = flow.send(response)
        except StopIteration:
            return _finish(response, policy, env, stats)


def _finish(response: Response, policy: Policy, env: CallEnv, stats: _Stats) -> Response:
    """The call's end: raise the typed error for a 4xx/5xx (per policy), else report completion."""
    clock = env.clock
    request = response.request
    assert request is not None  # noqa: S101 - transports always attach the request
    elapsed = clock.monotonic() - stats.started
    if response.status_code >= 400 and policy.raise_for_status:
        error = error_for_response(response, attempts=stats.attempts, elapsed=elapsed, now=clock.time)
        raise _gave_up(env, request, stats.attempts, elapsed, error)
    if env.observed():
        env.emit(CallCompleted(request.method, redact_url(request.url), stats.attempts, response.status_code, elapsed))
    return response


def _gave_up(env: CallEnv, request: Request, attempts: int, elapsed: float, error: TetherError) -> TetherError:
    error.attempts = attempts
    error.elapsed = elapsed
    env.emit(GaveUp(request.method, redact_url(request.url), attempts, elapsed, error))
    return error


def _attempts(  # noqa: PLR0912, PLR0915 - one loop, every branch a documented outcome
    request: Request, policy: Policy, env: CallEnv, stats: _Stats, *, final: bool
) -> Generator[Action, Outcome, Response]:
    """Attempt ``request`` until it succeeds, is not retryable, or a policy stops it.

    ``final``: this response ends the call (no auth flow will look at it), so finish the call here.
    """
    clock = env.clock
    method = request.method
    expires_at = math.inf if policy.deadline is None else stats.started + policy.deadline
    per_attempt = policy.attempt_timeout
    statuses = policy.retry_statuses
    observed = env.listening or logger.isEnabledFor(logging.DEBUG)
    url = redact_url(request.url) if observed else ""
    retry_number = 0
    hops = 0
    error: TetherError | None
    previous: TetherError | None = None  # the last failed attempt's error, for a circuit that opens mid-call
    if policy.breaker is None and not policy.rate_limits and not env.pacing:  # the common case, without a call
        circuit, limiter = None, None
    else:
        circuit, limiter = env.guards(policy, method, request.url)
    compartment = None if policy.bulkhead is None else env.compartment_for(policy, method, request.url)
    permit: Admitted | Refused | None = None
    now = stats.started if stats.attempts == 0 else clock.monotonic()
    shared = env.shared
    if shared is not None and stats.attempts == 0 and policy.budget is not None:  # the call's deposit
        deposit = shared.record_request(policy.budget, stats.budget_key, now)
        if deposit is not None:
            yield from _consult(env, deposit, request, stats, None)
    while True:
        remaining = expires_at - now
        if remaining <= 0:
            expired = DeadlineExceeded(f"deadline of {policy.deadline:g} s exceeded", method=method, url=request.url)
            raise _gave_up(env, request, stats.attempts, now - stats.started, expired)
        if compartment is not None:  # the turn first, then the rate limit: see tether.policies.bulkhead
            if circuit is not None:  # an open circuit fails the call now, not after its wait in line
                shut = yield from _open_circuit(env, circuit, compartment, now, request, stats, previous)
                if shut is not None:
                    refused = _circuit_open(shut, now, circuit.key, request, previous)
                    raise _gave_up(env, request, stats.attempts, now - stats.started, refused) from previous
            admission = compartment.enter()
            if admission is not True:
                refusal = yield from _wait_turn(
                    compartment,
                    admission,
                    policy=policy,
                    request=request,
                    now=now,
                    expires_at=expires_at,
                    previous=previous,
                )
                if refusal is not None:
                    raise _gave_up(env, request, stats.attempts, clock.monotonic() - stats.started, refusal) from (
                        previous
                    )
                now = clock.monotonic()
                remaining = expires_at - now
                if remaining <= 0:  # the turn came too late to send anything
                    compartment.leave()
                    continue
        try:  # a slot, if any, is held from here until the request is answered
            if limiter is not None:
                if shared is None:
                    wait = cast(Limiter, limiter).reserve(now, remaining)
                else:
                    reserve = cast("SharedLimiter", limiter).reserve(now, remaining)
                    wait = yield from _consult(env, reserve, request, stats, previous)
                if wait >= remaining:  # not booked (or no time would be left): refuse now rather than sleep
                    refused_here = _locally_limited(policy, request, wait)
                    raise _gave_up(env, request, stats.attempts, now - stats.started, refused_here) from previous
                if wait > 0:
                    yield Sleep(wait)
                    now = clock.monotonic()
                    remaining = expires_at - now
                    if remaining <= 0:
                        continue
            if per_attempt is None:
                timeout = None if remaining == math.inf else remaining
            else:
                timeout = per_attempt if per_attempt < remaining else remaining
            if circuit is not None:
                if isinstance(circuit, CircuitState):
                    phase = circuit.phase
                    permit = CLOSED_ADMISSION if phase == "closed" else circuit.acquire(now)
                    if permit is not CLOSED_ADMISSION and circuit.phase != phase:  # turned half-open (or open)
                        _announce(env, circuit.key, circuit.phase, request, url, stats.attempts)
                else:
                    decided: Admission = yield from _consult(env, circuit.acquire(now), request, stats, previous)
                    permit = decided.permit
                    if decided.changed:
                        _announce(env, circuit.key, decided.phase, request, url, stats.attempts)
                if type(permit) is Refused:
                    refused = _circuit_open(permit, now, circuit.key, request, previous)
                    raise _gave_up(env, request, stats.attempts, now - stats.started, refused) from previous
                sent_at = now
            stats.attempts += 1
            if observed:
                env.emit(AttemptStarted(method, url, stats.attempts, timeout))
            try:
                outcome = yield Send(request, timeout)
            except GeneratorExit:  # cancelled on the wire: a probe gets no verdict, its permit goes back
                if circuit is not None and type(permit) is Admitted and permit.probe:
                    _release(env, circuit, permit)
                raise
        finally:
            if compartment is not None:
                compartment.leave()
        if circuit is not None:
            now = clock.monotonic()
            failed = type(outcome) is not Response or outcome.status_code in circuit.config.failure_statuses
            assert isinstance(permit, Admitted)  # noqa: S101 - narrowing: a refused call was raised above
            if isinstance(circuit, CircuitState):
                if circuit.record(permit, now, failed, now - sent_at):
                    _announce(env, circuit.key, circuit.phase, request, url, stats.attempts)
            else:
                recorded = circuit.record(permit, now, failed, now - sent_at)
                changed_to: Phase | None = yield from _after_response(env, recorded, request)
                if changed_to is not None:
                    _announce(env, circuit.key, changed_to, request, url, stats.attempts)
        if type(outcome) is Response:
            status = outcome.status_code
            if policy.learn_rate_limits and announces_quota(outcome.headers.names, status):
                quota = read_quota(status, outcome.headers.get, clock.time)
                if quota is not None:
                    if limiter is None:
                        limiter = env.limiter_for(policy, method, request.url)
                    learned = limiter.learn(clock.monotonic(), quota.remaining, quota.reset_after, window=quota.window)
                    if learned is not None:  # a command for the shared state
                        yield from _after_response(env, learned, request)
                    env.pacing = True
            if status < 400 and status not in statuses:
                if status >= 300 and status in REDIRECT_STATUSES and policy.max_redirects:
                    now = clock.monotonic()
                    try:
                        following = _next_hop(request, outcome, env, hops, policy.max_redirects)
                    except ReadError as bad_redirect:
                        raise _gave_up(env, request, stats.attempts, now - stats.started, bad_redirect) from None
                    if following is not None:  # a new request, with its own retries, within the same deadline
                        hops += 1
                        request, method, retry_number = following, following.method, 0
                        url = redact_url(request.url) if observed else ""
                        circuit, limiter = env.guards(policy, method, request.url)
                        compartment = env.compartment_for(policy, method, request.url)
                        continue
                if final and observed:
                    return _finish(outcome, policy, env, stats)
                return outcome
            error = None
        elif isinstance(outcome, TransportError):
            now = clock.monotonic()
            outcome.method, outcome.url = method, redact_url(request.url)
            if isinstance(outcome, TransportTimeout) and timeout is not None and now >= expires_at:
                deadline_error = DeadlineExceeded(
                    f"deadline of {policy.deadline:g} s exceeded",
                    method=method,
                    url=request.url,
                    last_error=outcome,
                )
                deadline_error.__cause__ = outcome
                raise _gave_up(env, request, stats.attempts, now - stats.started, deadline_error)
            status = None
            error = outcome
        else:  # pragma: no cover - a shell bug, not a runtime condition
            raise TypeError(f"a Send must be answered with a Response or TransportError, got {outcome!r}")

        keyed = policy.idempotency is not None and policy.idempotency.header in request.headers
        if not is_retryable(method=method, keyed=keyed, status=status, error=error, statuses=statuses):
            if isinstance(outcome, Response):
                return _finish(outcome, policy, env, stats) if final else outcome
            raise _gave_up(env, request, stats.attempts, clock.monotonic() - stats.started, outcome)
        server_delay = (
            requested_delay(outcome.status_code, outcome.headers.get, clock.time())
            if isinstance(outcome, Response)
            else None
        )

        now = clock.monotonic()
        retry_number += 1
        decision = decide(
            retry_number=retry_number,
            retries=policy.retries,
            backoff=policy.backoff,
            rand=env.random(),
            remaining=expires_at - now,
            server_delay=server_delay,
            max_retry_after=policy.max_retry_after,
        )
        last = error if error is not None else _response_error(outcome, stats, clock, now)
        previous = last
        if isinstance(decision, GiveUp):
            if decision.reason == "attempts":
                if isinstance(outcome, Response):
                    return _finish(outcome, policy, env, stats) if final else outcome
                raise _gave_up(env, request, stats.attempts, now - stats.started, last)
            if isinstance(outcome, Response) and not policy.raise_for_status:
                return _finish(outcome, policy, env, stats) if final else outcome
            failure = _policy_failure(decision, policy, request, last)
            raise _gave_up(env, request, stats.attempts, now - stats.started, failure) from last
        if shared is not None and policy.budget is not None:
            spend = shared.try_spend(policy.budget, stats.budget_key, now)
            allowed = yield from _consult(env, spend, request, stats, last)
        else:
            allowed = env.budget is None or policy.budget is None or env.budget.try_spend(now)
        if not allowed:
            env.emit(RetrySuppressed(method, redact_url(request.url), stats.attempts, _reason(outcome)))
            if isinstance(outcome, Response) and not policy.raise_for_status:
                return _finish(outcome, policy, env, stats) if final else outcome
            suppressed = RetryBudgetExhausted(
                f"retry suppressed by the retry budget after {_reason(outcome)}",
                method=method,
                url=request.url,
                last_error=last,
            )
            raise _gave_up(env, request, stats.attempts, now - stats.started, suppressed) from last
        if observed:
            env.emit(
                RetryScheduled(method, url, stats.attempts, decision.seconds, _reason(outcome), decision.server_asked)
            )
        yield Sleep(decision.seconds)
        now = clock.monotonic()


def _wait_turn(
    compartment: Compartment,
    admission: Ticket | bool,
    *,
    policy: Policy,
    request: Request,
    now: float,
    expires_at: float,
    previous: TetherError | None,
) -> Generator[Action, Outcome, TetherError | None]:
    """Wait in the compartment's line; ``None`` once a slot is held, else the error that turns the call away."""
    bulkhead = compartment.config
    key = compartment.key or "this client"
    busy = f"{bulkhead.max_concurrent} requests to {key} in flight"
    if type(admission) is not Ticket:  # no room in the line
        return BulkheadFull(
            f"{busy} and {bulkhead.max_queue} more waiting: the bulkhead's line is full; tether did not send it",
            key=compartment.key,
            last_error=previous,
            method=request.method,
            url=request.url,
        )
    remaining = expires_at - now
    limit = remaining if bulkhead.max_wait is None or bulkhead.max_wait > remaining else bulkhead.max_wait
    try:
        granted = yield WaitTurn(admission, None if limit == math.inf else limit)
    except BaseException:  # closed (cancelled) while waiting: leave the line, or give back a slot handed over
        if compartment.withdraw(admission):
            compartment.leave()
        raise
    if granted or compartment.withdraw(admission):  # the turn may have come just as the wait timed out
        return None
    if limit < remaining:
        return BulkheadFull(
            f"{busy}: waited {limit:.3g} s in the bulkhead's line (its max_wait) without a turn",
            key=compartment.key,
            waited=limit,
            last_error=previous,
            method=request.method,
            url=request.url,
        )
    return DeadlineExceeded(
        f"deadline of {policy.deadline:g} s exceeded waiting in the bulkhead's line ({busy})",
        method=request.method,
        url=request.url,
        last_error=previous,
    )


def _announce(env: CallEnv, key: str, phase: Phase, request: Request, url: str, attempt: int) -> None:  # noqa: PLR0917
    env.emit(CircuitChanged(request.method, url or redact_url(request.url), attempt, key, phase))


def _ask(env: CallEnv, command: Command[Any]) -> Generator[Action, Outcome, object]:
    """Have the driver run ``command`` on the shared state, after any deferred command; its answer, as it came."""
    shared = env.shared
    assert shared is not None  # noqa: S101 - only a client with a shared state makes commands
    deferred = shared.deferred()
    while deferred is not None:  # e.g. a cancelled probe's release; its answer concerns no call
        yield Consult(shared.state, deferred)
        deferred = shared.deferred()
    return (yield Consult(shared.state, command))


def _consult(
    env: CallEnv, command: Command[T], request: Request, stats: _Stats, last: TetherError | None
) -> Generator[Action, Outcome, T]:
    """The result of a decision taken before sending; the state unavailable (failing closed) ends the call.

    ``last``: the failure of the call's previous attempt, kept as the error's ``last_error`` and cause.
    """
    answer = yield from _ask(env, command)
    if isinstance(answer, SharedStateUnavailable):
        answer.method, answer.url = request.method, redact_url(request.url)
        answer.last_error = last
        raise _gave_up(env, request, stats.attempts, env.clock.monotonic() - stats.started, answer) from last
    return cast(T, answer)


def _after_response(env: CallEnv, command: Command[T], request: Request) -> Generator[Action, Outcome, T | None]:
    """The result of bookkeeping that follows a response (``None``: the state was unavailable).

    The request has gone out and been answered: losing the bookkeeping (a circuit's record, a learned quota)
    must not lose the response, which a caller might otherwise send again. The loss is logged, at WARNING the
    first time for the client (the state logs each outage too).
    """
    answer = yield from _ask(env, command)
    if isinstance(answer, SharedStateUnavailable):
        shared = env.shared
        assert shared is not None  # noqa: S101 - only a client with a shared state makes commands
        level = logging.DEBUG if shared.warned else logging.WARNING
        shared.warned = True
        logger.log(
            level,
            "%s %s: answered, but the shared state lost what followed (%s); the response is returned",
            request.method,
            redact_url(request.url),
            answer.summary,
        )
        return None
    return cast(T, answer)


def _open_circuit(  # noqa: PLR0917 - the call's context, as _consult takes it
    env: CallEnv,
    circuit: CircuitState | SharedCircuit,
    compartment: Compartment,
    now: float,
    request: Request,
    stats: _Stats,
    previous: TetherError | None,
) -> Generator[Action, Outcome, Refused | None]:
    """The refusal of an open circuit not yet due to probe, asked before queueing for a slot; no permit is taken.

    A shared circuit costs a round trip, so it is asked only when the compartment has no free slot (a racy read:
    at worst a call queues and is refused once its turn comes, or asks once too often).
    """
    if isinstance(circuit, CircuitState):
        return circuit.refusal(now)
    if not compartment.full:
        return None
    snapshot = yield from _consult(env, circuit.snapshot(now), request, stats, previous)
    if snapshot.phase == "open" and snapshot.open_until is not None and now < snapshot.open_until:
        return Refused(snapshot.open_until)
    return None


def _release(env: CallEnv, circuit: CircuitState | SharedCircuit, permit: Admitted) -> None:
    """Give back a probe's permit without a verdict; a shared one on the client's next command."""
    if isinstance(circuit, CircuitState):
        circuit.release(permit)
        return
    assert env.shared is not None  # noqa: S101 - a shared circuit belongs to a client with a shared state
    env.shared.defer(circuit.release(permit, env.clock.monotonic()))


def _locally_limited(policy: Policy, request: Request, wait: float) -> RateLimited:
    key = scope_key(policy.rate_limit_scope, request.method, request.url) or "this client"
    limits = ", ".join(f"{limit.rate}/{limit.per:g} s" for limit in policy.rate_limits)
    source = f"the declared rate limits ({limits})" if limits else "the quota the provider announced"
    return RateLimited(
        f"under {source} for {key}, the next call may go in {wait:.3g} s, after this call's deadline; tether "
        "did not send it",
        status_code=429,
        headers=[],
        body_excerpt="",
        retry_after=wait,
        method=request.method,
        url=request.url,
    )


def _circuit_open(
    refused: Refused, now: float, key: str, request: Request, previous: TetherError | None
) -> CircuitOpen:
    wait = max(0.0, refused.retry_at - now)
    return CircuitOpen(
        f"the circuit for {key or 'this client'} is open after repeated failures; next probe in {wait:.3g} s",
        key=key,
        retry_after=wait,
        last_error=previous,
        method=request.method,
        url=request.url,
    )


def _next_hop(request: Request, response: Response, env: CallEnv, hops: int, limit: int) -> Request | None:
    """The request a redirect leads to (``None``: not one to follow); ``ReadError`` past ``limit`` hops."""
    following = follow(request, response, env.credentials)
    if following is not None and hops >= limit:
        raise ReadError(
            f"more than {limit} redirects (the server may redirect in a loop)", method=request.method, url=request.url
        )
    return following


def _response_error(outcome: Response | TransportError, stats: _Stats, clock: Clock, now: float) -> TetherError:
    assert isinstance(outcome, Response)  # noqa: S101 - narrowing: transport errors are their own error
    return error_for_response(outcome, attempts=stats.attempts, elapsed=now - stats.started, now=clock.time)


def _policy_failure(decision: GiveUp, policy: Policy, request: Request, last: TetherError) -> TetherError:
    if decision.reason == "retry_after_too_long":
        delay = decision.retry_after or 0.0
        limit = (
            f"the {policy.max_retry_after:g} s max_retry_after"
            if policy.max_retry_after is not None and delay > policy.max_retry_after
            else "the time left before the deadline"
        )
        return RetryAfterTooLong(
            f"the server asked to wait {delay:g} s, longer than {limit}",
            retry_after=delay,
            last_error=last,
            method=request.method,
            url=request.url,
        )
    return DeadlineExceeded(
        f"deadline of {policy.deadline:g} s leaves no time for another attempt",
        method=request.method,
        url=request.url,
        last_error=last,
    )
