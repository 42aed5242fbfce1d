"""Outage amplification: how many upstream requests one logical call costs while the upstream is down.

The upstream is nginx answering ``503`` to every request (its own config and port, 127.0.0.1:18081, one
worker pinned to CPU 1, an access log of one status per request; at a few hundred requests/s it is never
the bottleneck). Each candidate, in its own fresh process pinned to CPU 0, makes ``--rate`` logical GET
calls per second for ``--duration`` seconds (default 50/s for 10 s: 500 calls), open-loop: call i starts at
``t0 + i / rate`` whatever happened to earlier calls, every call independent, the same schedule for every
candidate. Candidates:

- ``tether``: ``tether.AsyncClient`` with its default ``Policy`` (3 retries, full-jitter backoff from 0.1 s,
  retry budget on); a call ends in ``ServerError`` or ``RetryBudgetExhausted`` (both count as finished);
- ``tenacity``: ``@tenacity.retry(stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.1, max=2))``
  (3 retries; waits 0.1, 0.2, 0.4 s) around an **async** ``httpx.AsyncClient`` GET + ``raise_for_status()``;
- ``urllib3``: ``requests.Session`` with ``HTTPAdapter(max_retries=urllib3.Retry(total=3,
  status_forcelist=[503], backoff_factor=0.1))`` (default ``allowed_methods``; waits 0, 0.2, 0.4 s), sync,
  driven by a thread pool (``--threads``, default 64) so it keeps up with the schedule.

Counting: attempts per logical call = upstream requests received / logical calls. "Received" is counted
**upstream-side from nginx's access log** (lines added while the candidate's process ran; every line must
be a 503). As a cross-check each candidate also counts client-side around its raw send (tether: a wrapper
around its aiohttp transport's ``send``; httpx: a request event hook; urllib3: a ``HTTPConnection``
subclass counting ``request()``); the two counts must agree or the run is invalid. No warm-up: this is a
count, not a speed, and a warm-up against the failing upstream would spend tether's retry budget (a fresh
client starts with a full budget, as one that served healthy traffic before the outage would).

Prints, per repetition (default 3) and as a median with min-max: attempts per call (targets: tether <= 1.2,
tenacity and urllib3 ~4), calls finished out of calls scheduled and how they ended, the median call
duration, and the schedule lag (how late calls started; large lag means the load generator fell behind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    CLIENT_CPU,
    METHOD,
    SERVER_CPU,
    BenchError,
    Nginx,
    QuietGate,
    add_common_options,
    check_cpus,
    chosen_candidates,
    finish,
    fmt_range,
    nginx,
    noise_note,
    pin_self,
    preload,
    print_header,
    run_interleaved,
    run_worker,
    summarize,
    terminate_on_sigterm,
    worker_result,
)

CANDIDATES = {
    "tether": "tether.AsyncClient (default Policy)",
    "tenacity": "tenacity(4 attempts) + httpx.AsyncClient",
    "urllib3": "requests + urllib3.Retry(total=3)",
}
PACKAGES = ["tether", "aiohttp", "httpx", "httpcore", "tenacity", "requests", "urllib3"]
UNAVAILABLE_BODY = b'{"error":"service unavailable"}'
TETHER_TARGET = 1.2


# --------------------------------------------------------------------------- worker side


@dataclass
class Load:
    """What one open-loop run saw."""

    scheduled: int
    outcomes: Counter[str] = field(default_factory=Counter)
    lags: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    note: str = ""

    def record(self, due: float, call: Callable[[], object]) -> None:
        """Run ``call`` (a blocking logical call) and record how it ended."""
        started = time.perf_counter()
        try:
            call()
        except Exception as exc:
            outcome = type(exc).__name__
        else:
            outcome = "succeeded"
        with self.lock:
            self._add(due, started, outcome)

    async def arecord(self, due: float, call: Callable[[], Awaitable[object]]) -> None:
        """Run ``call`` (an async logical call) and record how it ended."""
        started = time.perf_counter()
        try:
            await call()
        except Exception as exc:
            outcome = type(exc).__name__
        else:
            outcome = "succeeded"
        self._add(due, started, outcome)

    def _add(self, due: float, started: float, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.lags.append(started - due)
        self.durations.append(time.perf_counter() - started)


def _schedule(rate: float, duration: float) -> tuple[int, float]:
    """How many calls, and when the first is due (a little after now)."""
    return max(1, round(rate * duration)), time.perf_counter() + 0.05


async def open_loop_async(call: Callable[[], Awaitable[object]], spec: dict[str, Any]) -> Load:
    """Start call i at ``t0 + i / rate`` as its own task; wait (at most ``drain`` s) for all to end."""
    count, t0 = _schedule(spec["rate"], spec["duration"])
    load = Load(count)
    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        due = t0 + i / spec["rate"]
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(load.arecord(due, call)))
    _, pending = await asyncio.wait(tasks, timeout=spec["drain"])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return load


def open_loop_threads(call: Callable[[], object], spec: dict[str, Any]) -> Load:
    """Submit call i to a thread pool at ``t0 + i / rate``; wait (at most ``drain`` s) for all to end."""
    count, t0 = _schedule(spec["rate"], spec["duration"])
    load = Load(count)
    pool = ThreadPoolExecutor(max_workers=spec["threads"], thread_name_prefix="call")
    try:
        futures = []
        for i in range(count):
            due = t0 + i / spec["rate"]
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(load.record, due, call))
        wait_futures(futures, timeout=spec["drain"])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return load


async def _tether(spec: dict[str, Any], sent: list[int]) -> Load:
    import tether

    class CountingTransport:
        """tether's default transport, counting every exchange it is asked to perform."""

        def __init__(self) -> None:
            self.inner = tether.AiohttpTransport()

        async def send(self, request: tether.Request, timeout: float | None) -> tether.Response:  # noqa: ASYNC109
            sent[0] += 1
            return await self.inner.send(request, timeout)

        async def aclose(self) -> None:
            await self.inner.aclose()

    async with tether.AsyncClient(spec["url"], transport=CountingTransport()) as api:
        load = await open_loop_async(lambda: api.get("/"), spec)
        if api.budget is not None:
            snap = api.budget.snapshot()
            load.note = f"retry budget: {snap.retries} retries allowed, {snap.suppressed} suppressed"
    return load


async def _tenacity(spec: dict[str, Any], sent: list[int]) -> Load:
    import httpx
    import tenacity

    async def count(request: httpx.Request) -> None:
        sent[0] += 1

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, httpx.HTTPStatusError):
            return exc.response.status_code >= 500
        return isinstance(exc, httpx.TransportError)

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:

        @tenacity.retry(
            stop=tenacity.stop_after_attempt(4),
            wait=tenacity.wait_exponential(multiplier=0.1, max=2),
            retry=tenacity.retry_if_exception(retryable),
            reraise=True,
        )
        async def call() -> bytes:
            response = await client.get(spec["url"] + "/")
            response.raise_for_status()
            return response.content

        return await open_loop_async(call, spec)


def _urllib3(spec: dict[str, Any], sent: list[int]) -> Load:
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    lock = threading.Lock()

    class CountingConnection(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            with lock:
                sent[0] += 1
            super().request(*args, **kwargs)

    class CountingPool(HTTPConnectionPool):
        ConnectionCls = CountingConnection

    retry = urllib3.Retry(total=3, status_forcelist=[503], backoff_factor=0.1)
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=spec["threads"])
    adapter.poolmanager.pool_classes_by_scheme = {"http": CountingPool, "https": HTTPSConnectionPool}
    with requests.Session() as session:
        session.mount("http://", adapter)

        def call() -> bytes:
            response = session.get(spec["url"] + "/", timeout=10)
            response.raise_for_status()
            return response.content

        return open_loop_threads(call, spec)


def worker(spec: dict[str, Any]) -> int:
    """Run one candidate's open-loop load (in this fresh, pinned process) and report to the parent."""
    preload(["aiohttp", "httpx", "tenacity", "requests", "urllib3", "tether"])
    sent = [0]
    name = spec["candidate"]
    if name == "tether":
        load = asyncio.run(_tether(spec, sent))
    elif name == "tenacity":
        load = asyncio.run(_tenacity(spec, sent))
    elif name == "urllib3":
        load = _urllib3(spec, sent)
    else:
        raise BenchError(f"unknown candidate {name!r}")
    lags = sorted(load.lags) or [0.0]
    worker_result(
        {
            "scheduled": load.scheduled,
            "finished": len(load.durations),
            "outcomes": dict(load.outcomes),
            "sent": sent[0],
            "lag_p50": lags[len(lags) // 2],
            "lag_max": lags[-1],
            "duration_p50": statistics.median(load.durations) if load.durations else 0.0,
            "note": load.note,
        }
    )
    return 0


# --------------------------------------------------------------------------- parent side


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="outage.py", description=__doc__, epilog=METHOD, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="logical calls per second (default 50)")
    parser.add_argument("--duration", type=float, default=10.0, help="outage (load) duration, s (default 10)")
    parser.add_argument("--threads", type=int, default=64, help="thread pool for the sync candidate (default 64)")
    parser.add_argument(
        "--drain", type=float, default=40.0, help="max wait for calls after the last start, s (default 40)"
    )
    parser.add_argument("--port", type=int, default=18081, help="503 nginx port on 127.0.0.1 (default 18081)")
    add_common_options(parser, CANDIDATES, reps=3, quick="smoke test in < 30 s: a 2 s outage, 2 reps, no quiet wait")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.reps, args.drain, args.quiet_wait = 2.0, 2, 10.0, 0.0
    if args.rate <= 0 or args.duration <= 0 or args.reps < 1 or args.threads < 1 or args.drain <= 0:
        parser.error("--rate, --duration, --drain must be > 0; --reps, --threads >= 1")
    if args.rate * args.duration > 100_000:
        parser.error("--rate x --duration is capped at 100000 calls")
    args.candidates = chosen_candidates(parser, args.candidates, CANDIDATES)
    return args


def _budget_bound(calls: int, seconds: float) -> tuple[float, str]:
    """The most attempts per call tether's default retry budget allows for this load, and how."""
    import tether

    budget = tether.Policy().budget or tether.RetryBudget()
    retries = budget.burst + budget.ratio * calls + budget.min_per_second * seconds
    text = (
        f"1 + (burst {budget.burst:g} + ratio {budget.ratio:g} x {calls} calls + "
        f"{budget.min_per_second:g}/s x {seconds:g} s) / {calls} calls"
    )
    return 1 + retries / calls, text


@dataclass
class Rep:
    """One candidate's result in one repetition."""

    attempts_per_call: float
    received: int
    result: dict[str, Any]


def _run_one(script: Path, spec: dict[str, Any], server: Nginx, timeout: float) -> tuple[Rep, list[str]]:
    problems: list[str] = []
    before = len(server.logged())
    result = run_worker(script, spec, timeout=timeout, server=server)
    time.sleep(0.2)  # let nginx finish writing the last lines
    lines = server.logged()[before:]
    if bad := Counter(line for line in lines if line != "503"):
        problems.append(f"{spec['candidate']}: upstream logged statuses other than 503: {dict(bad)}")
    if result["sent"] != len(lines):
        problems.append(
            f"{spec['candidate']}: client counted {result['sent']} requests, nginx logged {len(lines)} (mismatch)"
        )
    if result["finished"] != result["scheduled"]:
        problems.append(f"{spec['candidate']}: only {result['finished']} of {result['scheduled']} calls finished")
    return Rep(len(lines) / result["scheduled"], len(lines), result), problems


def _describe(name: str, rep: Rep) -> str:
    r = rep.result
    ended = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]))
    if r["note"]:
        ended += f" ({r['note']})"
    return (
        f"{name}: {rep.attempts_per_call:.3f} attempts/call ({rep.received} upstream requests [client counted "
        f"{r['sent']}] / {r['scheduled']} calls); finished {r['finished']}/{r['scheduled']}: {ended}; "
        f"call p50 {1000 * r['duration_p50']:.0f} ms; start lag p50 {1000 * r['lag_p50']:.1f} ms, "
        f"max {1000 * r['lag_max']:.1f} ms{noise_note(r['foreign_cores'])}"
    )


def _report(args: argparse.Namespace, reps: dict[str, list[Rep]], calls: int) -> None:
    bound, how = _budget_bound(calls, args.duration)
    print("\nattempts per logical call (upstream requests / calls), median [min-max]; calls finished")
    medians: dict[str, float] = {}
    for name, label in CANDIDATES.items():
        if not reps.get(name):
            continue
        summary = summarize([r.attempts_per_call for r in reps[name]])
        medians[name] = summary.median
        finished = sum(r.result["finished"] for r in reps[name])
        scheduled = sum(r.result["scheduled"] for r in reps[name])
        target = ""
        if name == "tether":
            target = f"  (target <= {TETHER_TARGET}: {'met' if summary.median <= TETHER_TARGET else 'MISSED'})"
        else:
            target = "  (expected ~4: 1 + 3 retries)"
        print(f"  {label:<40} {fmt_range(summary, '.3f'):<28} finished {finished}/{scheduled}{target}")
    print(f"  tether's retry budget allows at most {bound:.3f} attempts/call here: {how}")
    if "tether" in medians and medians["tether"] > 0:
        for name in ("tenacity", "urllib3"):
            if name in medians:
                print(f"  {CANDIDATES[name]} sends {medians[name] / medians['tether']:.2f}x tether's upstream load")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--worker``, one candidate's load)."""
    given = sys.argv[1:] if argv is None else argv
    args = parse_args(given)
    if args.worker:
        return worker(json.loads(args.worker))
    terminate_on_sigterm()
    started = time.monotonic()
    script = Path(__file__).resolve()
    calls = max(1, round(args.rate * args.duration))
    try:
        check_cpus()
        pin_self(CLIENT_CPU)
        print_header("tether bench: outage amplification", [sys.argv[0], *given], PACKAGES)
        print(
            f"settings: {calls} logical GET calls, {args.rate:g}/s open-loop for {args.duration:g} s, "
            f"{args.reps} repetitions, drain <= {args.drain:g} s, {args.threads} threads for urllib3; "
            "upstream requests counted from nginx's access log (client-side counters cross-check)"
            + (" [--quick: smoke test, not a measurement]" * args.quick)
        )
        timeout = args.duration + args.drain + 60
        with nginx(args.port, status=503, body=UNAVAILABLE_BODY, access_log=True, cpu=SERVER_CPU) as server:
            print(f"upstream: {server.describe()}", flush=True)
            gate = QuietGate(server, args.quiet_wait)
            base = {
                "url": server.url,
                "rate": args.rate,
                "duration": args.duration,
                "drain": args.drain,
                "threads": args.threads,
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
    _report(args, reps, calls)
    return finish(gate, problems, started)


if __name__ == "__main__":
    raise SystemExit(main())
