"""A separate process for the shared-state client tests (run as a script: it is not a test module).

``quota``: builds a tether client (``--kind async`` or ``sync``) whose rate limit lives in the shared Redis
state (``--memory``: a state of its own instead, the control), says ``ready``, waits for a line on stdin so that
every process starts together, then calls ``GET /q`` from ``--tasks`` tasks or threads until ``--duration`` has
passed, each call waiting for its permit; prints a JSON summary.

``breaker``: calls ``GET /down`` ``--calls`` times through a shared circuit and prints how each call ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from typing import Any

import tether
from tether import CircuitBreaker, Policy, RateLimit
from tether.state import AsyncRedisState, RedisState

QUOTA = Policy(rate_limits=(RateLimit(50, burst=1),), budget=None, retries=0, deadline=30.0)
BREAKER = Policy(retries=0, budget=None, breaker=CircuitBreaker(min_calls=4, failure_ratio=0.5, open_for=60.0))


def _outcome(call: Any) -> str:
    try:
        return str(call().status_code)
    except tether.TetherError as error:
        return type(error).__name__


def _quota_sync(args: argparse.Namespace) -> Counter[str]:
    ends: Counter[str] = Counter()
    lock = threading.Lock()
    state = None if args.memory else RedisState(args.redis, prefix=args.prefix, timeout=5.0)
    with tether.Client(args.upstream, policy=QUOTA, state=state) as client:
        client.get("/warm-up", policy=Policy(budget=None))
        print("ready", flush=True)
        sys.stdin.readline()
        until = time.monotonic() + args.duration

        def loop() -> None:
            while time.monotonic() < until:
                end = _outcome(lambda: client.get("/q"))
                with lock:
                    ends[end] += 1

        threads = [threading.Thread(target=loop) for _ in range(args.tasks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if state is not None:
        state.close()
    return ends


async def _quota_async(args: argparse.Namespace) -> Counter[str]:
    ends: Counter[str] = Counter()
    state = None if args.memory else AsyncRedisState(args.redis, prefix=args.prefix, timeout=5.0)
    async with tether.AsyncClient(args.upstream, policy=QUOTA, state=state) as client:
        await client.get("/warm-up", policy=Policy(budget=None))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        until = time.monotonic() + args.duration

        async def loop() -> None:
            while time.monotonic() < until:
                try:
                    ends[str((await client.get("/q")).status_code)] += 1
                except tether.TetherError as error:
                    ends[type(error).__name__] += 1

        await asyncio.gather(*(loop() for _ in range(args.tasks)))
    if state is not None:
        await state.aclose()
    return ends


def _breaker(args: argparse.Namespace) -> list[str]:
    with (
        RedisState(args.redis, prefix=args.prefix, timeout=5.0) as state,
        tether.Client(args.upstream, policy=BREAKER, state=state) as client,
    ):
        return [_outcome(lambda: client.get("/down")) for _ in range(args.calls)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["quota", "breaker"])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--kind", choices=["async", "sync"], default="async")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--calls", type=int, default=1)
    args = parser.parse_args()
    if args.mode == "breaker":
        print(json.dumps(_breaker(args)))
        return
    ends = _quota_sync(args) if args.kind == "sync" else asyncio.run(_quota_async(args))
    print(json.dumps(dict(ends)))


if __name__ == "__main__":
    main()
