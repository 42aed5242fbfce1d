"""Clients sharing rate limits and circuits through the real Redis on loopback, across real processes.

Each process is ``_shared_worker.py`` run with this interpreter, with a tether client of its own; the upstream
(tether's, in this process) counts what reaches it. Every test uses a key prefix of its own, deleted afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether
from tests.state.conftest import delete_prefix, redis_url  # noqa: F401 - the fixture
from tether import CircuitBreaker, Policy, RateLimit
from tether.errors import CircuitOpen, ConfigurationError, SharedStateUnavailable
from tether.state import AsyncRedisState, RedisState
from tether.testing import Reply, Upstream

pytestmark = pytest.mark.integration

WORKER = str(Path(__file__).with_name("_shared_worker.py"))
PROCESSES = 4
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
