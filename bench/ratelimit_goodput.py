"""Rate-limit goodput: successful requests/s as a fraction of an announced quota, and the 429s it costs.

The upstream is tether's own fault-injecting server (``python -m tether.testing.upstream``), started by this
script as a subprocess pinned to CPU 1 and stopped by its own pid. It rate-limits ``GET /q`` with its fixed-window
quota (``--limit`` Q requests per ``--window`` W seconds, default 100 per 2 s): a window opens at the first
request after the previous one ended; the first Q requests in it get 200, the rest 429 with ``Retry-After``;
every response announces ``RateLimit-Limit/Remaining/Reset`` (reset in delta seconds, rounded up) and
``X-RateLimit-Limit/Remaining/Reset`` (reset as a Unix time, rounded up). Between candidates the script resets
the upstream, so each starts with a fresh quota.

Each candidate, in its own fresh process pinned to CPU 0, runs ``--concurrency`` tasks (default 8) that loop
GET calls as fast as their library lets them for ``--duration`` seconds (default 12 s: 6 windows), far more than
Q/W wants (loopback answers in ~1 ms). Candidates:

- ``tether``: ``tether.AsyncClient`` with its default ``Policy``: learned pacing on (``learn_rate_limits``),
  3 retries of a 429 honouring ``Retry-After``, retry budget on. A call may also end in ``RateLimited`` raised
  *locally*, without sending, when the learned wait would pass its deadline ("refused locally, not sent");
- ``tenacity``: ``aiohttp.ClientSession`` GETs retried on 429 by ``@tenacity.retry(wait=wait_random_exponential(
  multiplier=0.1, max=2), stop=stop_after_attempt(10))``, the common hand-written approach (it also stops
  retrying once the load has ended, so the run stays bounded in time);
- ``aiolimiter``: ``aiohttp.ClientSession`` GETs, each after ``aiolimiter.AsyncLimiter(Q, W).acquire()``: a
  client told the quota in advance; no retries (a 429 ends the call).

Counting. Every request a candidate sends is recorded client-side around its raw send (tether: a wrapper around
the client's transport; aiohttp: around ``session.get``) with its send time, status and rate-limit headers. The
upstream records every request it receives (``received_at`` on the same monotonic clock), and the script
replays its fixed-window quota over those arrival times to know the status it gave each one. The totals (and the
200 / 429 split) must agree with the client's counts, else the run is invalid and the script exits non-zero.
Goodput = 200s to requests *sent* within the load's ``duration`` / (duration / W x Q), the most a fixed window
allows (windows open at least W apart, so at most duration / W of them start within the load; the duration
must be a whole number of windows). Sends after the load ended (calls still waiting or retrying) are "late" and
count for the 429s and the cross-check, not for goodput. "429 after first response" counts 429s to requests sent
after the candidate received its first response of the run (when it could have learned the quota).

Why 100 per 2 s: the announced resets are whole seconds rounded up, so a client reading them overestimates the
time left in a window by up to 1 s (0.5 s on average); a 1 s window would make that error as large as the
window itself, while a window much longer than the run would leave too few windows to average over. 2 s windows
give 6 window openings in the default 12 s, and 50 successful requests/s is two orders of magnitude below what
the upstream serves here, so the upstream is never the bottleneck. Windows opened back to back keep nearly the
same phase against the wall-clock second, so within one run that overestimate is nearly constant, and between
runs it varies (uniformly, 0-1 s): a client pacing by one response's reset alone inherits that error (before
tether tightened the reset across the responses of a window, see ``tether.policies.Limiter.learn``, it used
0.69-0.93 of Q here, varying from repetition to repetition). Try ``--window 10 --limit 500 --duration 30`` to
see how a result depends on the window.

Prints, per repetition (default 5) and as a median with min-max: goodput as a fraction of Q, 200s per second,
429s received (all, and after the first response), errors, tether's local refusals, late sends, how many windows
opened and what fraction of each window's quota was used, and, from the headers the client received, how far
the announced reset lay past the window's true end (the error one response's reset carries). Target: tether >= 0.97
of Q with zero 429s after the first response.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    CLIENT_CPU,
    METHOD,
    SERVER_CPU,
    BenchError,
    QuietGate,
    TetherUpstream,
    add_common_options,
    check_cpus,
    chosen_candidates,
    finish,
    fmt_range,
    noise_note,
    pin_self,
    preload,
    print_header,
    run_interleaved,
    run_worker,
    summarize,
    terminate_on_sigterm,
    tether_upstream,
    worker_result,
)

CANDIDATES = {
    "tether": "tether.AsyncClient (default Policy, learned pacing)",
    "tenacity": "aiohttp + tenacity (retry 429, random exp.)",
    "aiolimiter": "aiohttp + aiolimiter.AsyncLimiter(Q, W)",
}
PACKAGES = ["tether", "aiohttp", "tenacity", "aiolimiter"]
PRELOAD = ["aiohttp", "tenacity", "aiolimiter", "tether"]
QUOTA_PATH = "/q"
WARM_PATH = "/warm"
TARGET_GOODPUT = 0.97
METHOD_NOTE = METHOD.replace(
    "the script starts its own nginx (one worker,\npinned with taskset to CPU 1)",
    "the script starts its own upstream (tether.testing.upstream,\npinned with taskset to CPU 1)",
)

# Outcomes of a logical call that are expected under a rate limit (anything else counts as an error).
OK = "ok"
GAVE_UP_429 = "gave up on 429"
NOT_RETRIED_429 = "429 (not retried)"
REFUSED_LOCALLY = "refused locally, not sent"
RATE_OUTCOMES = frozenset({OK, GAVE_UP_429, NOT_RETRIED_429, REFUSED_LOCALLY})


# --------------------------------------------------------------------------- worker side


@dataclass
class Recorder:
    """Every exchange one candidate's load performed, and how its logical calls ended.

    An exchange is ``[sent, received, status, x_ratelimit_reset, ratelimit_remaining]`` (monotonic seconds;
    status 0 for a transport error; the headers as received, or ``None``).
    """

    exchanges: list[list[Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    load_over: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0
    end: float = 0.0
    wall_offset: float = 0.0
    cancelled: int = 0

    def exchange(self, sent: float, status: int, get: Callable[[str], str | None]) -> None:
        """Record one response."""
        self.exchanges.append([sent, time.monotonic(), status, get("X-RateLimit-Reset"), get("RateLimit-Remaining")])

    def failed(self, sent: float, error: BaseException) -> None:
        """Record one exchange that got no response."""
        self.exchanges.append([sent, time.monotonic(), 0, None, None])
        self.errors[type(error).__name__] += 1


async def run_load(call: Callable[[], Awaitable[str]], spec: dict[str, Any], rec: Recorder) -> None:
    """Run ``concurrency`` tasks that loop ``call`` until ``duration`` has passed; wait ``drain`` s for the rest."""
    loop = asyncio.get_running_loop()
    rec.t0 = time.monotonic()
    rec.wall_offset = time.time() - rec.t0
    rec.end = rec.t0 + spec["duration"]
    loop.call_at(loop.time() + spec["duration"], rec.load_over.set)

    async def slot() -> None:
        while time.monotonic() < rec.end:
            try:
                outcome = await call()
            except Exception as exc:  # every ending is a result to count, never a crash
                outcome = f"error: {type(exc).__name__}"
            rec.outcomes[outcome] += 1

    tasks = [asyncio.create_task(slot()) for _ in range(spec["concurrency"])]
    _, pending = await asyncio.wait(tasks, timeout=spec["duration"] + spec["drain"])
    rec.cancelled = len(pending)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _warm(call: Callable[[], Awaitable[object]], concurrency: int) -> None:
    """Open the pool's connections: ``concurrency`` calls at once to an unlimited route, twice."""
    for _ in range(2):
        await asyncio.gather(*(call() for _ in range(concurrency)))


async def _tether(spec: dict[str, Any], rec: Recorder) -> None:
    import tether
    from tether.errors import RateLimited, RetryAfterTooLong, RetryBudgetExhausted

    class CountingTransport:
        """The client's own transport, recording every exchange it performs."""

        def __init__(self, inner: tether.AsyncTransport) -> None:
            self.inner = inner

        async def send(self, request: tether.Request, timeout: float | None) -> tether.Response:  # noqa: ASYNC109
            sent = time.monotonic()
            try:
                response = await self.inner.send(request, timeout)
            except tether.errors.TransportError as exc:
                rec.failed(sent, exc)
                raise
            rec.exchange(sent, response.status_code, response.headers.get)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    async with tether.AsyncClient(spec["url"]) as api:
        await _warm(lambda: api.get(WARM_PATH), spec["concurrency"])
        api.transport = CountingTransport(api.transport)  # after the warm-up: only the load is recorded

        async def call() -> str:
            try:
                response = await api.get(QUOTA_PATH)  # the transport has read the whole body
            except RateLimited as exc:
                return GAVE_UP_429 if exc.response is not None else REFUSED_LOCALLY
            except (RetryBudgetExhausted, RetryAfterTooLong) as exc:
                last = exc.last_error
                if isinstance(last, RateLimited):
                    return GAVE_UP_429
                raise
            return OK if response.status_code == 200 else f"error: status {response.status_code}"

        await run_load(call, spec, rec)


async def _tenacity(spec: dict[str, Any], rec: Recorder) -> None:
    import aiohttp
    import tenacity

    class TooManyRequests(Exception):
        """A 429, to retry."""

    url = spec["url"] + QUOTA_PATH
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def warm() -> None:
            async with session.get(spec["url"] + WARM_PATH) as response:
                await response.read()

        await _warm(warm, spec["concurrency"])

        @tenacity.retry(
            retry=tenacity.retry_if_exception_type(TooManyRequests),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=2),
            stop=tenacity.stop_after_attempt(10) | tenacity.stop_when_event_set(rec.load_over),
            reraise=True,
        )
        async def attempt() -> str:
            sent = time.monotonic()
            try:
                async with session.get(url) as response:
                    await response.read()
                    rec.exchange(sent, response.status, response.headers.get)
            except aiohttp.ClientError as exc:
                rec.failed(sent, exc)
                raise
            if response.status == 429:
                raise TooManyRequests
            return OK if response.status == 200 else f"error: status {response.status}"

        async def call() -> str:
            try:
                return await attempt()
            except TooManyRequests:
                return GAVE_UP_429

        await run_load(call, spec, rec)


async def _aiolimiter(spec: dict[str, Any], rec: Recorder) -> None:
    import aiohttp
    import aiolimiter

    limiter = aiolimiter.AsyncLimiter(spec["limit"], spec["window"])
    url = spec["url"] + QUOTA_PATH
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def warm() -> None:  # not through the limiter: the warm-up must not spend its capacity
            async with session.get(spec["url"] + WARM_PATH) as response:
                await response.read()

        await _warm(warm, spec["concurrency"])

        async def call() -> str:
            await limiter.acquire()
            sent = time.monotonic()
            try:
                async with session.get(url) as response:
                    await response.read()
                    rec.exchange(sent, response.status, response.headers.get)
            except aiohttp.ClientError as exc:
                rec.failed(sent, exc)
                raise
            if response.status == 429:
                return NOT_RETRIED_429
            return OK if response.status == 200 else f"error: status {response.status}"

        await run_load(call, spec, rec)


def worker(spec: dict[str, Any]) -> int:
    """Run one candidate's load (in this fresh, pinned process) and report to the parent."""
    preload(PRELOAD)
    rec = Recorder()
    runners = {"tether": _tether, "tenacity": _tenacity, "aiolimiter": _aiolimiter}
    name = spec["candidate"]
    if name not in runners:
        raise BenchError(f"unknown candidate {name!r}")
    asyncio.run(runners[name](spec, rec))
    worker_result(
        {
            "t0": rec.t0,
            "end": rec.end,
            "wall_offset": rec.wall_offset,
            "exchanges": rec.exchanges,
            "outcomes": dict(rec.outcomes),
            "errors": dict(rec.errors),
            "cancelled": rec.cancelled,
        }
    )
    return 0


# --------------------------------------------------------------------------- the upstream process


def prepare(server: TetherUpstream, limit: int, window: float) -> None:
    """Forget everything, then script the quota on ``GET /q`` and an unlimited ``GET /warm``."""
    server.admin("POST", "reset")
    server.admin("POST", "quota", {"method": "GET", "path": QUOTA_PATH, "limit": limit, "window": window})
    server.admin("POST", "routes", {"method": "GET", "path": WARM_PATH, "replies": [{"json": {"ok": True}}]})


def arrivals(server: TetherUpstream) -> list[float]:
    """When each ``GET /q`` arrived (the upstream's monotonic clock), in the order it answered them."""
    count = server.count(QUOTA_PATH)
    recorded = [r["received_at"] for r in server.admin("GET", "requests") if r["path"] == QUOTA_PATH]
    if count != len(recorded):
        raise BenchError(f"upstream count {count} disagrees with its {len(recorded)} recorded requests")
    return recorded


def describe_upstream(server: TetherUpstream) -> str:
    """The report's line about the upstream (this script's own form of it)."""
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(server.pid))))
    return f"tether.testing.upstream on {server.url}; pid {server.pid}: CPU {cpus}"


# --------------------------------------------------------------------------- parent side: analysis


@dataclass
class Window:
    """One fixed window of the upstream's quota, replayed from the arrival times."""

    start: float
    ok: int = 0
    limited: int = 0


def replay(arrivals: Sequence[float], limit: int, window: float) -> tuple[list[int], list[Window]]:
    """The status the upstream gave each arrival, and its windows: ``tether.testing._scripts.Quota``'s rule."""
    statuses: list[int] = []
    windows: list[Window] = []
    current: Window | None = None
    for now in arrivals:
        if current is None or now >= current.start + window:
            current = Window(now)
            windows.append(current)
        if current.ok < limit:
            current.ok += 1
            statuses.append(200)
        else:
            current.limited += 1
            statuses.append(429)
    return statuses, windows


@dataclass
class Rep:
    """One candidate's result in one repetition."""

    goodput: float
    ok_per_s: float
    ok_in_load: int
    allowed: int
    limited: int
    limited_after_first: int
    errors: int
    refused: int
    late: int
    sent: int
    received: int
    windows: int
    used_per_window: float
    gap: float
    reset_error: float
    result: dict[str, Any]


def _reset_errors(result: dict[str, Any], windows: list[Window], window: float) -> dict[int, float]:
    """Per window: how far past the true end of the window the announced ``X-RateLimit-Reset`` lay, in seconds."""
    starts = [w.start for w in windows]
    errors: dict[int, float] = {}
    for _, received, status, x_reset, _ in result["exchanges"]:
        if status == 0 or x_reset is None or not x_reset.isdigit():
            continue
        index = max((i for i, start in enumerate(starts) if start <= received), default=None)
        if index is None or index in errors:
            continue
        true_end = starts[index] + window + result["wall_offset"]
        errors[index] = int(x_reset) - true_end
    return errors


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def measure(spec: dict[str, Any], result: dict[str, Any], arrivals: list[float]) -> tuple[Rep, list[str]]:
    """Turn one worker's exchanges and the upstream's arrivals into a :class:`Rep`; list what invalidates it."""
    name, limit, window, duration = spec["candidate"], spec["limit"], spec["window"], spec["duration"]
    problems: list[str] = []
    exchanges: list[list[Any]] = result["exchanges"]
    t0, end = result["t0"], result["end"]
    statuses = Counter(e[2] for e in exchanges)
    upstream_statuses, windows = replay(arrivals, limit, window)
    upstream_counts = Counter(upstream_statuses)
    if len(exchanges) != len(arrivals):
        problems.append(f"{name}: client counted {len(exchanges)} requests sent, the upstream {len(arrivals)}")
    if (statuses[200], statuses[429]) != (upstream_counts[200], upstream_counts[429]):
        problems.append(
            f"{name}: client saw {statuses[200]} x 200 / {statuses[429]} x 429, the upstream's quota gave "
            f"{upstream_counts[200]} / {upstream_counts[429]}"
        )
    if result["cancelled"]:
        problems.append(f"{name}: {result['cancelled']} load tasks still running after --drain; cancelled")
    ok_in_load = sum(1 for e in exchanges if e[2] == 200 and e[0] < end)
    first_response = min((e[1] for e in exchanges if e[2] != 0), default=math.inf)
    bad_exchanges = sum(n for status, n in statuses.items() if status not in (200, 429))
    bad_calls = sum(n for outcome, n in result["outcomes"].items() if outcome not in RATE_OUTCOMES)
    if bad_exchanges or bad_calls:
        problems.append(
            f"{name}: errors: {bad_exchanges} exchanges not 200/429 {dict(result['errors'])}, {bad_calls} calls "
            f"ended otherwise than by the rate limit {result['outcomes']}"
        )
    in_load = [i for i, w in enumerate(windows) if t0 <= w.start < end]
    # the load's end may cut the last window short; one that ends within a tenth of a window of it is whole
    complete = [i for i in in_load if windows[i].start + window <= end + 0.1 * window]
    gaps = [windows[i].start - (windows[i - 1].start + window) for i in in_load if i > 0]
    reset_errors = _reset_errors(result, windows, window)
    errors_complete = [reset_errors[i] for i in complete if i in reset_errors]
    return (
        Rep(
            goodput=ok_in_load / (duration / window * limit),
            ok_per_s=ok_in_load / duration,
            ok_in_load=ok_in_load,
            allowed=round(duration / window * limit),
            limited=statuses[429],
            limited_after_first=sum(1 for e in exchanges if e[2] == 429 and e[0] > first_response),
            errors=bad_exchanges + bad_calls,
            refused=result["outcomes"].get(REFUSED_LOCALLY, 0),
            late=sum(1 for e in exchanges if e[0] >= end),
            sent=len(exchanges),
            received=len(arrivals),
            windows=len(in_load),
            used_per_window=_mean([min(windows[i].ok, limit) / limit for i in complete]),
            gap=_mean(gaps),
            reset_error=_mean(errors_complete),
            result=result,
        ),
        problems,
    )


# --------------------------------------------------------------------------- parent side: running and reporting


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="ratelimit_goodput.py",
        description=__doc__,
        epilog=METHOD_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--limit", type=int, default=100, help="quota: requests allowed per window (default 100)")
    parser.add_argument("--window", type=float, default=2.0, help="quota window, s (default 2)")
    parser.add_argument(
        "--duration", type=float, default=12.0, help="load duration, s, a whole number of windows (default 12)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="tasks looping calls, per candidate (default 8)")
    parser.add_argument(
        "--drain", type=float, default=15.0, help="max wait for calls after the load ended, s (default 15)"
    )
    add_common_options(
        parser, CANDIDATES, reps=5, quick="smoke test in < 30 s: one or two windows, 2 reps, no quiet wait"
    )
    args = parser.parse_args(argv)
    if args.limit < 1 or not args.window > 0 or args.concurrency < 1 or args.reps < 1 or not args.drain > 0:
        parser.error("--limit, --concurrency, --reps must be >= 1; --window, --drain > 0")
    if args.quick:
        args.duration = args.window * max(1, math.floor(2.0 / args.window))
        args.reps, args.drain, args.quiet_wait = 2, 5.0, 0.0
    windows = args.duration / args.window
    if not args.duration > 0 or windows < 1 or abs(windows - round(windows)) > 1e-9:
        parser.error("--duration must be a whole number (>= 1) of --window")
    if args.limit * windows > 1_000_000 or args.duration > 600:
        parser.error("at most 1,000,000 allowed requests and 600 s per run")
    args.candidates = chosen_candidates(parser, args.candidates, CANDIDATES)
    return args


def _num(value: float, fmt: str, scale: float = 1.0) -> str:
    """``value`` formatted, or ``n/a`` when there was nothing to measure (NaN)."""
    return "n/a" if math.isnan(value) else f"{scale * value:{fmt}}"


def _range(values: Sequence[float], fmt: str) -> str:
    """:func:`fmt_range` of the measured ``values`` (NaN ones left out), or ``n/a``."""
    measured = [v for v in values if not math.isnan(v)]
    return fmt_range(summarize(measured), fmt) if measured else "n/a"


def _describe(name: str, rep: Rep) -> str:
    r = rep.result
    calls = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]))
    refused = f"; refused locally {rep.refused}" if name == "tether" else ""
    return (
        f"{name}: goodput {rep.goodput:.3f} of Q ({rep.ok_in_load} x 200 of {rep.allowed} allowed, "
        f"{rep.ok_per_s:.1f}/s); 429s {rep.limited} (after first response {rep.limited_after_first}); "
        f"errors {rep.errors}{refused}; sent {rep.sent} [upstream received {rep.received}], {rep.late} after the "
        f"load ended; windows opened {rep.windows}, quota used per complete window {_num(rep.used_per_window, '.3f')}, "
        f"mean gap before a window reopened {_num(rep.gap, '.0f', 1000)} ms, announced reset past the true end "
        f"{_num(rep.reset_error, '+.3f')} s; calls: {calls}{noise_note(r['foreign_cores'])}"
    )


def _report(args: argparse.Namespace, reps: dict[str, list[Rep]]) -> bool:
    """Print the summary; return whether tether met its target (``False`` if it did not run)."""
    met = False
    print("\nper candidate, median [min-max] over repetitions")
    goodputs: dict[str, float] = {}
    for name, label in CANDIDATES.items():
        runs = reps.get(name)
        if not runs:
            continue
        goodput = summarize([r.goodput for r in runs])
        limited_after = summarize([r.limited_after_first for r in runs])
        goodputs[name] = goodput.median
        print(f"  {label}")
        print(f"    goodput, fraction of Q       {fmt_range(goodput, '.3f')}")
        print(f"    200s per second              {fmt_range(summarize([r.ok_per_s for r in runs]), ',.1f')}")
        print(f"    429s received                {fmt_range(summarize([r.limited for r in runs]), ',.0f')}")
        print(f"    429s after first response    {fmt_range(limited_after, ',.0f')}")
        print(f"    errors                       {fmt_range(summarize([r.errors for r in runs]), ',.0f')}")
        if name == "tether":
            print(f"    refused locally, not sent    {fmt_range(summarize([r.refused for r in runs]), ',.0f')}")
        print(f"    quota used / complete window {_range([r.used_per_window for r in runs], '.3f')}")
        print(f"    announced reset past its end {_range([r.reset_error for r in runs], '+.3f')} s")
        if name == "tether":
            met = goodput.median >= TARGET_GOODPUT and limited_after.high == 0
            verdict = "MET" if met else "MISSED"
            print(
                f"    target >= {TARGET_GOODPUT} of Q with zero 429s after the first response: {verdict} (goodput "
                f"median {goodput.median:.3f}; 429s after the first response at most {limited_after.high:.0f})"
            )
    if goodputs.get("tether"):
        for name in ("tenacity", "aiolimiter"):
            if goodputs.get(name):
                print(f"  goodput ratio tether / {name}: {goodputs['tether'] / goodputs[name]:.3f}")
    return met


def _run_one(script: Path, spec: dict[str, Any], server: TetherUpstream, timeout: float) -> tuple[Rep, list[str]]:
    prepare(server, spec["limit"], spec["window"])
    result = run_worker(script, spec, timeout=timeout, server=server)
    return measure(spec, result, arrivals(server))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--worker``, one candidate's load)."""
    given = sys.argv[1:] if argv is None else argv
    args = parse_args(given)
    if args.worker:
        return worker(json.loads(args.worker))
    terminate_on_sigterm()
    started = time.monotonic()
    script = Path(__file__).resolve()
    try:
        check_cpus()
        pin_self(CLIENT_CPU)
        print_header("tether bench: rate-limit goodput", [sys.argv[0], *given], PACKAGES)
        allowed = round(args.duration / args.window * args.limit)
        print(
            f"settings: quota {args.limit} per {args.window:g} s on GET {QUOTA_PATH} (fixed window, opened by the "
            f"first request after the previous ended); load {args.concurrency} tasks looping calls for "
            f"{args.duration:g} s ({round(args.duration / args.window)} windows, at most {allowed} x 200); "
            f"{args.reps} repetitions, drain <= {args.drain:g} s; requests counted client-side and upstream-side"
            + (" [--quick: smoke test, not a measurement]" * args.quick)
        )
        timeout = args.duration + args.drain + 60
        # no routes yet: prepare() scripts them afresh (after a reset) before each candidate
        with tether_upstream([], cpu=SERVER_CPU, start_timeout=15.0) as server:
            print(f"upstream: {describe_upstream(server)}", flush=True)
            gate = QuietGate(server, args.quiet_wait)
            base = {
                "url": server.url,
                "limit": args.limit,
                "window": args.window,
                "duration": args.duration,
                "concurrency": args.concurrency,
                "drain": args.drain,
            }
            reps, problems = run_interleaved(
                args.reps,
                args.candidates,
                gate,
                base=base,
                run_one=lambda spec: _run_one(script, spec, server, timeout),
                describe=_describe,
            )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _report(args, reps)
    return finish(gate, problems, started)


if __name__ == "__main__":
    raise SystemExit(main())
