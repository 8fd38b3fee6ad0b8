"""Fan-out of live bus events to Server-Sent-Events clients.

The bus handler calls :meth:`StreamHub.publish` for every reading, score, health, alarm and state
message; each connected client has a bounded queue (:class:`StreamClient`). A client that falls
behind loses its *oldest* queued events (never blocks the bus loop) and the loss is counted.
Publishing is O(number of clients) and does no I/O, so the bus loop stays fast with many clients.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

#: SSE ``event:`` names, one per message family.
EVENT_NAMES = ("reading", "score", "health", "alarm", "state")


def sse_event(event: str, data: str) -> str:
    """One SSE frame: ``event: <name>\\ndata: <json>\\n\\n``. ``data`` must be one line."""
    if "\n" in data or "\r" in data:
        raise ValueError("SSE data must be a single line (compact JSON)")
    return f"event: {event}\ndata: {data}\n\n"


@dataclass(eq=False)
class StreamClient:
    """One connected client: a bounded queue of ``(event, data)`` and its counters.

    ``asset_id`` None means every asset. When the queue holds ``maxsize`` events, a new event drops
    the oldest one and ``dropped`` grows by one.
    """

    maxsize: int
    asset_id: str | None = None
    dropped: int = 0
    delivered: int = 0
    #: Set by :meth:`StreamHub.close` (server shutdown): the stream ends.
    closed: bool = False
    _queue: deque[tuple[str, str]] = field(init=False)
    _ready: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {self.maxsize}")
        self._queue = deque(maxlen=self.maxsize)

    def wants(self, asset_id: str) -> bool:
        return self.asset_id is None or self.asset_id == asset_id

    def push(self, event: str, data: str) -> None:
        if len(self._queue) == self.maxsize:
            self.dropped += 1  # deque(maxlen) drops the oldest on append
        self._queue.append((event, data))
        self._ready.set()

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next_batch(self, timeout: float) -> list[tuple[str, str]]:
        """Every queued event (oldest first), waiting up to ``timeout`` s for one; [] on timeout or
        when the client is closed."""
        if not self._queue and not self.closed:
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []
        out = list(self._queue)
        self._queue.clear()
        self.delivered += len(out)
        return out


class StreamHub:
    """The set of connected clients; :meth:`publish` copies an event into every interested queue."""

    def __init__(self, queue_size: int = 2048) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.queue_size = queue_size
        self._clients: set[StreamClient] = set()
        self.published = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._clients)

    def active(self) -> bool:
        return bool(self._clients)

    def connect(self, asset_id: str | None = None) -> StreamClient:
        c = StreamClient(self.queue_size, asset_id)
        self._clients.add(c)
        if self._closed:
            c.close()
        return c

    def close(self) -> None:
        """End every stream, now and for clients connecting later (the server is shutting down)."""
        self._closed = True
        for c in self._clients:
            c.close()

    def disconnect(self, client: StreamClient) -> None:
        self._clients.discard(client)

    def publish(self, event: str, asset_id: str, data: str) -> None:
        """Queue ``data`` (one-line JSON) as SSE event ``event`` for every client watching ``asset_id``."""
        if event not in EVENT_NAMES:
            raise ValueError(f"unknown stream event {event!r}: expected one of {EVENT_NAMES}")
        self.published += 1
        for c in self._clients:
            if c.wants(asset_id):
                c.push(event, data)

    def dropped(self) -> int:
        """Events dropped so far by the clients connected now."""
        return sum(c.dropped for c in self._clients)


async def sse_frames(
    client: StreamClient, heartbeat_s: float, initial: list[tuple[str, str]] | None = None
) -> AsyncIterator[str]:
    """SSE text for one client: ``retry`` hint, ``initial`` events, then queued events batched per
    wake-up; a comment ``: heartbeat dropped=<n>`` after ``heartbeat_s`` s without events. Ends once
    the client is closed and its queue sent (the browser reconnects after the ``retry`` hint)."""
    yield "retry: 3000\n\n"
    if initial:
        yield "".join(sse_event(e, d) for e, d in initial)
    while True:
        batch = await client.next_batch(heartbeat_s)
        if batch:
            yield "".join(sse_event(e, d) for e, d in batch)
        elif client.closed:
            return
        else:
            yield f": heartbeat dropped={client.dropped}\n\n"
