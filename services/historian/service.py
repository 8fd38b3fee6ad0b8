"""Historian: every stored message family (:data:`shared.records.FAMILIES`) -> the time-series store.

One route per family: the runner validates the payload against the family's model (bad payloads are
dead-lettered), the handler checks that the message belongs on its topic, converts it to a point and
hands it to the :class:`~services.historian.writer.Historian` writer, which buffers, batches and
retries (see there). The writer is the service's state port: opened (flush task started, store opened)
before the broker connection, closed (final flush, store closed) after it.

At-least-once into the store, exactly once in it: the MQTT session is persistent (client id
``rotorwatch-historian``), so the broker queues messages while the historian is away, and the writer
is a checkpointed state port: a checkpoint flushes the buffer, and a message is acknowledged to the
broker only once its points are in the store. A historian killed hard loses nothing (the broker
re-delivers what it had not acknowledged) and a store outage only delays the acknowledgements. The
store's point identity absorbs re-delivered points; an event id already stored with another
timestamp is dropped (:mod:`services.historian.dedupe`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from services.historian.dedupe import EventIndex, rebuild
from services.historian.writer import Historian
from shared import records
from shared.service import Delivery, Handler, Outbox, Route, Service, no_arguments
from shared.settings import Settings
from shared.store import Store, open_store

SERVICE = "historian"


class WriterPort:
    """The writer as a checkpointed state port: ``open`` opens the store (when given a factory), starts
    the flush task and loads the event index; a checkpoint (``snapshot`` + ``save``) writes everything
    buffered so far; ``close`` flushes what is left, stops the task and closes a store it opened."""

    def __init__(self, historian: Historian, open_store: Callable[[], Store] | None = None) -> None:
        self.historian = historian
        self.open_store = open_store
        self.index = EventIndex()
        self._loading: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self.open_store is not None:
            self.historian.store = await asyncio.to_thread(self.open_store)
        self.historian.start()
        if self.historian.store is not None:
            self._loading = asyncio.create_task(rebuild(self.index, self.historian.store))

    def snapshot(self) -> None:
        """Nothing to capture: the points of every handled message are in the buffer already."""

    async def save(self, snapshot: None) -> None:
        """Write the points buffered so far (retrying while the store is down)."""
        await self.historian.flush()

    async def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
        await self.historian.close()
        store = self.historian.store
        if self.open_store is not None and store is not None:
            await asyncio.to_thread(store.close)


def store_handler(family: records.Family[Any], port: WriterPort) -> Handler:
    """Handler for one family: check the topic, convert, drop an event stored before at another time,
    buffer (waiting while the buffer is full)."""

    async def handle(d: Delivery[Any]) -> Outbox:
        points = records.to_points(family, d.message, d.topic)
        await port.historian.add(port.index.fresh(points))
        return None

    return handle


def routes(port: WriterPort) -> list[Route]:
    return [Route(f.filter, f.model, store_handler(f, port), clears=f.clears) for f in records.FAMILIES]


def build(
    settings: Settings,
    argv: Sequence[str] = (),
    *,
    historian: Historian | None = None,
    client_id: str | None = None,
) -> Service:
    """The historian; without ``historian`` it writes to the configured store, opened when the service
    starts and closed when it stops. ``client_id``: default ``rotorwatch-historian[-<instance>]``."""
    no_arguments(SERVICE, argv)
    factory = None if historian is not None else (lambda: open_store(settings))
    h = historian or Historian.from_settings(None, settings)
    port = WriterPort(h, factory)
    return Service(
        name=SERVICE,
        routes=routes(port),
        state=port,
        client_id=client_id,
        persistent=True,
        publishes=(),
    )
