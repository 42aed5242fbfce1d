"""Group commit: many concurrent writes share one transaction and one durable commit (one fsync).

Why our own: a durable commit costs one fsync (milliseconds on most disks) however little it writes, so a store that
commits each webhook on its own is capped at the disk's fsync rate, and one that commits on the event loop stalls
every other connection while the disk syncs. Here callers (request tasks with ``await commit.write(item)``, or plain
threads with ``commit.submit(item).result()``) hand their item to one writer thread. The writer takes *everything*
waiting, passes the batch to ``flush`` (which writes it in one transaction and commits durably), and only then
resolves each caller's future: with its own result when the commit succeeded, with the commit's exception for every
caller of the batch when it failed. No caller ever sees success for an item that is not committed, and no timer
delays a lone write: while the disk syncs one batch, the next one gathers.
Tasks of one event loop are woken with one ``call_soon_threadsafe`` per batch, not one each.

States: idle (no thread yet) → running (the thread is started by the first submit) → closing (``close()``: no
new items; what is queued is still flushed) → closed (the thread has exited).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "GroupCommitClosed"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitClosed(RuntimeError):
    """An item was submitted after :meth:`GroupCommit.close`."""


class _TaskWaiter(Generic[R]):
    """A task waiting in ``loop`` for its item's batch (settled from the writer thread via the loop)."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[R]) -> None:
        self.loop = loop
        self.future = future


def _settle(outcomes: list[tuple[asyncio.Future[R], R | None, BaseException | None]]) -> None:
    """Resolve the futures of one loop (runs in that loop)."""
    for future, result, error in outcomes:
        if future.done():  # its task was cancelled meanwhile; the row is stored, nothing was answered
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # R when error is None


class GroupCommit(Generic[T, R]):
    """A writer thread that flushes every waiting item in one call of ``flush`` (one transaction, one commit).

    ``flush(items)`` must write all items atomically and return one result per item, in order; when it raises,
    nothing of the batch may be committed, and every item's caller gets that exception. ``max_batch`` bounds one
    transaction. ``name`` names the thread (for ``py-spy``/debuggers).
    """

    __slots__ = ("_closing", "_flush", "_max_batch", "_name", "_pending", "_thread", "_wakeup")

    def __init__(self, flush: Callable[[list[T]], Sequence[R]], *, name: str, max_batch: int = 1000) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._flush = flush
        self._max_batch = max_batch
        self._name = name
        self._pending: list[tuple[T, Future[R] | _TaskWaiter[R]]] = []
        self._wakeup = threading.Condition(threading.Lock())
        self._closing = False
        self._thread: threading.Thread | None = None

    def submit(self, item: T) -> Future[R]:
        """Queue ``item`` (from any thread); the future resolves once its batch is committed, or failed.

        Raises :class:`GroupCommitClosed` after :meth:`close`.
        """
        future: Future[R] = Future()
        self._enqueue(item, future)
        return future

    async def write(self, item: T) -> R:
        """Queue ``item`` and wait, without blocking the event loop, until its batch is committed; its result.

        Raises the batch's exception when the commit failed, :class:`GroupCommitClosed` after :meth:`close`.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._enqueue(item, _TaskWaiter(loop, future))
        return await future

    def close(self) -> None:
        """Refuse new items, flush what is queued, and wait for the writer thread to exit."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _enqueue(self, item: T, waiter: Future[R] | _TaskWaiter[R]) -> None:
        with self._wakeup:
            if self._closing:
                raise GroupCommitClosed("this writer is closed")
            self._pending.append((item, waiter))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif len(self._pending) == 1:
                self._wakeup.notify()  # the writer may be waiting for work; a later item finds it awake

    def _take(self) -> list[tuple[T, Future[R] | _TaskWaiter[R]]] | None:
        with self._wakeup:
            while not self._pending:
                if self._closing:
                    return None
                self._wakeup.wait()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            # A thread's caller that gave up before its batch started (a cancelled future) is left out.
            live = [
                (item, waiter)
                for item, waiter in batch
                if isinstance(waiter, _TaskWaiter) or waiter.set_running_or_notify_cancel()
            ]
            if not live:
                continue
            results: Sequence[R | None]
            error: BaseException | None = None
            try:
                results = self._flush([item for item, _ in live])
            except BaseException as exc:  # every caller of the batch learns of the failure
                results, error = [None] * len(live), exc
            if len(results) != len(live):  # a broken flush: nobody may take this batch as committed
                results, error = [None] * len(live), RuntimeError(f"flush gave {len(results)} results for {len(live)}")
            self._resolve([waiter for _, waiter in live], results, error)

    @staticmethod
    def _resolve(
        waiters: list[Future[R] | _TaskWaiter[R]], results: Sequence[R | None], error: BaseException | None
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | None, BaseException | None]]] = {}
        for waiter, result in zip(waiters, results, strict=True):
            if isinstance(waiter, _TaskWaiter):
                by_loop.setdefault(waiter.loop, []).append((waiter.future, result, error))
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(result)  # type: ignore[arg-type]  # R when error is None
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting there any more
                loop.call_soon_threadsafe(_settle, outcomes)
