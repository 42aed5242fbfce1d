"""Deadline: one budget per call; attempt timeout = min(per-attempt, remaining); no wait past it."""

import math

from hypothesis import given
from hypothesis import strategies as st

from tether.policies import Deadline

seconds = st.floats(min_value=0.001, max_value=1e5, allow_nan=False, allow_infinity=False)


def test_no_deadline_is_unbounded() -> None:
    deadline = Deadline.start(10.0, None)
    assert deadline.remaining(1e9) == math.inf
    assert deadline.attempt_timeout(1e9, None) is None
    assert deadline.attempt_timeout(1e9, 5.0) == 5.0
    assert not deadline.expired(1e12)


def test_attempt_timeout_shrinks_to_what_is_left() -> None:
    deadline = Deadline.start(100.0, 30.0)
    assert deadline.attempt_timeout(100.0, 10.0) == 10.0
    assert deadline.attempt_timeout(125.0, 10.0) == 5.0
    assert deadline.attempt_timeout(131.0, 10.0) == 0.0
    assert deadline.expired(130.0)
    assert deadline.elapsed(112.5) == 12.5


@given(start=seconds, total=seconds, per_attempt=seconds, offset=st.floats(min_value=0, max_value=2e5))
def test_an_attempt_never_outlives_the_deadline(start: float, total: float, per_attempt: float, offset: float) -> None:
    deadline = Deadline.start(start, total)
    now = start + offset
    timeout = deadline.attempt_timeout(now, per_attempt)
    assert timeout is not None
    assert 0 <= timeout <= per_attempt
    assert now + timeout <= deadline.expires_at + 1e-6 or timeout == 0


@given(start=seconds, total=seconds, offset=st.floats(min_value=0, max_value=2e5), wait=seconds)
def test_a_permitted_wait_ends_before_the_deadline(start: float, total: float, offset: float, wait: float) -> None:
    deadline = Deadline.start(start, total)
    now = start + offset
    if deadline.allows_wait(now, wait):
        assert now + wait < deadline.expires_at
