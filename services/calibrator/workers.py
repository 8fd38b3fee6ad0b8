"""Bounded calibration workers: at most ``CALIBRATION_WORKERS`` calibrations run at once (issue 17).

A calibration is mostly CPU work in a thread (validation, forests, autoencoder, ONNX checks); many at
once only share the cores (and Python's GIL) and each takes as much longer, while the service's own
event loop competes with them. So :class:`WorkerPool` admits calibrations first come, first served up to
its size; the others wait, each asset CALIBRATING with the text "Waiting for a calibration worker:
position p in the queue (n of n workers busy)" (phase ``waiting``), published again whenever its
position moves. Commands other than ``cmd/calibrate`` are not affected: the waiting happens in the
calibration's own task, never in a handler.

Default size: the number of CPUs of the machine (``os.cpu_count()``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog

from shared.bus import Bus
from shared.messages import AssetState, CalibrationProgress, CalibrationRequest, StateChange, utcnow

from .job import PHASES, Calibration, run_calibration

log = structlog.get_logger()

#: ``on_wait(position, size)``: the request waits at ``position`` (1 = next) while ``size`` workers run.
OnWait = Callable[[int, int], Awaitable[None]]
Runner = Callable[[Calibration, Bus, CalibrationRequest], Awaitable[None]]


def default_workers() -> int:
    """The pool size when ``CALIBRATION_WORKERS`` is not set: the number of CPUs (at least 1)."""
    return max(1, os.cpu_count() or 1)


@dataclass
class _Waiter:
    key: str
    granted: bool = False
    moved: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class WorkerPool:
    """``size`` workers handed out first come, first served (one event loop; not thread-safe)."""

    size: int
    busy: list[str] = field(default_factory=list)
    waiting: list[_Waiter] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"calibration workers: expected at least 1, got {self.size}")

    def position(self, key: str) -> int | None:
        """1-based place of ``key`` in the queue; ``None`` when it is not waiting."""
        return next((i for i, w in enumerate(self.waiting, 1) if w.key == key), None)

    @asynccontextmanager
    async def slot(self, key: str, on_wait: OnWait) -> AsyncIterator[bool]:
        """Hold a worker for the block; yields whether it had to wait. While it waits, ``on_wait`` is
        awaited with its position at first and again each time the position changes. Cancelled while
        waiting, it leaves the queue (the ones behind move up)."""
        waited = await self._acquire(key, on_wait)
        try:
            yield waited
        finally:
            self.busy.remove(key)
            self._admit()

    async def _acquire(self, key: str, on_wait: OnWait) -> bool:
        if not self.waiting and len(self.busy) < self.size:
            self.busy.append(key)
            return False
        w = _Waiter(key)
        self.waiting.append(w)
        try:
            while not w.granted:
                w.moved.clear()
                await on_wait(self.waiting.index(w) + 1, self.size)
                if not w.granted:
                    await w.moved.wait()
        except BaseException:
            if w.granted:  # granted while being cancelled: hand the worker on
                self.busy.remove(key)
            else:
                self.waiting.remove(w)
            self._admit(moved=True)
            raise
        return True

    def _admit(self, moved: bool = False) -> None:
        """Give free workers to the head of the queue; wake every waiter whose position changed."""
        while self.waiting and len(self.busy) < self.size:
            w = self.waiting.pop(0)
            self.busy.append(w.key)
            w.granted = moved = True
            w.moved.set()
        if moved:
            for w in self.waiting:
                w.moved.set()


def waiting_text(position: int, size: int) -> str:
    """The CALIBRATING text of a calibration waiting for a worker."""
    return (
        f"Waiting for a calibration worker: position {position} in the queue ({size} of {size} workers busy)"
    )


async def calibrate_with_worker(
    pool: WorkerPool, cal: Calibration, bus: Bus, req: CalibrationRequest, run: Runner | None = None
) -> None:
    """Run ``run`` (default :func:`.job.run_calibration`) for ``req`` once a worker of ``pool`` is free;
    while waiting the asset is CALIBRATING with :func:`waiting_text`. The calibration then starts from
    the state the asset had before it queued (a failure returns it to that state, not to CALIBRATING)."""
    asset, states = req.asset_id, cal.states
    before, before_msg = states.states.get(asset), states.last.get(asset)
    started = utcnow()

    async def on_wait(position: int, size: int) -> None:
        log.info("calibration_queued", asset_id=asset, position=position, workers=size)
        progress = CalibrationProgress(
            phase="waiting", step=1, steps=len(PHASES), percent=0.0, started_at=started
        )
        p = states.change(asset, "CALIBRATING", waiting_text(position, size), calibration=progress)
        await bus.publish(p.topic, p.payload, retain=p.retain)

    async with pool.slot(asset, on_wait) as waited:
        if waited:  # no await until run_calibration has read the state it starts from
            _put_back(cal, asset, before, before_msg)
        await (run or run_calibration)(cal, bus, req)


def _put_back(cal: Calibration, asset: str, state: AssetState | None, msg: StateChange | None) -> None:
    """Record (in memory only) the asset's state from before it queued."""
    states = cal.states
    if state is None:
        states.states.pop(asset, None)
    else:
        states.states[asset] = state
    if msg is None:
        states.last.pop(asset, None)
    else:
        states.last[asset] = msg
