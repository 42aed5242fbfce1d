"""The two shells that carry out a sans-IO flow: one with asyncio, one blocking.

They are each other's twin and hold no decisions: ``Send`` goes to the transport (a transport error is
handed back to the flow as a value), ``Sleep`` goes to the clock, and the flow's return value is the result.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

from tether._clock import Clock
from tether.client._flow import Action, Outcome, Send
from tether.client._transport import AsyncTransport, SyncTransport
from tether.errors import TransportError

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
            else:
                await clock.asleep(action.seconds)  # type: ignore[union-attr]
                outcome = None
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
            else:
                clock.sleep(action.seconds)  # type: ignore[union-attr]
                outcome = None
            action = flow.send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()
