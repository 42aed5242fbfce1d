"""Backoff schedule, retry classification and the retry decision."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import ConfigurationError, ConnectError, ReadError, TransportTimeout
from tether.policies import Backoff, GiveUp, Wait, decide, is_retryable, requested_delay

rand = st.floats(min_value=0, max_value=1, exclude_max=True)


def test_ceiling_grows_exponentially_then_caps() -> None:
    backoff = Backoff(initial=0.1, multiplier=2, max=1.0)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff.ceiling(10_000) == 1.0  # no overflow on absurd retry numbers


@given(n=st.integers(min_value=1, max_value=10_000), r=rand)
def test_full_jitter_stays_within_zero_and_the_ceiling(n: int, r: float) -> None:
    backoff = Backoff()
    assert 0 <= backoff.delay(n, r) <= backoff.ceiling(n) <= backoff.max


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="multiplier"):
        Backoff(multiplier=0.5)
    with pytest.raises(ConfigurationError):
        Backoff(initial=-1)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
def test_idempotent_methods_retry_on_retryable_statuses_and_transport_errors(method: str) -> None:
    for status in (408, 425, 429, 500, 502, 503, 504):
        assert is_retryable(method=method, keyed=False, status=status)
    assert is_retryable(method=method, keyed=False, error=TransportTimeout("t"))
    assert is_retryable(method=method, keyed=False, error=ReadError("r"))


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 409, 422, 501])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert not is_retryable(method="GET", keyed=True, status=status)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unsafe_methods_retry_only_with_a_key(method: str) -> None:
    assert not is_retryable(method=method, keyed=False, status=503)
    assert not is_retryable(method=method, keyed=False, error=ReadError("sent, then reset"))
    assert not is_retryable(method=method, keyed=False, error=TransportTimeout("maybe processed"))
    assert is_retryable(method=method, keyed=True, status=503)
    assert is_retryable(method=method, keyed=True, error=TransportTimeout("t"))


def test_connect_errors_and_429_retry_for_every_method() -> None:
    """Nothing was processed: a connect error never sent the request; a 429 was refused unprocessed."""
    assert is_retryable(method="POST", keyed=False, error=ConnectError("refused"))
    assert is_retryable(method="POST", keyed=False, status=429)


def test_statuses_are_configurable() -> None:
    assert is_retryable(method="GET", keyed=False, status=409, statuses=frozenset({409}))
    assert not is_retryable(method="GET", keyed=False, status=503, statuses=frozenset({409}))


def test_reset_headers_count_only_on_429_and_503() -> None:
    get = {"x-ratelimit-reset": "30"}.get
    assert requested_delay(429, get, 0.0) == 30.0
    assert requested_delay(503, get, 0.0) == 30.0
    assert requested_delay(500, get, 0.0) is None
    assert requested_delay(500, {"retry-after": "3"}.get, 0.0) == 3.0


def test_decide_gives_up_after_the_allowed_retries() -> None:
    assert decide(retry_number=4, retries=3, backoff=Backoff(), rand=0.5, remaining=100) == GiveUp("attempts")
    assert isinstance(decide(retry_number=3, retries=3, backoff=Backoff(), rand=0.5, remaining=100), Wait)


def test_decide_honours_the_server_delay() -> None:
    decision = decide(retry_number=1, retries=3, backoff=Backoff(), rand=0.99, remaining=100, server_delay=7)
    assert decision == Wait(7, server_asked=True)


def test_server_delay_beyond_deadline_or_cap_gives_up_at_once() -> None:
    too_long = decide(retry_number=1, retries=3, backoff=Backoff(), rand=0, remaining=5, server_delay=6)
    assert too_long == GiveUp("retry_after_too_long", retry_after=6)
    capped = decide(
        retry_number=1, retries=3, backoff=Backoff(), rand=0, remaining=1000, server_delay=61, max_retry_after=60
    )
    assert capped == GiveUp("retry_after_too_long", retry_after=61)


def test_backoff_that_reaches_the_deadline_gives_up() -> None:
    decision = decide(retry_number=1, retries=3, backoff=Backoff(initial=10, max=10), rand=0.5, remaining=4)
    assert decision == GiveUp("deadline")


@given(
    n=st.integers(min_value=1, max_value=20),
    retries=st.integers(min_value=0, max_value=20),
    r=rand,
    remaining=st.floats(min_value=0, max_value=1e4) | st.just(math.inf),
    server=st.none() | st.floats(min_value=0, max_value=1e4),
    cap=st.none() | st.floats(min_value=0.001, max_value=1e4),
)
def test_never_earlier_than_asked_never_past_the_deadline(
    n: int, retries: int, r: float, remaining: float, server: float | None, cap: float | None
) -> None:
    decision = decide(
        retry_number=n,
        retries=retries,
        backoff=Backoff(),
        rand=r,
        remaining=remaining,
        server_delay=server,
        max_retry_after=cap,
    )
    if isinstance(decision, Wait):
        assert n <= retries
        assert decision.seconds < remaining
        if server is not None:
            assert decision.seconds >= server
            assert cap is None or server <= cap
    elif server is not None and (server >= remaining or (cap is not None and server > cap)) and n <= retries:
        assert decision == GiveUp("retry_after_too_long", retry_after=server)
