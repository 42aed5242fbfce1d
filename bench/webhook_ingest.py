"""Durable webhook ingest: signed 1 KB GitHub deliveries at ``tether serve`` (SQLite) beside a no-storage ceiling.

Two servers, each a fresh uvicorn process pinned to CPU 1, one at a time, started and stopped by this script
(by its own pid), with the same uvicorn settings (``log_level=warning``, so no access log):

- ``tether``: ``python -m tether.cli serve --config T --port P --log-level warning`` where ``T`` is a
  temporary ``tether.toml`` with one ``[webhooks.sources.gh]`` GitHub source and a fresh SQLite database per
  repetition; ``POST /webhooks/gh`` verifies ``X-Hub-Signature-256`` and persists the event (WAL,
  ``synchronous=FULL``) before it answers.
- ``bare``: a bare ASGI app (written to a temporary file, served by uvicorn) that reads the body, verifies
  ``X-Hub-Signature-256`` with ``hmac.compare_digest`` and answers 200 without storing anything: the ceiling
  for a Python ASGI server that does the same verification work.

Load: one client process pinned to CPU 0 (raw ``aiohttp.ClientSession``, ``--concurrency`` requests in
flight over as many keep-alive connections). Every delivery has a distinct ``X-GitHub-Delivery`` id and a
~1 KB JSON body, all signed before timing starts. A warm-up of ``--warmup`` deliveries opens the connections;
then ``--deliveries`` deliveries are timed. Every response body is read and every status must be 200; anything
else (or a connection error) is counted, printed, and invalidates the run. Measured: requests/s over the timed
deliveries and the p50/p90/p99 latency of one delivery (send to body read); also the server's CPU time per
delivery (from ``/proc``), which shows whether the ceiling is server-bound (server CPU near 1 core busy).

Durability (``tether``): after the timed deliveries the server is killed with SIGKILL (no graceful shutdown,
no chance to flush anything late), then the database is opened read-only with the stdlib ``sqlite3`` and the
stored events counted: they must equal the deliveries answered 200 (warm-up included), every one of them
distinct. Any difference invalidates the run.

Prints per repetition lines, then medians [min-max] of requests/s and latency percentiles, the ratio of median
requests/s tether / bare, and the verdict against the target (>= 0.6 of the no-storage ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    CLIENT_CPU,
    METHOD,
    SERVER_CPU,
    BenchError,
    QuietGate,
    Summary,
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
    worker_result,
)

CANDIDATES = {
    "bare": "bare ASGI app: HMAC verify, no storage",
    "tether": "tether serve: verify + SQLite inbox",
}
PACKAGES = ["tether", "uvicorn", "starlette", "httptools", "uvloop", "aiohttp"]
SECRET = "bench-webhook-secret"  # noqa: S105 a benchmark-only HMAC key
SOURCE = "gh"
PATH = f"/webhooks/{SOURCE}"
BODY_SIZE = 1024
TARGET = 0.6

BARE_APP = '''\
"""A bare ASGI app: read the body, verify X-Hub-Signature-256, answer 200; nothing stored."""

import hashlib
import hmac

SECRET = __SECRET__.encode()
OK = b'{"status":"accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(OK)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    signature = b""
    for name, value in scope["headers"]:
        if name == b"x-hub-signature-256":
            signature = value
    expected = b"sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
    if hmac.compare_digest(signature, expected):
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": OK})
    else:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})
'''.replace("__SECRET__", repr(SECRET))


# --------------------------------------------------------------------------- deliveries


def signed_delivery(index: int, run: str) -> tuple[bytes, dict[str, str]]:
    """A ~1 KB JSON GitHub delivery with a distinct id, and its headers (signed like GitHub does)."""
    delivery = f"{run}-{index:07d}"
    payload: dict[str, Any] = {
        "action": "opened",
        "delivery": delivery,
        "number": index,
        "repository": {"full_name": "example/widgets", "private": False},
        "sender": {"login": "octocat", "id": 1},
        "pad": "",
    }
    base = len(json.dumps(payload, separators=(",", ":")))
    payload["pad"] = "x" * max(0, BODY_SIZE - base)
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "pull_request",
        "Content-Type": "application/json",
    }
    return body, headers


# --------------------------------------------------------------------------- worker side


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    url, concurrency = spec["url"] + PATH, spec["concurrency"]
    warm = [signed_delivery(i, spec["run"] + "w") for i in range(spec["warmup"])]
    timed = [signed_delivery(i, spec["run"]) for i in range(spec["deliveries"])]
    errors: Counter[str] = Counter()
    accepted = [0]
    latencies: list[float] = []
    deadline = time.monotonic() + spec["time_limit"]

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def drive(items: list[tuple[bytes, dict[str, str]]], record: bool) -> None:
            position = [0]

            async def lane() -> None:
                while position[0] < len(items):
                    if time.monotonic() > deadline:
                        errors["time limit reached"] += 1
                        return
                    body, headers = items[position[0]]
                    position[0] += 1
                    started = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            status = response.status
                            await response.read()
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        errors[type(exc).__name__] += 1
                        continue
                    if record:
                        latencies.append(time.perf_counter() - started)
                    if status == 200:
                        accepted[0] += 1
                    else:
                        errors[f"status {status}"] += 1

            await asyncio.gather(*(lane() for _ in range(concurrency)))

        await drive(warm, record=False)
        cpu_before = process_cpu_seconds(spec["server_pid"])
        started = time.perf_counter()
        await drive(timed, record=True)
        wall = time.perf_counter() - started
        server_cpu = process_cpu_seconds(spec["server_pid"]) - cpu_before

    latencies.sort()
    return {
        "wall": wall,
        "rps": len(latencies) / wall if wall > 0 else 0.0,
        "p50": _percentile(latencies, 0.50) if latencies else float("nan"),
        "p90": _percentile(latencies, 0.90) if latencies else float("nan"),
        "p99": _percentile(latencies, 0.99) if latencies else float("nan"),
        "accepted": accepted[0],
        "timed": len(latencies),
        "errors": dict(errors),
        "server_cpu": server_cpu,
        "body_bytes": len(timed[0][0]) if timed else 0,
    }


def worker(spec: dict[str, Any]) -> int:
    """Drive one server (in this fresh, pinned process) and report to the parent."""
    preload(["aiohttp"])
    worker_result(asyncio.run(_load(spec)))
    return 0


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerSlot:
    """The server currently running (or none): what the noise accounting subtracts."""

    proc: subprocess.Popen[bytes] | None = None

    def cpu_seconds(self) -> float:
        """CPU time the current server process has used so far (0 when none runs)."""
        return process_cpu_seconds(self.proc.pid) if self.proc is not None else 0.0


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 loopback, our own server
                response.read()
                return
        except urllib.error.HTTPError:
            return  # it answers (the bare app answers 401 to an unsigned GET)
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise BenchError(f"server did not answer {url} within {timeout:g} s")


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    for each in (sig, signal.SIGKILL):
        if proc.poll() is not None:
            return
        proc.send_signal(each)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


@contextlib.contextmanager
def server(name: str, slot: ServerSlot) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """Start candidate ``name``'s server pinned to the server CPU in a fresh temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix=f"tether-bench-webhook-{name}-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database = workdir / "inbox.db"
    if name == "tether":
        config = workdir / "tether.toml"
        config.write_text(
            f'[gateway]\ndatabase = "{database}"\n\n'
            f'[webhooks.sources.{SOURCE}]\nscheme = "github"\nsecret = "{SECRET}"\n'
        )
        command = [sys.executable, "-m", "tether.cli", "serve", "--config", str(config)]
        command += ["--port", str(port), "--log-level", "warning"]
        ready = f"{url}/healthz"
    else:
        (workdir / "bare_app.py").write_text(BARE_APP)
        command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(workdir)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        ready = url
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), *command], stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=workdir
        )
    slot.proc = proc
    try:
        _wait_ready(proc, ready, log)
        yield proc, url, database
    finally:
        _stop(proc, signal.SIGTERM)
        slot.proc = None
        shutil.rmtree(workdir, ignore_errors=True)


def _stored(database: Path) -> tuple[int, int]:
    """(rows, distinct delivery ids) for the source in the inbox, read with a read-only connection."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows, distinct = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT provider_event_id) FROM webhook_events WHERE source = ?", (SOURCE,)
        ).fetchone()
    finally:
        connection.close()
    return int(rows), int(distinct)


# --------------------------------------------------------------------------- parent side


@dataclass
class Rep:
    """One candidate's result in one repetition."""

    result: dict[str, Any]
    stored: int | None


def _run_one(script: Path, spec: dict[str, Any], slot: ServerSlot, timeout: float) -> tuple[Rep, list[str]]:
    name = spec["candidate"]
    problems: list[str] = []
    stored: int | None = None
    with server(name, slot) as (proc, url, database):
        if sorted(os.sched_getaffinity(proc.pid)) != [SERVER_CPU]:
            raise BenchError(f"{name}: server not pinned to CPU {SERVER_CPU}")
        result = run_worker(script, {**spec, "url": url, "server_pid": proc.pid}, timeout=timeout, server=slot)
        if name == "tether":
            _stop(proc, signal.SIGKILL)  # no graceful shutdown: what was acknowledged must already be on disk
            stored, distinct = _stored(database)
            if stored != result["accepted"] or distinct != stored:
                problems.append(
                    f"tether: {result['accepted']} deliveries answered 200 but {stored} stored "
                    f"({distinct} distinct): not every accepted event is durable"
                )
    if result["errors"]:
        problems.append(f"{name}: errors {result['errors']}")
    if result["timed"] + sum(result["errors"].values()) < spec["deliveries"]:
        problems.append(f"{name}: only {result['timed']} of {spec['deliveries']} deliveries completed")
    return Rep(result, stored), problems


def _describe(name: str, rep: Rep) -> str:
    r = rep.result
    durable = "" if rep.stored is None else f"; stored {rep.stored}/{r['accepted']} accepted (after SIGKILL)"
    return (
        f"{name}: {r['rps']:,.0f} req/s ({r['timed']} in {r['wall']:.2f} s); latency ms p50 {1000 * r['p50']:.1f} "
        f"p90 {1000 * r['p90']:.1f} p99 {1000 * r['p99']:.1f}; "
        f"server CPU {1e6 * r['server_cpu'] / max(1, r['timed']):.0f} us/delivery "
        f"({r['server_cpu'] / r['wall']:.2f} core busy); errors {sum(r['errors'].values())}"
        f"{durable}{noise_note(r['foreign_cores'])}"
    )


def _report(args: argparse.Namespace, reps: dict[str, list[Rep]]) -> None:
    print(f"\n{args.deliveries} signed ~1 KB deliveries per run, {args.concurrency} in flight, median [min-max]:")
    rps: dict[str, Summary] = {}
    for name, label in CANDIDATES.items():
        if not reps.get(name):
            continue
        results = [rep.result for rep in reps[name]]
        rps[name] = summarize([r["rps"] for r in results])
        print(f"  {label:<40} req/s {fmt_range(rps[name], ',.0f')}")
        line = "  ".join(
            f"{p} {fmt_range(summarize([1000 * r[p] for r in results]), ',.1f')}" for p in ("p50", "p90", "p99")
        )
        cpu = summarize([1e6 * r["server_cpu"] / max(1, r["timed"]) for r in results])
        busy = summarize([r["server_cpu"] / r["wall"] for r in results])
        print(f"  {'':<40} latency ms {line}")
        print(f"  {'':<40} server CPU us/delivery {fmt_range(cpu, ',.0f')}, cores busy {fmt_range(busy, '.2f')}")
    if reps.get("tether"):
        stored = sum(rep.stored or 0 for rep in reps["tether"])
        accepted = sum(rep.result["accepted"] for rep in reps["tether"])
        print(f"  durability: {stored} events stored of {accepted} answered 200, over {len(reps['tether'])} runs")
    if "tether" in rps and "bare" in rps:
        share = ratio(rps["tether"], rps["bare"])
        verdict = "MET" if share >= TARGET else f"MISSED by {TARGET - share:.2f} ({share / TARGET:.0%} of the target)"
        print(f"  ratio tether / bare (median req/s): {share:.2f}; target >= {TARGET}: {verdict}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="webhook_ingest.py",
        description=__doc__,
        epilog=METHOD + "\nHere the servers are uvicorn processes pinned to CPU 1 (one per candidate per repetition), "
        "not nginx: the peer is a bare ASGI app on the same server stack.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--deliveries", type=int, default=6000, help="timed deliveries per run (default 6000)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up deliveries per run (default 300)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    add_common_options(
        parser, CANDIDATES, reps=5, quick="smoke test in < 30 s: 2 reps of 1000 deliveries, no quiet wait"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.deliveries, args.warmup, args.quiet_wait = 2, 1000, 100, 0.0
    if not 1 <= args.concurrency <= 1000 or not 1 <= args.deliveries <= 1_000_000 or args.warmup < 1 or args.reps < 1:
        parser.error("--concurrency in 1..1000, --deliveries in 1..1000000, --warmup and --reps >= 1")
    args.candidates = chosen_candidates(parser, args.candidates, CANDIDATES)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden ``--worker``, one client run)."""
    given = sys.argv[1:] if argv is None else argv
    args = parse_args(given)
    if args.worker:
        return worker(json.loads(args.worker))
    terminate_on_sigterm()
    started = time.monotonic()
    script = Path(__file__).resolve()
    slot = ServerSlot()
    gate = QuietGate(slot, args.quiet_wait)
    try:
        check_cpus()
        pin_self(CLIENT_CPU)
        print_header("tether bench: durable webhook ingest", [sys.argv[0], *given], PACKAGES)
        print(
            f"settings: {args.deliveries} timed deliveries after {args.warmup} warm-up, {args.concurrency} in flight "
            f"(aiohttp, one connection each), ~{BODY_SIZE} B JSON bodies signed X-Hub-Signature-256, distinct "
            f"X-GitHub-Delivery ids; {args.reps} repetitions; one fresh server process (and fresh SQLite "
            "database) per candidate per repetition; tether's stored events counted after SIGKILL"
            + (" [--quick: smoke test, not a measurement]" * args.quick),
            flush=True,
        )
        time_limit = 60 + args.deliveries / 500
        base = {
            "deliveries": args.deliveries,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "time_limit": time_limit,
        }
        counter = iter(range(1_000_000))

        def run_one(spec: dict[str, Any]) -> tuple[Rep, list[str]]:
            spec["run"] = f"r{next(counter)}-{spec['candidate']}"
            return _run_one(script, spec, slot, time_limit + 60)

        reps, problems = run_interleaved(
            args.reps, args.candidates, gate, base=base, run_one=run_one, describe=_describe
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _report(args, reps)
    return finish(gate, problems, started)


if __name__ == "__main__":
    raise SystemExit(main())
