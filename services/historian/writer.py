"""The historian's writer: a bounded buffer of points, written to the store in batches, retried.

Points are written in batches of ``batch_size`` or every ``flush_seconds``, whichever comes first. When
the store is unavailable the points stay in a bounded in-memory buffer and the write is retried with
exponential backoff (0.2 s doubling to 5 s). When the buffer is full, :meth:`Historian.add` waits for
room (backpressure) instead of dropping points. A batch leaves the buffer only after the store accepted
it, and the store's idempotent point identity absorbs rewritten batches and MQTT redelivery.

A point the store refuses for good (:class:`StoreError`, e.g. an InfluxDB field-type conflict) is
isolated by splitting the batch, logged with its reason, and dropped; the rest of the batch is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from shared.settings import Settings
from shared.store import Point, Store, StoreError, StoreUnavailable

MIN_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
CLOSE_TIMEOUT_S = 5.0

log = structlog.get_logger(service="historian")  # lazy: resolved after configure_logging

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class HistorianStats:
    """Counters since start (points, not messages, unless named so)."""

    messages: int = 0
    points_in: int = 0
    written: int = 0
    write_failures: int = 0
    dropped: int = 0
    backpressure_waits: int = 0


class Historian:
    """Buffer + batched, retried writes to a :class:`Store`.

    ``add`` appends points (waiting while the buffer is full); ``flush`` writes everything buffered,
    retrying while the store is unavailable; ``run`` flushes whenever a batch is full or
    ``flush_seconds`` have passed.
    """

    def __init__(
        self,
        store: Store | None,
        *,
        batch_size: int = 500,
        flush_seconds: float = 0.5,
        buffer_points: int = 200_000,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0, got {flush_seconds}")
        if buffer_points < 1:
            raise ValueError(f"buffer_points must be >= 1, got {buffer_points}")
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError(f"need 0 < min_backoff_s <= max_backoff_s, got {min_backoff_s}, {max_backoff_s}")
        #: ``None`` until the service's state port opens the store.
        self.store: Store | None = store
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.buffer_points = buffer_points
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = HistorianStats()
        self._sleep = sleep
        self._buf: deque[Point] = deque()
        self._wake = asyncio.Event()  # a full batch is waiting
        self._space = asyncio.Event()  # the buffer has room again
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_settings(cls, store: Store | None, settings: Settings) -> Historian:
        return cls(
            store,
            batch_size=settings.historian_batch_size,
            flush_seconds=settings.historian_flush_seconds,
            buffer_points=settings.historian_buffer_points,
        )

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- input ---------------------------------------------------------------------------------------
    async def add(self, points: Sequence[Point]) -> None:
        """Append one message's points; while they do not fit in the buffer, wait for a flush to make room.

        A message bigger than the whole buffer is still taken once the buffer is empty.
        """
        self.stats.messages += 1
        if not points:
            return
        if self._buf and len(self._buf) + len(points) > self.buffer_points:
            self.stats.backpressure_waits += 1
            log.warning("backpressure", buffered=len(self._buf), capacity=self.buffer_points)
            while self._buf and len(self._buf) + len(points) > self.buffer_points:
                self._space.clear()
                self._wake.set()
                await self._space.wait()
        self._buf.extend(points)
        self.stats.points_in += len(points)
        if len(self._buf) >= self.batch_size:
            self._wake.set()

    # -- output ---------------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write the points buffered when called, in batches, retrying with backoff while the store
        is down (points added meanwhile wait for the next call, so each call ends and logs).

        Backoff: ``min_backoff_s`` doubling after each failure up to ``max_backoff_s`` (seconds), reset
        after a success. Returns the number of points the store accepted.
        """
        async with self._flush_lock:
            written = dropped = 0
            backoff = self.min_backoff_s
            failed = False
            remaining = len(self._buf)
            while remaining > 0:
                batch = list(itertools.islice(self._buf, min(self.batch_size, remaining)))
                try:
                    ok, bad = await self._write(batch)
                except StoreUnavailable as exc:
                    self.stats.write_failures += 1
                    failed = True
                    log.warning(
                        "store_unavailable", error=str(exc), buffered=len(self._buf), retry_in_s=backoff
                    )
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                for _ in batch:
                    self._buf.popleft()
                remaining -= len(batch)
                self._space.set()
                backoff = self.min_backoff_s
                written += ok
                dropped += bad
                self.stats.written += ok
                self.stats.dropped += bad
                if failed:
                    failed = False
                    log.info("store_recovered", buffered=len(self._buf))
            if written or dropped:
                log.debug("flushed", count=written, dropped=dropped, buffered=len(self._buf))
            return written

    async def _flush_all(self) -> None:
        while self._buf:
            await self.flush()

    async def _write(self, batch: list[Point]) -> tuple[int, int]:
        """Write one batch; isolate and drop points the store refuses for good. -> (written, dropped)."""
        try:
            if self.store is None:
                raise StoreUnavailable("store not opened yet")
            await asyncio.to_thread(self.store.write, batch)
            return len(batch), 0
        except StoreUnavailable:
            raise
        except StoreError as exc:
            if len(batch) == 1:
                p = batch[0]
                log.error(
                    "point_dropped",
                    reason=str(exc),
                    measurement=p.measurement,
                    asset_id=p.asset_id,
                    ts_ns=p.ts_ns,
                )
                return 0, 1
            mid = len(batch) // 2
            a_ok, a_bad = await self._write(batch[:mid])
            b_ok, b_bad = await self._write(batch[mid:])
            return a_ok + b_ok, a_bad + b_bad
        except Exception as exc:  # an adapter bug: keep the points and retry, loudly
            log.exception("store_write_failed")
            raise StoreUnavailable(f"unexpected {type(exc).__name__}: {exc}") from exc

    async def run(self) -> None:
        """Flush whenever a batch is full or every ``flush_seconds``; returns after the final flush
        once :meth:`close` was called (cancel it to stop at once)."""
        while True:
            if not self._closing and len(self._buf) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_seconds):
                        await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if self._closing:
                await self._flush_all()
                return

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a background task (once)."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self.run(), name="historian-flush")
        return self._task

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is left (letting a write in progress finish, so nothing is written twice) and
        stop the flush task; give up after ``timeout_s`` seconds, logging what stays unwritten."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(timeout_s):
                if task is not None and not task.done():
                    await task  # run() returns after its final flush
                else:
                    await self._flush_all()
        except TimeoutError:
            log.error("unflushed_on_exit", buffered=len(self._buf))
