"""The aiohttp transport's attempt timeouts, on the watchdog's shared timers.

The rounding is a pure function (property-tested); the cancellation semantics run on a real event loop against
the real fault-injecting upstream: a hang becomes a timeout no earlier than asked, a cancellation from anyone
else is never turned into a timeout, and no cancellation request is left behind on the task.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether._models import Request
from tether.client import AiohttpTransport
from tether.client._watchdog import GRACE, Watchdog, expiry
from tether.errors import TransportTimeout
from tether.testing import Reply, Upstream

pytestmark = pytest.mark.integration


@given(
    now=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    timeout=st.floats(min_value=1e-4, max_value=1e4, allow_nan=False),
)
def test_expiry_is_never_early_and_late_by_at_most_the_grace_and_one_percent(now: float, timeout: float) -> None:
    when = expiry(now, timeout)
    assert when >= now + timeout + GRACE - 1e-9 * (now + timeout)
    slack = GRACE + max(0.001, timeout / 100) * (1 + 1e-9) + 1e-9 * (now + timeout)  # float rounding of the grid
    assert when - (now + timeout) <= slack


def test_attempts_started_close_together_share_one_timer() -> None:
    assert expiry(1000.01, 10.0) == expiry(1000.04, 10.0) == 1010.1  # 10 s timeouts round to 100 ms ticks
    assert expiry(1000.0, 0.5) != expiry(1000.0, 0.52)  # 0.5 s timeouts to 1 ms ticks


def _get(upstream: Upstream, path: str) -> Request:
    return Request("GET", f"{upstream.url}{path}")


async def test_a_hang_is_cut_at_the_timeout_not_before(upstream: Upstream) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    transport = AiohttpTransport()
    try:
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match=r"within 0\.3 s"):
            await transport.send(_get(upstream, "/hang"), 0.3)
        elapsed = time.monotonic() - started
        assert 0.3 + GRACE <= elapsed < 0.3 + GRACE + 0.25, elapsed
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0  # the watchdog withdrew its cancellation
        await asyncio.sleep(0)  # and nothing is pending on the task
        upstream.route("GET", "/ok", Reply(json={"ok": True}))
        assert (await transport.send(_get(upstream, "/ok"), 0.3)).json() == {"ok": True}
    finally:
        await transport.aclose()


async def test_a_cancellation_from_outside_is_not_turned_into_a_timeout(upstream: Upstream) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    transport = AiohttpTransport()
    try:
        task = asyncio.create_task(transport.send(_get(upstream, "/hang"), 5.0))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await transport.aclose()


async def test_an_outer_timeout_stays_the_callers(upstream: Upstream) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    transport = AiohttpTransport()
    try:
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.1):
                await transport.send(_get(upstream, "/hang"), 5.0)
        assert not isinstance(caught.value, TransportTimeout)
    finally:
        await transport.aclose()


async def test_a_cancellation_arriving_with_the_alarm_still_propagates(upstream: Upstream) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    transport = AiohttpTransport()
    try:
        task = asyncio.create_task(transport.send(_get(upstream, "/hang"), 5.0))
        await asyncio.sleep(0.1)
        watchdog = transport._watchdog
        assert isinstance(watchdog, Watchdog)
        alarms = list(watchdog._alarms.values())
        assert alarms, "the attempt armed no alarm"
        for alarm in alarms:  # the alarm fires and, in the same loop step, someone else cancels the task
            watchdog._fire(alarm)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await transport.aclose()


async def test_many_attempts_share_few_timers(upstream: Upstream) -> None:
    upstream.route("GET", "/ok", Reply(json={"ok": True}))
    transport = AiohttpTransport(max_connections=20)
    try:
        responses = await asyncio.gather(*(transport.send(_get(upstream, "/ok"), 10.0) for _ in range(200)))
        assert all(response.status_code == 200 for response in responses)
        watchdog = transport._watchdog
        assert isinstance(watchdog, Watchdog)
        # one timer per 100 ms tick in which attempts started (200 loopback requests take well under a second
        # here), instead of one per attempt
        assert 1 <= len(watchdog) <= 20, len(watchdog)
    finally:
        await transport.aclose()
