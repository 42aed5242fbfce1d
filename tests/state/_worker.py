"""A separate process for the shared-state tests (run as a script: it is not a test module).

``quota``: says ``ready``, reads the start time (``time.monotonic()``, which every process on the machine shares)
from stdin, then spends a rate limit's permits from ``--tasks`` tasks or threads until ``--duration`` has passed,
sending one GET to the upstream per permit; prints a JSON summary. ``--shell memory`` gives the process a state of
its own instead of the shared one (the control: four processes then send four times the quota).

``op``: performs one operation (a JSON spec) on the shared state and prints its result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import aiohttp
import httpx

from tether.policies import Admitted, CircuitBreaker, RateLimit, RetryBudget
from tether.state import AsyncRedisState, MemoryState, RedisState


def _quota_async(args: argparse.Namespace, limits: tuple[RateLimit, ...]) -> dict[str, Any]:
    statuses: Counter[int] = Counter()

    async def main() -> dict[str, Any]:
        async with AsyncRedisState(args.url, prefix=args.prefix, timeout=10.0) as state:
            async with aiohttp.ClientSession() as session:

                async def warm_up() -> None:  # one open connection per task, so no first request is slow
                    async with session.get(f"{args.upstream}/warm-up") as response:
                        await response.read()

                async def spend(end: float) -> None:
                    while (now := time.monotonic()) < end:
                        wait = await state.reserve(args.key, limits, now)
                        if now + wait >= end:
                            return
                        await asyncio.sleep(wait)
                        async with session.get(f"{args.upstream}/limited") as response:
                            statuses[response.status] += 1

                await asyncio.gather(*(warm_up() for _ in range(args.tasks)))
                await state.budget_snapshot("warm-up", RetryBudget(), time.monotonic())  # and one to Redis
                start = await asyncio.to_thread(_wait_for_start)
                await asyncio.sleep(max(0.0, start - time.monotonic()))
                await asyncio.gather(*(spend(start + args.duration) for _ in range(args.tasks)))
            return {"statuses": dict(statuses), "stats": asdict(state.stats())}

    return asyncio.run(main())


def _quota_threads(args: argparse.Namespace, limits: tuple[RateLimit, ...]) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    shared = RedisState(args.url, prefix=args.prefix, timeout=10.0) if args.shell == "sync" else None
    backend = shared or MemoryState()
    clients = [httpx.Client() for _ in range(args.tasks)]
    for client in clients:  # an open connection per thread, so no first request is slow
        client.get(f"{args.upstream}/warm-up")
    backend.budget_snapshot("warm-up", RetryBudget(), time.monotonic())  # and one to Redis
    start = _wait_for_start()
    end = start + args.duration

    def spend(http: httpx.Client) -> None:
        time.sleep(max(0.0, start - time.monotonic()))
        while (now := time.monotonic()) < end:
            wait = backend.reserve(args.key, limits, now)
            if now + wait >= end:
                return
            time.sleep(wait)
            status = http.get(f"{args.upstream}/limited").status_code
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=spend, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    stats = asdict(shared.stats()) if shared is not None else {"fallbacks": 0}
    if shared is not None:
        shared.close()
    return {"statuses": dict(statuses), "stats": stats}


def _wait_for_start() -> float:
    """Say ``ready`` and read the start time (monotonic seconds) the parent sends to every process at once."""
    print("ready", flush=True)
    return float(sys.stdin.readline())


def _quota(args: argparse.Namespace) -> dict[str, Any]:
    limits = (RateLimit(args.rate, burst=args.burst),)
    if args.shell == "async":
        return _quota_async(args, limits)
    return _quota_threads(args, limits)


def _op(args: argparse.Namespace) -> dict[str, Any]:
    spec = json.loads(args.spec)
    with RedisState(args.url, prefix=args.prefix, timeout=10.0, deposit_interval=0) as state:
        now = time.monotonic()
        result: dict[str, Any]
        if spec["op"] == "reserve":
            limits = tuple(RateLimit(*limit) for limit in spec["limits"])
            result = {"wait": state.reserve(spec["key"], limits, now, spec["max_wait"])}
        elif spec["op"] == "budget":
            config = RetryBudget(**spec["budget"])
            for _ in range(spec["requests"]):
                state.record_request(spec["key"], config, now)
            result = {"spent": [state.try_spend(spec["key"], config, now) for _ in range(spec["spends"])]}
        elif spec["op"] == "acquire":
            admission = state.acquire(spec["key"], CircuitBreaker(**spec["breaker"]), now)
            permit = admission.permit
            result = {
                "phase": admission.phase,
                "admitted": isinstance(permit, Admitted),
                "retry_after": None if isinstance(permit, Admitted) else permit.retry_at - now,
            }
        else:
            raise SystemExit(f"unknown op {spec['op']!r}")
        result["stats"] = asdict(state.stats())
        return result


def main() -> None:
    """Parse the command line and run the chosen part."""
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["quota", "op"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--key", default="https://api.example.com")
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--shell", choices=["async", "sync", "memory"], default="async")
    parser.add_argument("--spec", default="{}")
    args = parser.parse_args()
    result = _quota(args) if args.part == "quota" else _op(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
