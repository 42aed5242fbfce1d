"""Shared machinery for the scripts in ``bench/``, following ``shared/BENCHMARKING.md``.

- :func:`nginx` starts a one-worker nginx (pinned to the server CPU) from a generated config in a private
  temporary directory, waits until it answers, and stops it by its own pid.
- :func:`tether_upstream` does the same for tether's scriptable upstream (``python -m tether.testing.upstream``),
  for benchmarks about behaviour (what reaches the upstream) rather than throughput ceilings.
- :func:`run_worker` runs one candidate's measurement in a fresh interpreter pinned with ``taskset`` to the
  client CPU and returns the JSON it prints; :func:`worker_result` is the worker's side of that protocol.
- :func:`add_common_options` / :func:`chosen_candidates` give every script its shared options (``--reps``,
  ``--candidates``, ``--quick``, ``--quiet-wait`` and the hidden ``--worker``).
- :func:`run_interleaved` runs the repetition loop (repetitions outside, rotated candidates inside, each after
  the :class:`QuietGate`) and :func:`finish` prints the closing lines and gives the exit status.
- :func:`summarize` / :func:`ratio` give the median with min-max and the ratio of medians.
- :func:`print_header` prints the command line, versions, load and CPU layout every report starts with.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

__all__ = [
    "CLIENT_CPU",
    "METHOD",
    "NOISE_LIMIT",
    "OK_BODY",
    "SERVER_CPU",
    "BenchError",
    "CpuMeasured",
    "CpuWatch",
    "Nginx",
    "QuietGate",
    "Summary",
    "TetherUpstream",
    "add_common_options",
    "check_cpus",
    "chosen_candidates",
    "finish",
    "fmt_range",
    "nginx",
    "noise_note",
    "pin_self",
    "preload",
    "print_header",
    "process_cpu_seconds",
    "ratio",
    "rotated",
    "run_interleaved",
    "run_worker",
    "summarize",
    "terminate_on_sigterm",
    "tether_upstream",
    "worker_result",
]

SERVER_CPU = 1
"""nginx (master and worker) runs here."""
CLIENT_CPU = 0
"""Every client / load-generator process (and the orchestrating parent) runs here."""

OK_BODY = b'{"id":1,"name":"widget","price":9.99,"tags":["a","b"],"ok":true}'
"""The fixed JSON body of shared/BENCHMARKING.md's nginx config (the whole response is ~200 bytes)."""

METHOD = """\
method (shared/BENCHMARKING.md): loopback only (127.0.0.1); the script starts its own nginx (one worker,
pinned with taskset to CPU 1) and stops it by its own pid; every client runs in a fresh Python process
pinned to CPU 0 (the parent pins itself there too), one process per candidate per repetition; repetitions
are the outer loop and candidates the inner one (interleaved; the starting candidate rotates each
repetition); every worker imports all candidates' libraries first (same process image for all, see
_harness.preload); each client warms up (opens its pool's connections) before timing where timing matters;
every body is read, every status checked and every error counted and printed; every loop is bounded in
count and in time. Nothing else may run on this machine meanwhile (2 cores, one each for server and
client): before each measurement the script waits (within --quiet-wait seconds in all) until other
processes are idle, and flags every measurement during which they used more than 0.1 core."""

_RESULT_PREFIX = "BENCH-RESULT "
T = TypeVar("T")
R = TypeVar("R")


class BenchError(RuntimeError):
    """The benchmark cannot run or produced an invalid measurement."""


# --------------------------------------------------------------------------- CPUs and signals


def check_cpus() -> None:
    """Fail unless this process may use both the client CPU and the server CPU."""
    allowed = os.sched_getaffinity(0)
    if not {CLIENT_CPU, SERVER_CPU} <= allowed:
        raise BenchError(f"need CPUs {CLIENT_CPU} and {SERVER_CPU}; this process may use {sorted(allowed)}")
    if shutil.which("taskset") is None:
        raise BenchError("taskset (util-linux) is required to pin processes")


def pin_self(cpu: int = CLIENT_CPU) -> None:
    """Pin the calling process to ``cpu`` (what ``taskset -c cpu`` does to a new one)."""
    os.sched_setaffinity(0, {cpu})


def taskset(cpu: int) -> list[str]:
    """The command prefix that runs a program pinned to ``cpu``."""
    return ["taskset", "-c", str(cpu)]


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so ``finally`` blocks (which stop our servers) still run."""

    def _exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


# --------------------------------------------------------------------------- nginx


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def nginx_config(workdir: Path, port: int, *, status: int, body: bytes, access_log: Path | None) -> str:
    """shared/BENCHMARKING.md's config, with the pid file, temp paths and optional access log in ``workdir``."""
    logging = (
        "access_log off;" if access_log is None else f"log_format counted '$status'; access_log {access_log} counted;"
    )
    return f"""\
worker_processes 1; daemon off; pid {workdir}/nginx.pid; error_log stderr;
events {{ worker_connections 4096; }}
http {{ {logging} keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path {workdir}/body;
  server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json;
    return {status} '{body.decode()}'; }} }} }}
"""


class CpuMeasured(Protocol):
    """A server whose CPU time the noise accounting subtracts (:class:`Nginx`, :class:`TetherUpstream`)."""

    def cpu_seconds(self) -> float:
        """CPU time (user + system) its processes have used so far."""
        ...


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            # field 4 (after the parenthesised command name) is the parent pid
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Nginx:
    """A running nginx started by :func:`nginx`."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    access_log: Path | None
    version: str

    @property
    def pid(self) -> int:
        """The master process's pid."""
        return self.proc.pid

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def affinity(self) -> dict[int, list[int]]:
        """The CPUs each of its processes (master and workers) may use."""
        return {pid: sorted(os.sched_getaffinity(pid)) for pid in [self.pid, *_children(self.pid)]}

    def cpu_seconds(self) -> float:
        """CPU time (user + system) its processes have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [self.pid, *_children(self.pid)]:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / ticks

    def logged(self) -> list[str]:
        """The access log's lines so far (one status per request received)."""
        if self.access_log is None:
            raise BenchError("this nginx was started without an access log")
        return self.access_log.read_text().splitlines()

    def describe(self) -> str:
        """One line for the report."""
        cpus = ", ".join(f"pid {pid}: CPU {','.join(map(str, c))}" for pid, c in self.affinity().items())
        log = "access log on (counts requests)" if self.access_log else "access log off"
        return f"{self.version} on {self.url}, 1 worker, {log}; {cpus}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it by its own pid: graceful quit, then terminate, then kill (each bounded in time)."""
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def nginx(
    port: int,
    *,
    status: int = 200,
    body: bytes = OK_BODY,
    access_log: bool = False,
    cpu: int = SERVER_CPU,
    start_timeout: float = 10.0,
) -> Iterator[Nginx]:
    """Run nginx answering ``status`` with ``body`` to everything on 127.0.0.1:``port``, pinned to ``cpu``."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        raise BenchError("nginx not found: apt-get update && apt-get install -y nginx-light")
    if _port_answers(port):
        raise BenchError(f"127.0.0.1:{port} already answers: another server (or benchmark) is running there")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    version = version.removeprefix("nginx version: ")
    workdir = Path(tempfile.mkdtemp(prefix="tether-bench-nginx-"))
    log_path = workdir / "access.log" if access_log else None
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(workdir, port, status=status, body=body, access_log=log_path))
    if log_path is not None:
        log_path.touch()
        log_path.chmod(0o666)  # workers may run as another user when we are root
    command = [*taskset(cpu), binary, "-p", str(workdir), "-e", "stderr", "-c", str(conf)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Nginx(proc, port, workdir, log_path, version)
    try:
        stop_at = time.monotonic() + start_timeout
        while not _port_answers(port):
            if proc.poll() is not None:
                error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise BenchError(f"nginx exited with {proc.returncode}: {error.strip()}")
            if time.monotonic() > stop_at:
                raise BenchError(f"nginx did not answer on port {port} within {start_timeout:g} s")
            time.sleep(0.05)
        for pid, cpus in server.affinity().items():
            if cpus != [cpu]:
                raise BenchError(f"nginx process {pid} may run on CPUs {cpus}, expected only {cpu}")
        yield server
    finally:
        server.stop()


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used so far; 0 if it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


@dataclass
class TetherUpstream:
    """A running ``python -m tether.testing.upstream`` started by :func:`tether_upstream`."""

    proc: subprocess.Popen[str]
    url: str

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) its process (all threads) has used so far."""
        return process_cpu_seconds(self.pid)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call its admin API (``/__upstream__/...``); the decoded JSON answer, or ``None`` for 204.

        A failed call (no answer, or a status other than 2xx) raises :class:`BenchError`.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
            f"{self.url}/__upstream__/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                text = answer.read()
        except urllib.error.HTTPError as exc:
            raise BenchError(f"upstream admin {method} {path} answered {exc.code}: {exc.read()[:200]!r}") from exc
        except OSError as exc:
            raise BenchError(f"upstream admin {method} {path} failed: {exc}") from exc
        return json.loads(text) if text else None

    def count(self, path: str) -> int:
        """How many requests for ``path`` it has received."""
        return int(self.admin("GET", f"count?path={urllib.parse.quote(path)}")["count"])

    def describe(self) -> str:
        """One line for the report."""
        cpus = ",".join(map(str, sorted(os.sched_getaffinity(self.pid))))
        return f"tether.testing.upstream (pid {self.pid}, CPU {cpus}) on {self.url}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it by its own pid: SIGTERM (it exits cleanly), then SIGKILL, each bounded in time."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)


@contextlib.contextmanager
def tether_upstream(
    routes: list[dict[str, Any]], *, port: int = 0, cpu: int = SERVER_CPU, start_timeout: float = 10.0
) -> Iterator[TetherUpstream]:
    """Run tether's scriptable upstream with ``routes`` (admin API format) on 127.0.0.1, pinned to ``cpu``."""
    workdir = Path(tempfile.mkdtemp(prefix="tether-bench-upstream-"))
    routes_file = workdir / "routes.json"
    routes_file.write_text(json.dumps(routes))
    command = [
        *taskset(cpu),
        sys.executable,
        "-m",
        "tether.testing.upstream",
        "--port",
        str(port),
        "--routes",
        str(routes_file),
    ]
    with (workdir / "stderr.txt").open("w") as errors:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True)
    server: TetherUpstream | None = None
    try:
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline() if proc.stdout else ""))
        reader.start()
        reader.join(start_timeout)
        line = ready[0].strip() if ready else ""
        if not line.startswith("listening on "):
            error = (workdir / "stderr.txt").read_text() if proc.poll() is not None else ""
            raise BenchError(f"tether's upstream did not start within {start_timeout:g} s: {line or error.strip()}")
        server = TetherUpstream(proc, line.removeprefix("listening on "))
        if sorted(os.sched_getaffinity(proc.pid)) != [cpu]:
            raise BenchError(f"tether's upstream may run on CPUs {sorted(os.sched_getaffinity(proc.pid))}")
        yield server
    finally:
        (server or TetherUpstream(proc, "")).stop()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- noise from other processes


def _busy_seconds() -> float:
    """CPU time (user + nice + system, all CPUs) the whole machine has used since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / os.sysconf("SC_CLK_TCK")


def _own_seconds(server: CpuMeasured | None) -> float:
    """CPU time used by this process, its reaped children (the workers) and the running ``server``."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total + (server.cpu_seconds() if server is not None else 0.0)


@dataclass
class CpuWatch:
    """Estimates how much CPU *other* processes used while we measured (they make figures unreliable).

    Machine-wide busy time from ``/proc/stat`` minus the time our own processes used (this parent, its
    workers, our nginx); accurate to a few clock ticks (10 ms each).
    """

    server: CpuMeasured | None = None
    _busy: float = 0.0
    _own: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        """Begin a window."""
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(self.server), time.monotonic()

    def foreign_cores(self) -> float:
        """Average number of cores other processes kept busy since :meth:`start`."""
        wall = time.monotonic() - self._wall
        foreign = (_busy_seconds() - self._busy) - (_own_seconds(self.server) - self._own)
        return max(0.0, foreign / wall) if wall > 0 else 0.0


NOISE_LIMIT = 0.10
"""Above this many cores used by other processes during a measurement, the script flags it as unreliable."""


@dataclass
class QuietGate:
    """Before each measurement, wait (within a total ``budget`` of seconds) until other processes are idle.

    A probe watches the machine for ``probe`` seconds; while other processes keep more than
    :data:`NOISE_LIMIT` cores busy it waits and probes again. Once the budget is spent it stops waiting;
    measurements are still flagged afterwards (see :class:`CpuWatch`).
    """

    server: CpuMeasured | None
    budget: float
    probe: float = 0.5
    waited: float = 0.0

    def wait(self) -> None:
        """Return once the machine is quiet, or at once if the waiting budget is spent."""
        while self.waited < self.budget:
            watch = CpuWatch(self.server)
            watch.start()
            time.sleep(self.probe)
            self.waited += self.probe
            if watch.foreign_cores() <= NOISE_LIMIT:
                return


def noise_note(cores: float) -> str:
    """A remark for a measurement during which other processes used ``cores`` on average ('' if quiet)."""
    return f" [other processes busy {cores:.2f} cores!]" if cores > NOISE_LIMIT else ""


# --------------------------------------------------------------------------- one process per candidate


def run_worker(
    script: Path,
    spec: dict[str, Any],
    *,
    timeout: float,
    server: CpuMeasured | None = None,
    cpu: int = CLIENT_CPU,
    prefix: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``script --worker SPEC`` in a fresh interpreter pinned to ``cpu``; return the JSON it reports.

    ``prefix`` runs the interpreter under another program (e.g. ``valgrind --tool=callgrind ...``).

    The worker must print its result with :func:`worker_result`. The process is killed (by its own pid,
    which ``subprocess.run`` holds) if it outlives ``timeout`` seconds. The result gains ``foreign_cores``:
    the CPU other processes (not ours, not ``server``) used meanwhile, see :class:`CpuWatch`.
    """
    command = [*taskset(cpu), *prefix, sys.executable, str(script), "--worker", json.dumps(spec)]
    watch = CpuWatch(server)
    watch.start()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"worker {spec} did not finish within {timeout:g} s") from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"worker {spec} exited with {done.returncode} and no result:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(_RESULT_PREFIX))
    result["foreign_cores"] = watch.foreign_cores()
    if result.get("affinity") != [cpu]:
        raise BenchError(f"worker ran on CPUs {result.get('affinity')}, expected only {cpu}")
    return result


def worker_result(result: dict[str, Any]) -> None:
    """Report a worker's result (with its CPU affinity, which :func:`run_worker` checks) to the parent."""
    result["affinity"] = sorted(os.sched_getaffinity(0))
    print(_RESULT_PREFIX + json.dumps(result), flush=True)


def preload(modules: Sequence[str]) -> None:
    """Import every candidate's libraries in every worker, so all candidates run in the same process image.

    Measured here: a process that had imported only aiohttp spent ~13 % more CPU per request than the same
    code in a process that had also imported httpx or tether (2 minor page faults per request against 0:
    with a small heap the allocator keeps handing memory back to the OS and faulting it in again).
    """
    for module in modules:
        importlib.import_module(module)


def rotated(items: Sequence[T], rep: int) -> list[T]:
    """``items`` starting at a different one each repetition, so no candidate always runs first."""
    shift = rep % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def run_interleaved(
    reps: int,
    candidates: Sequence[str],
    gate: QuietGate,
    *,
    base: Mapping[str, Any],
    run_one: Callable[[dict[str, Any]], tuple[R, list[str]]],
    describe: Callable[[str, R], str],
) -> tuple[dict[str, list[R]], list[str]]:
    """Repetitions outside, candidates inside (:func:`rotated`): each candidate's results, and the problems.

    Each run waits at ``gate``, then ``run_one`` measures the spec ``{"candidate": name, **base}`` (usually
    through :func:`run_worker`) and lists what invalidates that measurement; ``describe`` gives its line of the
    report. A run that raises :class:`BenchError` is printed as ``FAILED`` and its error joins the problems.
    """
    results: dict[str, list[R]] = {name: [] for name in candidates}
    problems: list[str] = []
    for rep in range(reps):
        print(f"rep {rep + 1}/{reps}:")
        for name in rotated(candidates, rep):
            gate.wait()
            try:
                one, found = run_one({"candidate": name, **base})
            except BenchError as exc:
                problems.append(str(exc))
                print(f"  {name}: FAILED")
                continue
            problems += found
            results[name].append(one)
            print("  " + describe(name, one), flush=True)
    return results, problems


def finish(gate: QuietGate, problems: Sequence[str], started: float) -> int:
    """Print the closing lines (time spent waiting for quiet, every problem, the elapsed time); the exit status."""
    print(f"waited {gate.waited:.0f} s (of --quiet-wait {gate.budget:g}) for other processes to go idle")
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"elapsed: {time.monotonic() - started:.0f} s")
    if problems:
        print("INVALID RUN: see the failures above")
        return 1
    return 0


# --------------------------------------------------------------------------- the command line


def add_common_options(
    parser: argparse.ArgumentParser, candidates: Collection[str], *, reps: int, quick: str, quiet_wait: float = 30.0
) -> None:
    """Add the options every script shares: ``--reps``, ``--candidates``, ``--quick``, ``--quiet-wait``, ``--worker``.

    ``quick`` is the help of ``--quick`` (what the script's smoke test does; the script applies it after parsing).
    ``--candidates`` stays a comma-separated string (default: all of ``candidates``) for :func:`chosen_candidates`.
    """
    parser.add_argument("--reps", type=int, default=reps, help=f"repetitions, each a fresh process (default {reps})")
    parser.add_argument("--candidates", default=",".join(candidates), help="subset to run (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=quiet_wait,
        help="total seconds to spend waiting for other processes to go idle before measurements "
        f"(default {quiet_wait:g})",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def chosen_candidates(parser: argparse.ArgumentParser, text: str, known: Collection[str]) -> list[str]:
    """The candidates ``--candidates`` names (comma-separated), in its order; a usage error for an unknown one."""
    chosen = [name for name in text.split(",") if name]
    if unknown := set(chosen) - set(known):
        parser.error(f"unknown candidates {sorted(unknown)}")
    return chosen


# --------------------------------------------------------------------------- statistics and reporting


@dataclass(frozen=True)
class Summary:
    """The median of some measurements, with their range."""

    median: float
    low: float
    high: float
    count: int


def summarize(values: Sequence[float]) -> Summary:
    """Median, min and max of ``values`` (at least one)."""
    if not values:
        raise BenchError("no measurements to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def ratio(numerator: Summary, denominator: Summary) -> float:
    """The ratio of the medians."""
    return numerator.median / denominator.median if denominator.median else float("nan")


def fmt_range(summary: Summary, fmt: str = ",.0f") -> str:
    """``median [min-max] (n=count)``."""
    return f"{summary.median:{fmt}} [{summary.low:{fmt}}-{summary.high:{fmt}}] (n={summary.count})"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def print_header(title: str, argv: Sequence[str], packages: Sequence[str]) -> None:
    """Print what every report starts with: the command line, versions, the machine and its load."""
    print(f"== {title}")
    print("command: " + shlex.join([sys.executable, *argv]))
    print(f"python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}")
    print("versions: " + ", ".join(f"{name} {_version(name)}" for name in packages))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}); load average {load}")
    print(f"pinning: server on CPU {SERVER_CPU}, clients (and this parent) on CPU {CLIENT_CPU}")
    sys.stdout.flush()
