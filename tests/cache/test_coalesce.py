"""Single-flight on its own: one execution per key at a time, every caller gets the outcome, and neither a
cancelled caller nor an interrupted leader leaves the others waiting forever."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest

from tether.cache._coalesce import AsyncSingleFlight, SyncSingleFlight


async def test_concurrent_calls_share_one_execution() -> None:
    flights: AsyncSingleFlight[int] = AsyncSingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    calls = [asyncio.ensure_future(flights.run("k", work)) for _ in range(100)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    release.set()
    results = await asyncio.gather(*calls)
    assert runs == 1
    assert [value for value, _ in results] == [42] * 100
    assert sum(led for _, led in results) == 1
    assert len(flights) == 0
    assert await flights.run("k", work) == (42, True)  # after it ended, a call starts afresh
    assert runs == 2


async def test_different_keys_do_not_share() -> None:
    flights: AsyncSingleFlight[str] = AsyncSingleFlight()

    async def work(value: str) -> str:
        await asyncio.sleep(0)
        return value

    results = await asyncio.gather(flights.run("a", lambda: work("a")), flights.run("b", lambda: work("b")))
    assert list(results) == [("a", True), ("b", True)]


async def test_the_leaders_error_reaches_every_caller() -> None:
    flights: AsyncSingleFlight[int] = AsyncSingleFlight()

    async def work() -> int:
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream broke")

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)


async def test_a_cancelled_leader_does_not_strand_its_followers() -> None:
    flights: AsyncSingleFlight[str] = AsyncSingleFlight()
    release = asyncio.Event()
    runs = 0

    async def work() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "done"

    leader = asyncio.ensure_future(flights.run("k", work))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(5)]
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*followers)
    assert results == [("done", False)] * 5
    assert runs == 1  # the followers got the leader's execution, not a new one
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_the_work_is_cancelled_when_every_caller_has_gone() -> None:
    flights: AsyncSingleFlight[str] = AsyncSingleFlight()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    calls = [asyncio.ensure_future(flights.run("k", hang)) for _ in range(3)]
    await started.wait()
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    async with asyncio.timeout(5):
        await cancelled.wait()
    assert len(flights) == 0

    async def quick() -> str:
        return "fresh"

    assert await flights.run("k", quick) == ("fresh", True)  # a new call is not joined to the cancelled work


def wait_for_waiters(flights: SyncSingleFlight[Any], count: int) -> None:
    deadline = time.monotonic() + 5
    while flights.waiting("k") < count:
        assert time.monotonic() < deadline, "the followers never joined the flight"
        time.sleep(0.001)


def test_threads_share_one_execution() -> None:
    flights: SyncSingleFlight[int] = SyncSingleFlight()
    runs = 0
    entered = threading.Event()
    release = threading.Event()
    results: list[tuple[int, bool]] = []

    def work() -> int:
        nonlocal runs
        runs += 1
        entered.set()
        release.wait(5)
        return 7

    def call() -> None:
        results.append(flights.run("k", work))

    leader = threading.Thread(target=call)
    leader.start()
    entered.wait(5)
    followers = [threading.Thread(target=call) for _ in range(20)]
    for thread in followers:
        thread.start()
    wait_for_waiters(flights, 20)
    release.set()
    for thread in [leader, *followers]:
        thread.join(5)
    assert runs == 1
    assert sorted(results) == [(7, False)] * 20 + [(7, True)]


def test_threads_get_the_leaders_error() -> None:
    flights: SyncSingleFlight[int] = SyncSingleFlight()
    entered = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def work() -> int:
        entered.set()
        release.wait(5)
        raise RuntimeError("upstream broke")

    def call() -> None:
        try:
            flights.run("k", work)
        except RuntimeError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(5)]
    threads[0].start()
    entered.wait(5)
    for thread in threads[1:]:
        thread.start()
    wait_for_waiters(flights, 4)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 5


class Interrupted(BaseException):
    """Stands in for KeyboardInterrupt in the leader's thread."""


def test_an_interrupted_leader_hands_over_to_a_follower() -> None:
    flights: SyncSingleFlight[str] = SyncSingleFlight()
    entered = threading.Event()
    release = threading.Event()
    runs: list[str] = []
    results: list[tuple[str, bool]] = []

    def work() -> str:
        runs.append(threading.current_thread().name)
        if len(runs) == 1:
            entered.set()
            release.wait(5)
            raise Interrupted
        wait_for_waiters(flights, 2)  # the two other followers join the new flight
        return "second try"

    def lead() -> None:
        with contextlib.suppress(Interrupted):
            flights.run("k", work)

    def follow() -> None:
        results.append(flights.run("k", work))

    leader = threading.Thread(target=lead, name="leader")
    leader.start()
    entered.wait(5)
    followers = [threading.Thread(target=follow) for _ in range(3)]
    for thread in followers:
        thread.start()
    wait_for_waiters(flights, 3)
    release.set()
    for thread in [leader, *followers]:
        thread.join(5)
    assert not any(thread.is_alive() for thread in followers)
    assert len(runs) == 2  # one follower led the second execution
    assert sorted(results) == [("second try", False), ("second try", False), ("second try", True)]


def test_sync_followers_each_raise_a_copy_of_the_leaders_error() -> None:
    """Followers raise copies of the leader's exception (same type, message, attributes and cause), each its
    own object starting from the leader's traceback, so no thread's frames join another's traceback."""
    flights: SyncSingleFlight[int] = SyncSingleFlight()
    started = threading.Event()
    release = threading.Event()

    class Keyed(Exception):
        def __init__(self, message: str, *, code: int) -> None:  # keyword-only, like tether's errors
            super().__init__(message)
            self.code = code

    def look_up() -> int:
        raise KeyError("inner")

    def work() -> int:
        started.set()
        release.wait(5)
        try:
            return look_up()
        except KeyError as inner:
            raise Keyed("boom", code=7) from inner

    caught: list[BaseException] = []

    def call() -> None:
        try:
            flights.run("k", work)
        except Keyed as error:
            caught.append(error)

    leader = threading.Thread(target=call)
    leader.start()
    assert started.wait(5)
    followers = [threading.Thread(target=call) for _ in range(5)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 5
    while flights.waiting("k") < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join(5)
    assert len(caught) == 6
    assert len({id(error) for error in caught}) == 6
    for error in caught:
        assert isinstance(error, Keyed)
        assert (str(error), error.code, type(error.__cause__)) == ("boom", 7, KeyError)
        assert error.__traceback__ is not None
