"""Waiting for an event with a time limit, without losing a cancellation.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives as the awaited
future completes (fixed in 3.12): a hub told to stop would go on polling. ``asyncio.timeout``
does not have that race.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, seconds: float) -> None:
    """Return once ``event`` is set or after ``seconds``, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(seconds, 0)):
            await event.wait()
