"""The two shells that carry out a sans-IO flow: one with asyncio, one blocking.

They are each other's twin and hold no decisions: ``Send`` goes to the transport (a transport error is
handed back to the flow as a value), ``Sleep`` goes to the clock, ``WaitTurn`` waits on the bulkhead ticket (an
asyncio future, or a threading event), ``Consult`` runs a command on the shared state (``SharedStateUnavailable``
handed back as a value), and the flow's return value is the result.

Waiting for a ticket is bounded by the real clock, not the injected one: a turn comes when another call's request
ends, which no fake clock can make happen sooner.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import TypeVar

from tether._clock import Clock
from tether.client._flow import Action, Consult, Outcome, Send, Sleep, WaitTurn
from tether.client._transport import AsyncTransport, SyncTransport
from tether.errors import SharedStateUnavailable, TransportError

__all__ = ["drive_async", "drive_sync"]

T = TypeVar("T")


async def drive_async(flow: Generator[Action, Outcome, T], transport: AsyncTransport, clock: Clock) -> T:
    """Run ``flow`` to completion with asyncio I/O."""
    try:
        action = next(flow)
        while True:
            outcome: Outcome
            if type(action) is Send:
                try:
                    outcome = await transport.send(action.request, action.timeout)
                except TransportError as exc:
                    outcome = exc
            elif type(action) is Sleep:
                await clock.asleep(action.seconds)
                outcome = None
            elif type(action) is Consult:
                try:
                    outcome = await action.state.execute(action.command)  # the client checked it is the async state
                except SharedStateUnavailable as exc:
                    outcome = exc
            else:
                outcome = await _turn_async(action)  # type: ignore[arg-type]
            action = flow.send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


def drive_sync(flow: Generator[Action, Outcome, T], transport: SyncTransport, clock: Clock) -> T:
    """Run ``flow`` to completion with blocking I/O."""
    try:
        action = next(flow)
        while True:
            outcome: Outcome
            if type(action) is Send:
                try:
                    outcome = transport.send(action.request, action.timeout)
                except TransportError as exc:
                    outcome = exc
            elif type(action) is Sleep:
                clock.sleep(action.seconds)
                outcome = None
            elif type(action) is Consult:
                try:
                    outcome = action.state.execute(action.command)
                except SharedStateUnavailable as exc:
                    outcome = exc
            else:
                outcome = _turn_sync(action)  # type: ignore[arg-type]
            action = flow.send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def _turn_async(wait: WaitTurn) -> bool:
    """Whether the ticket was granted within the wait's timeout."""
    loop = asyncio.get_running_loop()
    turn: asyncio.Future[None] = loop.create_future()
    wait.ticket.arm(lambda: loop.call_soon_threadsafe(_resolve, turn))
    try:
        async with asyncio.timeout(wait.timeout):
            await turn
    except TimeoutError:
        return False
    return True


def _resolve(turn: asyncio.Future[None]) -> None:
    if not turn.done():
        turn.set_result(None)


def _turn_sync(wait: WaitTurn) -> bool:
    """Whether the ticket was granted within the wait's timeout."""
    turn = threading.Event()
    wait.ticket.arm(turn.set)
    return turn.wait(wait.timeout)
