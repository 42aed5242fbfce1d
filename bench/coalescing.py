"""Request coalescing: bursts of identical concurrent GETs through tether's single-flight and through raw aiohttp.

The upstream is tether's scriptable upstream (``python -m tether.testing.upstream``, one process pinned to CPU 1)
serving ``GET /v1/report`` with the fixed ~200-byte JSON body of shared/BENCHMARKING.md after ``--latency``
seconds (default 0.05), so the requests of a burst overlap in flight, as calls to a slow report endpoint would.
A scriptable Python server is the right upstream here: this benchmark is about behaviour (how many requests
reach the upstream), not a throughput ceiling, and the upstream counts what it receives itself.

Each candidate runs in its own fresh process pinned to CPU 0, with a 100-connection pool:

- ``aiohttp``: raw ``aiohttp.ClientSession`` (its default ``TCPConnector(limit=100)``);
- ``tether``: ``tether.AsyncClient(url, coalesce=True)`` (single-flight without a cache; default ``Policy``);
- ``tether-plain``: ``tether.AsyncClient(url)`` without coalescing, for context: tether's own pipeline at this
  concurrency, against the same upstream.

A worker warms up (100 GETs of distinct ``/warm?i=N`` URLs at once, which opens the pool's connections and never
coalesces), then runs ``--bursts`` bursts: a burst is ``--concurrency`` (default 1,000)
GETs of ``/v1/report`` started together with ``asyncio.gather``, timed from before the first call starts to after
the last body is read. Every status must be 200 and every body the expected bytes; anything else is an error,
and a run with errors is invalid.

Upstream requests are counted upstream-side (its admin API: requests for ``/v1/report`` received while the
worker ran, divided by the bursts). The worker also counts client-side (tether: a wrapper around its aiohttp
transport's ``send``; aiohttp: a ``trace_config`` request hook); the two counts must agree. Expected: aiohttp
sends ``--concurrency`` requests per burst, tether exactly 1.

Prints, per repetition and as a median [min-max] over repetitions: upstream requests per burst, wall time per
burst (each worker's median over its bursts), the upstream's CPU time per burst (read from ``/proc`` by the
worker around its timed bursts); then the ratios of medians:
upstream requests aiohttp / tether and wall time aiohttp / tether.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    CLIENT_CPU,
    METHOD,
    OK_BODY,
    SERVER_CPU,
    BenchError,
    QuietGate,
    Summary,
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
    process_cpu_seconds,
    ratio,
    run_interleaved,
    run_worker,
    summarize,
    terminate_on_sigterm,
    tether_upstream,
    worker_result,
)

CANDIDATES = {
    "aiohttp": "raw aiohttp.ClientSession",
    "tether": "tether.AsyncClient(coalesce=True)",
    "tether-plain": "tether.AsyncClient (no coalescing)",
}
PACKAGES = ["tether", "aiohttp", "multidict", "yarl"]
PATH = "/v1/report"
POOL = 100

Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]


# --------------------------------------------------------------------------- worker side


async def _burst(fetch: Fetch, urls: Sequence[str], errors: Counter[str]) -> float:
    """GET every URL at once; the wall time until the last body was read."""

    async def one(url: str) -> None:
        try:
            status, body = await fetch(url)
        except Exception as exc:
            errors[type(exc).__name__] += 1
            return
        if status != 200:
            errors[f"status {status}"] += 1
        elif body != OK_BODY:
            errors["unexpected body"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(url) for url in urls))
    return time.perf_counter() - started


@dataclass
class Measured:
    """What one worker saw: each burst's wall time, the errors, and the upstream's CPU time during the bursts."""

    walls: list[float]
    errors: Counter[str]
    upstream_cpu: float


async def _measure(fetch: Fetch, spec: dict[str, Any]) -> Measured:
    base, concurrency = spec["url"], spec["concurrency"]
    errors: Counter[str] = Counter()
    await _burst(fetch, [f"{base}/warm?i={i}" for i in range(POOL)], errors)  # opens the pool's connections
    report = [f"{base}{PATH}"] * concurrency
    cpu_before = process_cpu_seconds(spec["upstream_pid"])
    walls = [await _burst(fetch, report, errors) for _ in range(spec["bursts"])]
    return Measured(walls, errors, process_cpu_seconds(spec["upstream_pid"]) - cpu_before)


async def _aiohttp(spec: dict[str, Any], sent: list[int]) -> Measured:
    import aiohttp

    async def count(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        if params.url.path == PATH:
            sent[0] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    connector = aiohttp.TCPConnector(limit=POOL)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:

        async def fetch(url: str) -> tuple[int, bytes]:
            async with session.get(url) as response:
                return response.status, await response.read()

        return await _measure(fetch, spec)


async def _tether(spec: dict[str, Any], sent: list[int], *, coalesce: bool) -> Measured:
    import tether

    class CountingTransport:
        """tether's default transport, counting the exchanges for the measured path."""

        def __init__(self) -> None:
            self.inner = tether.AiohttpTransport(max_connections=POOL)

        async def send(self, request: tether.Request, timeout: float | None) -> tether.Response:  # noqa: ASYNC109
            if request.url.endswith(PATH):
                sent[0] += 1
            return await self.inner.send(request, timeout)

        async def aclose(self) -> None:
            await self.inner.aclose()

    async with tether.AsyncClient(transport=CountingTransport(), coalesce=coalesce) as api:

        async def fetch(url: str) -> tuple[int, bytes]:
            response = await api.get(url)
            return response.status_code, response.content

        return await _measure(fetch, spec)


def worker(spec: dict[str, Any]) -> int:
    """Run one candidate's bursts (in this fresh, pinned process) and report to the parent."""
    preload(["aiohttp", "tether", "tether.cache"])
    sent = [0]
    name = spec["candidate"]
    if name == "aiohttp":
        measured = asyncio.run(_aiohttp(spec, sent))
    elif name in ("tether", "tether-plain"):
        measured = asyncio.run(_tether(spec, sent, coalesce=name == "tether"))
    else:
        raise BenchError(f"unknown candidate {name!r}")
    worker_result(
        {
            "walls": measured.walls,
            "wall": statistics.median(measured.walls),
            "errors": dict(measured.errors),
            "sent": sent[0],
            "upstream_cpu": measured.upstream_cpu,
        }
    )
    return 0


# --------------------------------------------------------------------------- parent side


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="coalescing.py", description=__doc__, epilog=METHOD, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=1000, help="identical GETs per burst (default 1000)")
    parser.add_argument("--bursts", type=int, default=5, help="timed bursts per worker (default 5)")
    parser.add_argument("--latency", type=float, default=0.05, help="upstream latency, s (default 0.05)")
    add_common_options(parser, CANDIDATES, reps=5, quick="smoke test in < 30 s: 2 reps of 2 bursts, no quiet wait")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.bursts, args.quiet_wait = 2, 2, 0.0
    if not 1 <= args.concurrency <= 10_000 or args.bursts < 1 or args.reps < 1 or not 0 <= args.latency <= 5:
        parser.error("--concurrency in 1..10000, --bursts and --reps >= 1, --latency in 0..5 s")
    args.candidates = chosen_candidates(parser, args.candidates, CANDIDATES)
    return args


@dataclass
class Rep:
    """One candidate's result in one repetition."""

    received_per_burst: float
    wall: float
    upstream_cpu_per_burst: float
    result: dict[str, Any]


def _run_one(script: Path, spec: dict[str, Any], server: TetherUpstream, timeout: float) -> tuple[Rep, list[str]]:
    problems: list[str] = []
    before = server.count(PATH)
    result = run_worker(script, spec, timeout=timeout, server=server)
    received = server.count(PATH) - before
    name, bursts = spec["candidate"], spec["bursts"]
    if result["errors"]:
        problems.append(f"{name}: errors {result['errors']}")
    if result["sent"] != received:
        problems.append(f"{name}: client counted {result['sent']} requests, the upstream received {received}")
    expected = bursts if name == "tether" else bursts * spec["concurrency"]
    if received != expected:
        problems.append(f"{name}: the upstream received {received} requests for {bursts} bursts, not {expected}")
    return Rep(received / bursts, result["wall"], result["upstream_cpu"] / bursts, result), problems


def _describe(name: str, rep: Rep) -> str:
    walls = ", ".join(f"{1000 * wall:.0f}" for wall in rep.result["walls"])
    return (
        f"{name}: {rep.received_per_burst:g} upstream requests/burst [client counted {rep.result['sent']} in all]; "
        f"wall {1000 * rep.wall:.1f} ms/burst (bursts: {walls} ms); "
        f"upstream CPU {1000 * rep.upstream_cpu_per_burst:.0f} ms/burst{noise_note(rep.result['foreign_cores'])}"
    )


def _report(args: argparse.Namespace, reps: dict[str, list[Rep]]) -> None:
    print(f"\nper burst of {args.concurrency} identical GETs, median [min-max] over repetitions:")
    walls: dict[str, Summary] = {}
    received: dict[str, Summary] = {}
    for name, label in CANDIDATES.items():
        if not reps.get(name):
            continue
        received[name] = summarize([rep.received_per_burst for rep in reps[name]])
        walls[name] = summarize([1000 * rep.wall for rep in reps[name]])
        cpu = summarize([1000 * rep.upstream_cpu_per_burst for rep in reps[name]])
        print(
            f"  {label:<36} upstream requests {fmt_range(received[name], ',.0f'):<26} "
            f"wall ms {fmt_range(walls[name], ',.1f'):<28} upstream CPU ms {fmt_range(cpu, ',.0f')}"
        )
    if "tether" in walls and "aiohttp" in walls:
        print(
            "  upstream requests, raw aiohttp / tether with coalescing: "
            f"{ratio(received['aiohttp'], received['tether']):,.0f}x "
            f"({received['aiohttp'].median:,.0f} vs {received['tether'].median:,.0f})"
        )
        print(
            f"  wall time, raw aiohttp / tether with coalescing: {ratio(walls['aiohttp'], walls['tether']):.2f}x"
            " (> 1: tether finishes the burst sooner)"
        )
    if "tether-plain" in walls and "aiohttp" in walls:
        print(
            f"  wall time, raw aiohttp / tether without coalescing: "
            f"{ratio(walls['aiohttp'], walls['tether-plain']):.2f}x (tether's pipeline, same upstream work)"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--worker``, one candidate's bursts)."""
    given = sys.argv[1:] if argv is None else argv
    args = parse_args(given)
    if args.worker:
        return worker(json.loads(args.worker))
    terminate_on_sigterm()
    started = time.monotonic()
    script = Path(__file__).resolve()
    routes = [
        {"method": "GET", "path": PATH, "replies": [{"body": OK_BODY.decode(), "latency": args.latency}]},
        {"method": "GET", "path": "/warm", "replies": [{"body": OK_BODY.decode()}]},
    ]
    try:
        check_cpus()
        pin_self(CLIENT_CPU)
        print_header("tether bench: request coalescing", [sys.argv[0], *given], PACKAGES)
        print(
            f"settings: bursts of {args.concurrency} concurrent identical GET {PATH}, upstream latency "
            f"{1000 * args.latency:g} ms, {args.bursts} timed bursts per worker after a warm-up, {args.reps} "
            f"repetitions, pool of {POOL} connections; upstream requests counted upstream-side (client-side "
            "counters cross-check)" + (" [--quick: smoke test, not a measurement]" * args.quick)
        )
        timeout = 120 + args.bursts * (args.latency + 0.01) * args.concurrency
        with tether_upstream(routes, cpu=SERVER_CPU) as server:
            print(f"upstream: {server.describe()}", flush=True)
            gate = QuietGate(server, args.quiet_wait)
            base = {
                "url": server.url,
                "concurrency": args.concurrency,
                "bursts": args.bursts,
                "upstream_pid": server.pid,
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
