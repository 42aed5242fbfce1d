"""Client overhead in instructions: what each client executes per request, counted by callgrind, not timed.

The noise-free companion of ``client_overhead.py``. On these small shared machines a timed ratio moves by 5-10 %
between identical runs; an instruction count does not depend on what else runs. Each candidate runs the very
worker of ``client_overhead.py`` (same warm-up, same loop, same checks, against the same nginx), under
``valgrind --tool=callgrind``, twice: with ``--small`` and with ``--large`` timed requests. The two runs share
interpreter start-up, imports and warm-up, so the difference of their totals divided by the difference of their
request counts is the cost of one request: user-space instructions only (the kernel's share of each request,
the sockets' system calls, is the same for every candidate and is not counted, so a ratio of instructions is a
conservative estimate of the ratio of throughput on an idle core). Batching of responses by the event loop varies
a little between runs, so the count of one request varies by about 1 % between identical runs: ``--reps`` runs
each pair several times and reports the median.

Prints instructions per request per candidate and the ratios raw / tether (higher is better for tether; 1.0 is
free), the same pairs as ``client_overhead.py``. Needs ``valgrind`` and ``nginx`` on the PATH.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _harness import (
    METHOD,
    SERVER_CPU,
    BenchError,
    check_cpus,
    nginx,
    pin_self,
    print_header,
    run_worker,
    summarize,
    terminate_on_sigterm,
)
from client_overhead import ASYNC_CANDIDATES, PACKAGES, SYNC_CANDIDATES

PAIRS = [
    ("tether", "aiohttp", "tether.AsyncClient / raw aiohttp"),
    ("stack", "aiohttp", "popular stack / raw aiohttp"),
    ("tether-sync", "httpx-sync", "tether.Client / raw httpx.Client"),
]
DEFAULT_CANDIDATES = "aiohttp,tether,httpx-sync,tether-sync"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="client_instructions.py",
        description=__doc__,
        epilog=METHOD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--small", type=int, default=500, help="timed requests of the first run (default 500)")
    parser.add_argument("--large", type=int, default=2500, help="timed requests of the second run (default 2500)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first, in both runs (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="async requests in flight (default 32)")
    parser.add_argument("--reps", type=int, default=1, help="pairs of runs per candidate; the median (default 1)")
    parser.add_argument("--port", type=int, default=18080, help="nginx port on 127.0.0.1 (default 18080)")
    parser.add_argument(
        "--candidates",
        default=DEFAULT_CANDIDATES,
        help=f"subset of {','.join([*ASYNC_CANDIDATES, *SYNC_CANDIDATES])} (default {DEFAULT_CANDIDATES})",
    )
    args = parser.parse_args(argv)
    known = {*ASYNC_CANDIDATES, *SYNC_CANDIDATES}
    args.candidates = [name.strip() for name in args.candidates.split(",") if name.strip()]
    unknown = [name for name in args.candidates if name not in known]
    if unknown or not args.candidates:
        parser.error(f"unknown candidates {unknown}; choose from {sorted(known)}")
    if not 0 <= args.small < args.large or args.reps < 1 or args.warmup < 0 or args.concurrency < 1:
        parser.error("need 0 <= --small < --large, --reps >= 1, --warmup >= 0, --concurrency >= 1")
    return args


def _instructions(spec: dict[str, Any], out: Path) -> int:
    """Run one client_overhead worker under callgrind; the instructions it executed, in all."""
    script = Path(__file__).resolve().with_name("client_overhead.py")
    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    result = run_worker(script, spec, timeout=1800, prefix=prefix)
    if result["errors"] or result["truncated"]:
        raise BenchError(f"{spec['candidate']}: errors {result['kinds']} (truncated: {result['truncated']})")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no instruction total in {out}")


def _per_request(args: argparse.Namespace, name: str, url: str, workdir: Path) -> list[float]:
    counts: list[float] = []
    concurrency = args.concurrency if name in ASYNC_CANDIDATES else 1
    for _ in range(args.reps):
        totals = []
        for requests in (args.small, args.large):
            spec = {
                "candidate": name,
                "concurrency": concurrency,
                "url": url,
                "requests": requests,
                "warmup": args.warmup,
                "time_limit": 1500.0,
            }
            totals.append(_instructions(spec, workdir / f"{name}-{requests}.out"))
        counts.append((totals[1] - totals[0]) / (args.large - args.small))
    return counts


def main(argv: list[str] | None = None) -> int:
    """Count each candidate's instructions per request; print them and the ratios."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    terminate_on_sigterm()
    started = time.monotonic()
    per_request: dict[str, list[float]] = {}
    try:
        check_cpus()
        pin_self(0)
        print_header(
            "tether bench: client instructions", [sys.argv[0], *(sys.argv[1:] if argv is None else argv)], PACKAGES
        )
        print(
            f"settings: callgrind, {args.large} - {args.small} timed requests after {args.warmup} warm-up, "
            f"{args.concurrency} in flight (async), {args.reps} pair(s) of runs per candidate"
        )
        with nginx(args.port, cpu=SERVER_CPU) as server, tempfile.TemporaryDirectory() as tmp:
            print(f"upstream: {server.describe()}")
            for name in args.candidates:
                per_request[name] = _per_request(args, name, server.url + "/", Path(tmp))
                values = ", ".join(f"{value:,.0f}" for value in per_request[name])
                print(f"  {name}: {values} instructions/request", flush=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\ninstructions per request (median over pairs of runs)")
    labels = {**ASYNC_CANDIDATES, **SYNC_CANDIDATES}
    medians = {name: summarize(values).median for name, values in per_request.items()}
    for name, value in medians.items():
        print(f"  {labels[name]:<42} {value:>10,.0f}")
    print("\nratios (peer instructions / candidate instructions: 1.0 = free)")
    for top, bottom, label in PAIRS:
        if top in medians and bottom in medians:
            extra = medians[top] - medians[bottom]
            print(f"  {label:<38} {medians[bottom] / medians[top]:5.3f}  ({extra:+,.0f} instructions/request)")
    print(f"elapsed: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
