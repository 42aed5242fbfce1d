"""Learned pacing in the pipeline, against simulated providers: sequential calls through one client's flow on a
fake clock (the provider answers from the clock; nothing sleeps), counting the 429s the provider would give."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

from tether import Headers, Policy, Request, Response
from tether.client import CallEnv, Send, Sleep, call_flow
from tether.testing import FakeClock

Provider = Callable[[float], tuple[int, dict[str, str]]]
LATENCY = 0.02


def _paced(clock: FakeClock, provider: Provider, calls: int) -> list[int]:
    """The statuses of ``calls`` sequential calls through one client's flow, with learned pacing on."""
    env = CallEnv(clock, budget=None, rand=lambda: 0.5)
    policy = Policy(retries=0, budget=None, raise_for_status=False, deadline=None)
    statuses = []
    for _ in range(calls):
        flow: Generator[Any, Any, Response] = call_flow(Request("GET", "https://api.example.com/x"), policy, env)
        action = next(flow)
        while True:
            if isinstance(action, Sleep):
                clock.advance(action.seconds)
                outcome: object = None
            else:
                assert isinstance(action, Send)
                status, headers = provider(clock.monotonic() + LATENCY / 2)
                clock.advance(LATENCY)
                outcome = Response(status, headers=Headers(headers), content=b"{}", request=action.request)
            try:
                action = flow.send(outcome)
            except StopIteration as stop:
                statuses.append(stop.value.status_code)
                break
    return statuses


def test_shopifys_leaky_bucket_never_overflows() -> None:
    """``X-Shopify-Shop-Api-Call-Limit: used/40`` is a leaky bucket, not a fixed window: each response is taken as
    said (40 calls over ``used / 2`` s), so the pace slows to the leak rate as the bucket fills."""
    clock = FakeClock()
    size, leak = 40, 2.0
    level, last = 0.0, clock.monotonic()

    def shopify(at: float) -> tuple[int, dict[str, str]]:
        nonlocal level, last
        level, last = max(0.0, level - (at - last) * leak), at
        if level + 1 > size:
            return 429, {"X-Shopify-Shop-Api-Call-Limit": f"{size}/{size}", "Retry-After": "1.0"}
        level += 1
        return 200, {"X-Shopify-Shop-Api-Call-Limit": f"{math.ceil(level)}/{size}"}

    assert _paced(clock, shopify, 300).count(429) == 0


def _fixed_window(clock: FakeClock, *, quota: int, window: float, rounding: Callable[[float], int]) -> Provider:
    """A provider with a fixed window (phase ``0.37`` s off the clock), rounding its seconds left by ``rounding``."""
    zero, offset = clock.monotonic(), 0.37
    used: dict[int, int] = {}

    def answer(at: float) -> tuple[int, dict[str, str]]:
        index = math.floor((at - zero + offset) / window)
        left = (index + 1) * window - offset - (at - zero)
        if used.get(index, 0) >= quota:
            return 429, {"Retry-After": str(math.ceil(left))}
        used[index] = used.get(index, 0) + 1
        return 200, {"RateLimit-Remaining": str(quota - used[index]), "RateLimit-Reset": str(rounding(left))}

    return answer


def test_a_provider_rounding_its_resets_up_is_paced_without_a_429_and_uses_its_quota() -> None:
    # 100 per 10 s: calls every ~0.1 s read the rounded reset at many phases, so the earliest bound nears the truth
    clock = FakeClock()
    started = clock.monotonic()
    statuses = _paced(clock, _fixed_window(clock, quota=100, window=10.0, rounding=math.ceil), 2000)
    assert statuses.count(429) == 0
    assert 2000 / (clock.monotonic() - started) / 10 >= 0.97  # of the quota: the tightening pays off


def test_a_provider_rounding_its_resets_down_costs_one_early_call_at_most_then_none() -> None:
    """A truncated reset makes the tightened bound early; the first time the window outlasts it (a response still of
    the old window, or a 429 there), the limiter takes each reset as said from then on. That first window may lose
    one call to a 429: the price of full use of the quota for the providers that round up, which most do."""
    clock = FakeClock()
    statuses = _paced(clock, _fixed_window(clock, quota=10, window=10.0, rounding=int), 400)
    assert statuses[:20].count(429) <= 1
    assert statuses[20:].count(429) == 0
