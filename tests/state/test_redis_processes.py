"""Several OS processes share one Redis: quotas, learned pacing, budgets and circuits hold across all of them.

The processes are real (``_worker.py`` run with this interpreter); the upstream they call is tether's
fault-injecting server, which counts every request it receives.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tether.policies import CircuitBreaker, RetryBudget
from tether.state import RedisState
from tether.testing import Upstream

pytestmark = pytest.mark.integration

WORKER = str(Path(__file__).with_name("_worker.py"))
RATE, BURST, DURATION = 50, 5, 3.0


def _most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def _run_quota(redis_url: str, prefix: str, shells: list[str], duration: float) -> tuple[list[Any], list[float]]:
    with Upstream().running() as upstream:
        upstream.quota("GET", "/limited", limit=RATE + BURST, window=1.0)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    WORKER,
                    "quota",
                    "--url",
                    redis_url,
                    "--prefix",
                    prefix,
                    "--upstream",
                    upstream.url,
                    "--rate",
                    str(RATE),
                    "--burst",
                    str(BURST),
                    "--duration",
                    str(duration),
                    "--shell",
                    shell,
                    "--tasks",
                    "5" if shell == "async" else "3",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for shell in shells
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready"
            start = time.monotonic() + 0.3  # CLOCK_MONOTONIC: one clock for every process on this machine
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(f"{start}\n")
                worker.stdin.flush()
            results = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        arrivals = [request.received_at for request in upstream.requests_for("/limited")]
    return results, arrivals


def test_four_processes_sharing_a_quota_never_exceed_it_together(redis_url: str, prefix: str) -> None:
    results, arrivals = _run_quota(redis_url, prefix, ["async", "async", "sync", "sync"], DURATION)
    assert all(result["stats"]["fallbacks"] == 0 for result in results)
    assert _most_in_any_second(arrivals) <= RATE + BURST  # the upstream's own clock, any one-second window
    assert all(set(result["statuses"]) == {"200"} for result in results)  # and its fixed windows never said 429
    assert len(arrivals) >= 0.9 * RATE * DURATION  # goodput: the quota is used, not just respected
    assert all(sum(result["statuses"].values()) > 0 for result in results)  # every process got its share


def test_without_shared_state_the_same_processes_exceed_the_quota(redis_url: str, prefix: str) -> None:
    """The control: what the upstream sees when each process keeps its own limiter."""
    _, arrivals = _run_quota(redis_url, prefix, ["memory"] * 4, 1.5)
    assert _most_in_any_second(arrivals) > 2 * (RATE + BURST)


def _op(redis_url: str, prefix: str, spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, WORKER, "op", "--url", redis_url, "--prefix", prefix, "--spec", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["stats"]["fallbacks"] == 0
    return result


def test_a_quota_learned_in_one_process_paces_the_others(redis_url: str, prefix: str) -> None:
    with RedisState(redis_url, prefix=prefix) as state:
        learned_at = time.monotonic()
        state.learn("api", (), learned_at, remaining=0, reset_after=2.0)
    result = _op(redis_url, prefix, {"op": "reserve", "key": "api", "limits": [], "max_wait": 0})
    elapsed = time.monotonic() - learned_at
    assert 2.0 - elapsed - 0.05 <= result["wait"] <= 2.0


def test_a_retry_budget_spent_in_one_process_is_spent_for_all(redis_url: str, prefix: str) -> None:
    budget = RetryBudget(ratio=1.0, burst=3, min_per_second=0)
    with RedisState(redis_url, prefix=prefix, deposit_interval=0) as state:
        now = time.monotonic()
        assert [state.try_spend("client", budget, now) for _ in range(2)] == [True, True]
        spec = {"op": "budget", "key": "client", "budget": {"ratio": 1.0, "burst": 3, "min_per_second": 0}}
        assert _op(redis_url, prefix, {**spec, "requests": 0, "spends": 2})["spent"] == [True, False]
        assert not state.try_spend("client", budget, time.monotonic())
        _op(redis_url, prefix, {**spec, "requests": 2, "spends": 0})  # another process's traffic refills it
        assert [state.try_spend("client", budget, time.monotonic()) for _ in range(3)] == [True, True, False]
        snapshot = state.budget_snapshot("client", budget, time.monotonic())
    assert (snapshot.requests, snapshot.retries, snapshot.suppressed) == (2, 5, 3)


def test_a_circuit_opened_by_one_process_fails_fast_in_the_others(redis_url: str, prefix: str) -> None:
    settings = {"min_calls": 4, "failure_ratio": 0.5, "open_for": 30.0}
    breaker = CircuitBreaker(**settings)  # type: ignore[arg-type]
    key = "https://api.example.com"
    assert _op(redis_url, prefix, {"op": "acquire", "key": key, "breaker": settings})["admitted"]
    with RedisState(redis_url, prefix=prefix) as state:
        changes = []
        for failed in (False, True, False, True):
            now = time.monotonic()
            admission = state.acquire(key, breaker, now)
            assert admission.phase == "closed"
            changes.append(state.record(key, breaker, admission.permit, now, failed=failed, duration=0.01))  # type: ignore[arg-type]
        assert changes == [None, None, None, "open"]
    refused = _op(redis_url, prefix, {"op": "acquire", "key": key, "breaker": settings})
    assert not refused["admitted"]
    assert refused["phase"] == "open"
    assert 28.0 < refused["retry_after"] <= 30.0
