"""A stop is never lost: every long-running loop that sleeps on "an event or a timeout" ends when it
is cancelled, even when the event is set at the very moment of the cancellation.

In Python 3.11 ``asyncio.wait_for(event.wait(), t)`` returns normally when the event fires while the
task is being cancelled, swallowing the cancellation; a ``while True`` loop around it then sleeps again
and the service never stops (the notification tests hung that way about one run in four). The loops use
``asyncio.timeout`` instead, and ruff bans ``asyncio.wait_for`` outside the tests (pyproject, TID251).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.historian.writer import Historian
from services.reporter.notifications import Notifications
from shared.bus import MemoryBus
from tests.support.gateway import poll


async def _wait_for_cancel_race(wake: asyncio.Event, start: Callable[[], Awaitable[None]]) -> None:
    """Start the loop, wait until it sleeps on ``wake``, then set ``wake`` and cancel in the same
    step; the task must end cancelled (bounded in time)."""
    task = asyncio.create_task(start())
    await poll(lambda: bool(getattr(wake, "_waiters", None)))  # asleep on the event
    wake.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await task


def test_the_race_is_real_with_wait_for() -> None:
    """The hazard itself, so the tests below can fail: a cancellation at the moment the event fires
    is swallowed by ``asyncio.wait_for`` (Python 3.11) and the loop runs on."""

    async def scenario() -> str:
        wake = asyncio.Event()

        async def loop() -> None:
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), 60)  # the hazard shown
                except TimeoutError:
                    pass
                wake.clear()

        task = asyncio.create_task(loop())
        await poll(lambda: bool(getattr(wake, "_waiters", None)))
        wake.set()
        task.cancel()
        try:
            async with asyncio.timeout(1):
                await task
        except asyncio.CancelledError:
            return "stopped"
        except TimeoutError:
            task.cancel()  # the second cancellation lands
            await asyncio.gather(task, return_exceptions=True)
            return "cancellation lost"
        return "returned"

    got = asyncio.run(scenario())
    if sys.version_info < (3, 12):
        assert got == "cancellation lost"
    else:  # 3.12 rewrote wait_for on asyncio.timeout
        assert got == "stopped"


async def test_the_notification_delivery_loop_stops_when_woken_and_cancelled(tmp_path: Path) -> None:
    notify = Notifications(tmp_path, "http://unused")
    await _wait_for_cancel_race(notify._wake, lambda: notify.deliver(MemoryBus()))


async def test_the_report_schedule_loop_stops_when_woken_and_cancelled(tmp_path: Path) -> None:
    notify = Notifications(tmp_path, "http://unused")
    await _wait_for_cancel_race(notify.scheduled.wake, lambda: notify.scheduled.run(MemoryBus()))


async def test_the_historian_flush_loop_stops_when_woken_and_cancelled() -> None:
    historian = Historian(None, flush_seconds=60.0)
    await _wait_for_cancel_race(historian._wake, historian.run)
