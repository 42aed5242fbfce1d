"""Client overhead: the same N GETs through tether and through its peers, against one fast nginx.

Every candidate fetches the fixed ~200-byte JSON response of shared/BENCHMARKING.md's nginx config
(127.0.0.1:18080, one worker pinned to CPU 1) ``--requests`` times, after a warm-up, in its own fresh
process pinned to CPU 0:

- async, at each ``--concurrency`` (worker tasks = requests in flight = pool size), each worker task looping
  over a shared counter: raw ``aiohttp.ClientSession``; raw ``httpx.AsyncClient``; aiohttp inside the
  popular stack (tenacity ``@retry``: 3 attempts, exponential wait; aiolimiter ``AsyncLimiter`` set far above
  any rate reached here, so it never throttles; aiobreaker ``CircuitBreaker()`` with its defaults);
  ``tether.AsyncClient`` with its whole default pipeline (deadline, retries, retry budget, idempotency keys);
- sync, one thread, sequential: raw ``httpx.Client`` and ``tether.Client``.

It prints requests/s per candidate (median [min-max] over the repetitions) and the ratios of medians:
tether / raw aiohttp (target >= 0.90), popular stack / raw aiohttp, raw httpx / raw aiohttp, and
tether.Client / raw httpx.Client (target >= 0.90). Alongside, each candidate's client CPU time per request
(``time.process_time`` over the timed loop; the same ratios from it are less sensitive to other processes
stealing the client's core), its minor page faults per request, and nginx's CPU per request (evidence that
the upstream is not the bottleneck). Every worker imports all candidates' libraries before measuring, so all
run in the same process image (a leaner process was measured ~13 % slower here; see ``_harness.preload``).
A run with any error (exception, status other than 200,
unexpected body, a retry, a measurement cut short by its time cap) is invalid: the script says so and
exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from _harness import (
    CLIENT_CPU,
    METHOD,
    NOISE_LIMIT,
    OK_BODY,
    SERVER_CPU,
    BenchError,
    Nginx,
    QuietGate,
    Summary,
    add_common_options,
    check_cpus,
    chosen_candidates,
    fmt_range,
    nginx,
    noise_note,
    pin_self,
    preload,
    print_header,
    ratio,
    rotated,
    run_worker,
    summarize,
    terminate_on_sigterm,
    worker_result,
)

ASYNC_CANDIDATES = {
    "aiohttp": "raw aiohttp.ClientSession",
    "httpx": "raw httpx.AsyncClient",
    "stack": "aiohttp+tenacity+aiolimiter+aiobreaker",
    "tether": "tether.AsyncClient (defaults)",
}
SYNC_CANDIDATES = {
    "httpx-sync": "raw httpx.Client",
    "tether-sync": "tether.Client (defaults)",
}
PACKAGES = [
    "tether",
    "aiohttp",
    "httpx",
    "httpcore",
    "anyio",
    "sniffio",
    "multidict",
    "yarl",
    "tenacity",
    "aiolimiter",
    "aiobreaker",
]
PRELOAD = ["aiohttp", "httpx", "tenacity", "aiolimiter", "aiobreaker", "tether"]
TARGET = 0.90

Fetch = Callable[[], Awaitable[tuple[int, bytes]]]
SyncFetch = Callable[[], tuple[int, bytes]]


# --------------------------------------------------------------------------- worker side


@dataclass
class Tally:
    """What a measurement saw."""

    ok: int = 0
    errors: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0
    faults: int = 0

    def check(self, status: int, body: bytes) -> None:
        """Count one response: 200 with the expected body, or an error."""
        if status == 200 and body == OK_BODY:
            self.ok += 1
        else:
            self.error(f"status {status}" if status != 200 else f"unexpected body ({len(body)} bytes)")

    def error(self, kind: str, count: int = 1) -> None:
        """Count ``count`` errors of ``kind``."""
        self.errors += count
        self.kinds[kind] = self.kinds.get(kind, 0) + count

    @property
    def done(self) -> int:
        """Requests finished, successfully or not."""
        return self.ok + self.errors


def _faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def _one(fetch: Fetch, tally: Tally) -> None:
    try:
        status, body = await fetch()
    except Exception as exc:
        tally.error(type(exc).__name__)
    else:
        tally.check(status, body)


async def drive_async(fetch: Fetch, total: int, concurrency: int, time_limit: float) -> tuple[Tally, float]:
    """``concurrency`` worker tasks share a counter to ``total``; each stops at the time limit too."""
    tally = Tally()
    issued = 0
    stop_at = time.perf_counter() + time_limit

    async def worker() -> None:
        nonlocal issued
        while issued < total and time.perf_counter() < stop_at:
            issued += 1
            await _one(fetch, tally)

    start, cpu, faults = time.perf_counter(), time.process_time(), _faults()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.cpu, tally.faults = time.process_time() - cpu, _faults() - faults
    return tally, time.perf_counter() - start


def _one_sync(fetch: SyncFetch, tally: Tally) -> None:
    try:
        status, body = fetch()
    except Exception as exc:
        tally.error(type(exc).__name__)
    else:
        tally.check(status, body)


def drive_sync(fetch: SyncFetch, total: int, time_limit: float) -> tuple[Tally, float]:
    """``total`` sequential requests, stopping early at the time limit."""
    tally = Tally()
    stop_at = time.perf_counter() + time_limit
    start, cpu, faults = time.perf_counter(), time.process_time(), _faults()
    for _ in range(total):
        if time.perf_counter() >= stop_at:
            break
        _one_sync(fetch, tally)
    tally.cpu, tally.faults = time.process_time() - cpu, _faults() - faults
    return tally, time.perf_counter() - start


def _nothing_hidden(tally: Tally, warm: Tally) -> None:
    """A candidate that cannot hide a retry has nothing to add to its tally."""


class _Retryable(Exception):
    """A 5xx answer, raised inside the popular stack so tenacity and the breaker see it."""


async def _async_candidate(name: str, url: str, concurrency: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Build candidate ``name``, warm it up, time it, close it; the result for the parent."""
    closers: list[Callable[[], Awaitable[None]]] = []
    extra: Callable[[Tally, Tally], None] = _nothing_hidden
    fetch: Fetch
    if name in ("aiohttp", "stack"):
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        closers.append(session.close)

        async def raw() -> tuple[int, bytes]:
            async with session.get(url) as resp:
                return resp.status, await resp.read()

        fetch = raw
        if name == "stack":
            import tenacity
            from aiobreaker import CircuitBreaker
            from aiolimiter import AsyncLimiter

            limiter = AsyncLimiter(max_rate=10_000_000, time_period=1)  # never the limiting factor here
            breaker = CircuitBreaker()  # defaults: opens after 5 consecutive failures, for 60 s
            attempts = [0]

            async def attempt() -> tuple[int, bytes]:
                async with session.get(url) as resp:
                    body = await resp.read()
                    if resp.status >= 500:
                        raise _Retryable(f"status {resp.status}")
                    return resp.status, body

            @tenacity.retry(
                stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_exponential(multiplier=0.1, max=2),
                retry=tenacity.retry_if_exception_type((aiohttp.ClientError, TimeoutError, _Retryable)),
                reraise=True,
            )
            async def stack() -> tuple[int, bytes]:
                attempts[0] += 1
                async with limiter:
                    return cast(tuple[int, bytes], await breaker.call_async(attempt))

            fetch = stack

            def extra_stack(tally: Tally, warm: Tally) -> None:
                hidden = attempts[0] - warm.done - tally.done
                if hidden:
                    tally.error("retried (hidden by tenacity)", hidden)

            extra = extra_stack
    elif name == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(limits=limits)
        closers.append(client.aclose)

        async def via_httpx() -> tuple[int, bytes]:
            resp = await client.get(url)
            return resp.status_code, resp.content

        fetch = via_httpx
    elif name == "tether":
        import tether

        api = tether.AsyncClient(url, max_connections=concurrency)
        closers.append(api.aclose)

        async def via_tether() -> tuple[int, bytes]:
            resp = await api.get("/")
            return resp.status_code, resp.content

        fetch = via_tether

        def extra_tether(tally: Tally, warm: Tally) -> None:
            snap = api.budget.snapshot() if api.budget else None
            if snap is not None and (snap.retries or snap.suppressed):
                tally.error("retried (hidden by tether)", snap.retries + snap.suppressed)

        extra = extra_tether
    else:
        raise BenchError(f"unknown async candidate {name!r}")
    try:
        warm, _ = await drive_async(fetch, spec["warmup"], concurrency, spec["time_limit"])
        tally, elapsed = await drive_async(fetch, spec["requests"], concurrency, spec["time_limit"])
    finally:
        for close in closers:
            await close()
    return _report(tally, warm, elapsed, spec, extra)


def _sync_candidate(name: str, url: str, spec: dict[str, Any]) -> dict[str, Any]:
    fetch: SyncFetch
    close: Callable[[], None]
    if name == "httpx-sync":
        import httpx

        client = httpx.Client()
        close = client.close

        def via_httpx() -> tuple[int, bytes]:
            resp = client.get(url)
            return resp.status_code, resp.content

        fetch = via_httpx
    elif name == "tether-sync":
        import tether

        api = tether.Client(url)
        close = api.close

        def via_tether() -> tuple[int, bytes]:
            resp = api.get("/")
            return resp.status_code, resp.content

        fetch = via_tether
    else:
        raise BenchError(f"unknown sync candidate {name!r}")
    try:
        warm, _ = drive_sync(fetch, spec["warmup"], spec["time_limit"])
        tally, elapsed = drive_sync(fetch, spec["requests"], spec["time_limit"])
    finally:
        close()
    return _report(tally, warm, elapsed, spec, _nothing_hidden)


def _report(
    tally: Tally, warm: Tally, elapsed: float, spec: dict[str, Any], extra: Callable[[Tally, Tally], None]
) -> dict[str, Any]:
    extra(tally, warm)
    for kind, count in warm.kinds.items():
        tally.error(f"warm-up: {kind}", count)
    return {
        "done": tally.done,
        "errors": tally.errors,
        "kinds": tally.kinds,
        "elapsed": elapsed,
        "rate": tally.done / elapsed if elapsed > 0 else 0.0,
        "cpu_us": 1e6 * tally.cpu / tally.done if tally.done else 0.0,
        "faults": tally.faults / tally.done if tally.done else 0.0,
        "truncated": tally.done < spec["requests"],
        "served": warm.done + tally.done,
    }


def worker(spec: dict[str, Any]) -> int:
    """Measure one candidate (in this fresh, pinned process) and report to the parent."""
    preload(PRELOAD)
    name = spec["candidate"]
    if name in ASYNC_CANDIDATES:
        result = asyncio.run(_async_candidate(name, spec["url"], spec["concurrency"], spec))
    else:
        result = _sync_candidate(name, spec["url"], spec)
    worker_result(result)
    return 0


# --------------------------------------------------------------------------- parent side


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    candidates = [*ASYNC_CANDIDATES, *SYNC_CANDIDATES]
    parser = argparse.ArgumentParser(
        prog="client_overhead.py",
        description=__doc__,
        epilog=METHOD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=5_000, help="timed requests per candidate (default 5000)")
    parser.add_argument("--warmup", type=int, default=500, help="untimed requests first (default 500)")
    parser.add_argument("--concurrency", type=_positive_ints, default=[8, 32], help="in flight (default 8,32)")
    parser.add_argument("--port", type=int, default=18080, help="nginx port on 127.0.0.1 (default 18080)")
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="cap on each timed loop, seconds; hitting it invalidates"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="start no repetition after this many seconds (default 600)"
    )
    add_common_options(
        parser, candidates, reps=5, quick="smoke test in < 30 s: 500 requests, 3 reps, no quiet wait", quiet_wait=120.0
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.reps, args.quiet_wait = 500, 100, 3, 0.0
    if args.requests < 1 or args.warmup < 0 or args.reps < 1:
        parser.error("--requests and --reps must be >= 1, --warmup >= 0")
    args.candidates = chosen_candidates(parser, args.candidates, candidates)
    return args


@dataclass
class Results:
    """Rates and errors per (candidate, concurrency); concurrency 1 for the sync candidates."""

    rates: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    cpu_us: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    faults: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    errors: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    served: int = 0
    noise: list[float] = field(default_factory=list)

    def add(self, key: tuple[str, int], result: dict[str, Any]) -> str:
        """Record one worker's result; a one-line description of it."""
        self.rates.setdefault(key, []).append(result["rate"])
        self.cpu_us.setdefault(key, []).append(result["cpu_us"])
        self.faults.setdefault(key, []).append(result["faults"])
        kinds = self.errors.setdefault(key, {})
        for kind, count in result["kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + count
        self.served += result["served"]
        self.noise.append(result["foreign_cores"])
        note = noise_note(result["foreign_cores"])
        note += f" ERRORS {result['kinds']}" if result["errors"] else ""
        if result["truncated"]:
            note += f" CUT SHORT at {result['done']} requests"
            self.failures.append(f"{key}: time limit reached after {result['done']} requests")
        return f"{result['rate']:,.0f}{note}"

    def summary(self, key: tuple[str, int]) -> Summary | None:
        """Requests/s for ``key``, if it was measured."""
        values = self.rates.get(key)
        return summarize(values) if values else None

    def cpu(self, key: tuple[str, int]) -> Summary | None:
        """Client CPU microseconds per request for ``key``, if it was measured."""
        values = self.cpu_us.get(key)
        return summarize(values) if values else None

    @property
    def error_count(self) -> int:
        """All errors seen."""
        return sum(sum(kinds.values()) for kinds in self.errors.values())


def _measure(args: argparse.Namespace, server: Nginx, results: Results, started: float) -> QuietGate:
    script = Path(__file__).resolve()
    gate = QuietGate(server, args.quiet_wait)
    async_names = [c for c in ASYNC_CANDIDATES if c in args.candidates]
    sync_names = [c for c in SYNC_CANDIDATES if c in args.candidates]
    base = {"url": server.url + "/", "requests": args.requests, "warmup": args.warmup, "time_limit": args.time_limit}
    timeout = 2 * args.time_limit + 30
    for rep in range(args.reps):
        if time.monotonic() - started > args.max_seconds:
            results.failures.append(f"--max-seconds reached: only {rep} of {args.reps} repetitions ran")
            break
        runs: list[tuple[tuple[str, int], dict[str, Any]]] = []
        for concurrency in args.concurrency:
            runs += [((name, concurrency), {"candidate": name, "concurrency": concurrency}) for name in async_names]
        runs += [((name, 1), {"candidate": name, "concurrency": 1}) for name in sync_names]
        line: list[str] = []
        for key, spec in rotated(runs, rep):
            gate.wait()
            try:
                result = run_worker(script, {**base, **spec}, timeout=timeout, server=server)
            except BenchError as exc:
                results.failures.append(str(exc))
                line.append(f"{key[0]}@{key[1]}: FAILED")
                continue
            line.append(f"{key[0]}@{key[1]}: {results.add(key, result)}")
        print(f"rep {rep + 1}/{args.reps} (req/s, candidate@in-flight): " + " | ".join(line), flush=True)
    return gate


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"  (target >= {target:.2f}: {'met' if value >= target else 'BELOW TARGET'})"


def _report_results(args: argparse.Namespace, results: Results) -> None:
    print("\nrequests/s, median [min-max] over repetitions; client CPU and minor page faults per request (medians)")
    sections = [(f"async, {c} in flight", ASYNC_CANDIDATES, c) for c in args.concurrency]
    sections.append(("sync, one thread, sequential", SYNC_CANDIDATES, 1))
    for heading, names, level in sections:
        measured = [(name, label) for name, label in names.items() if results.summary((name, level))]
        if measured:
            print(f"  {heading}:")
        for name, label in measured:
            rate, cpu = results.summary((name, level)), results.cpu((name, level))
            errors = sum(results.errors.get((name, level), {}).values())
            faults = summarize(results.faults[(name, level)]).median
            if rate is None or cpu is None:
                continue
            print(
                f"    {label:<42} {fmt_range(rate):<34} {cpu.median:7.1f} us CPU/req {faults:5.2f} faults/req"
                f"   errors {errors}"
            )
    print(
        "\nratios of medians (req/s; in brackets the same ratio from client CPU per request, less sensitive to noise)"
    )
    pairs: list[tuple[str, str, str, list[int], float | None]] = [
        ("tether", "aiohttp", "tether.AsyncClient / raw aiohttp", args.concurrency, TARGET),
        ("stack", "aiohttp", "popular stack / raw aiohttp", args.concurrency, None),
        ("httpx", "aiohttp", "raw httpx.AsyncClient / raw aiohttp", args.concurrency, None),
        ("tether-sync", "httpx-sync", "tether.Client / raw httpx.Client", [1], TARGET),
    ]
    for top, bottom, label, levels, target in pairs:
        for level in levels:
            a, b = results.summary((top, level)), results.summary((bottom, level))
            cpu_a, cpu_b = results.cpu((top, level)), results.cpu((bottom, level))
            if a and b and cpu_a and cpu_b:
                value = ratio(a, b)
                where = "sync, 1 thread" if level == 1 and top.endswith("-sync") else f"{level:>3} in flight"
                by_cpu = ratio(cpu_b, cpu_a)
                print(f"  {where:>14}: {label:<38} {value:5.3f} [{by_cpu:5.3f}]{_verdict(value, target)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--worker``, one measurement)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return worker(json.loads(args.worker))
    terminate_on_sigterm()
    started = time.monotonic()
    try:
        check_cpus()
        pin_self(CLIENT_CPU)
        print_header(
            "tether bench: client overhead", [sys.argv[0], *(sys.argv[1:] if argv is None else argv)], PACKAGES
        )
        print(
            f"settings: {args.requests} timed requests per candidate after {args.warmup} warm-up requests, "
            f"{args.reps} repetitions, concurrency {','.join(map(str, args.concurrency))}, "
            f"time cap {args.time_limit:g} s per timed loop"
            + (" [--quick: smoke test, not a measurement]" * args.quick)
        )
        results = Results()
        with nginx(args.port, cpu=SERVER_CPU) as server:
            print(f"upstream: {server.describe()}")
            cpu_before = server.cpu_seconds()
            gate = _measure(args, server, results, started)
            nginx_cpu = server.cpu_seconds() - cpu_before
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _report_results(args, results)
    fastest = max((summarize(v).median for v in results.rates.values()), default=0.0)
    if results.served and nginx_cpu > 0:
        ceiling = results.served / nginx_cpu
        print(
            f"\nupstream headroom: nginx used {nginx_cpu:.2f} s of CPU {SERVER_CPU} for {results.served:,} requests "
            f"(~{1e6 * nginx_cpu / results.served:.1f} us each at these rates: a ceiling of at least "
            f"~{ceiling:,.0f} req/s on its core, {ceiling / fastest:.1f}x the fastest candidate's median)"
        )
    noisy = sum(cores > NOISE_LIMIT for cores in results.noise)
    if results.noise:
        print(
            f"other processes: {noisy} of {len(results.noise)} measurements ran while other processes kept more "
            f"than {NOISE_LIMIT:.2f} cores busy (max {max(results.noise):.2f}, median "
            f"{summarize(results.noise).median:.2f})" + ("; those figures are unreliable" if noisy else "")
        )
        print(f"waited {gate.waited:.0f} s (of --quiet-wait {args.quiet_wait:g}) for other processes to go idle")
    print(f"errors: {results.error_count}")
    for failure in results.failures:
        print(f"FAILED: {failure}")
    print(f"elapsed: {time.monotonic() - started:.0f} s")
    if results.error_count or results.failures:
        print("INVALID RUN: errors or failed measurements (see above)")
        return 1
    if args.reps < 5:
        print("note: fewer than 5 repetitions: a smoke test, not a measurement")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
