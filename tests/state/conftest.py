"""Fixtures for the shared-state tests: the machine's Redis, private Redis servers, and servers that misbehave.

Integration tests use the Redis at 127.0.0.1:6379 (started here if it is installed but not running) under a key
prefix of their own, deleted afterwards, so they never see each other's keys or anyone else's.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis; started as a daemon if it is installed and not answering, else the test is skipped."""
    if _answers(REDIS_URL):
        return REDIS_URL
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("Redis is not running on 127.0.0.1:6379 and redis-server is not installed")
    subprocess.run(
        [server, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
        check=False,
        capture_output=True,
        timeout=10,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _answers(REDIS_URL):
            return REDIS_URL
        time.sleep(0.05)
    pytest.skip("Redis is not answering on 127.0.0.1:6379 and could not be started with redis-server --daemonize yes")


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    name = f"tether-test:{uuid.uuid4().hex}:"
    yield name
    delete_prefix(redis_url, name)


def free_port() -> int:
    """A loopback TCP port nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own on a free port, which the test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        server = shutil.which("redis-server") or "redis-server"
        self._process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not _answers(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (its data, scripts included, is gone)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def private_redis(redis_url: str) -> Iterator[PrivateRedis]:
    """A running redis-server of this test's own (see :class:`PrivateRedis`)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SilentServer:
    """Accepts connections and reads what is sent, answering ``reply`` to each read (``None``: never answers)."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.connections = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._sockets.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if self.reply is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(self.reply)

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._stopping.set()
        self._thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        for conn in self._sockets:
            conn.close()
        self._listener.close()


@pytest.fixture
def hanging_server() -> Iterator[SilentServer]:
    """A "Redis" that accepts connections and reads requests but never answers."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
