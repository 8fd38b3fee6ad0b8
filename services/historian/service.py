"""Historian: every stored message family (:data:`shared.records.FAMILIES`) -> the time-series store.

One route per family: the runner validates the payload against the family's model (bad payloads are
dead-lettered), the handler checks that the message belongs on its topic, converts it to a point and
hands it to the :class:`~services.historian.writer.Historian` writer, which buffers, batches and
retries (see there). The writer is the service's state port: opened (flush task started, store opened)
before the broker connection, closed (final flush, store closed) after it. The MQTT session is
persistent with a stable client id, so the broker queues messages while the historian is away.

Limit: the broker acknowledges a QoS 1 message when it is delivered, so points still in the buffer
when the process is killed hard are lost; on SIGTERM the historian tries a final flush first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from services.historian.writer import Historian
from shared import records
from shared.service import Delivery, Handler, Outbox, Route, Service, no_arguments
from shared.settings import Settings
from shared.store import Store, open_store

SERVICE = "historian"
CLIENT_ID = "rotorwatch-historian"


class WriterPort:
    """The writer as a state port: ``open`` opens the store (when given a factory) and starts the flush
    task; ``close`` flushes what is left, stops the task and closes a store it opened."""

    def __init__(self, historian: Historian, open_store: Callable[[], Store] | None = None) -> None:
        self.historian = historian
        self.open_store = open_store

    async def open(self) -> None:
        if self.open_store is not None:
            self.historian.store = await asyncio.to_thread(self.open_store)
        self.historian.start()

    async def close(self) -> None:
        await self.historian.close()
        store = self.historian.store
        if self.open_store is not None and store is not None:
            await asyncio.to_thread(store.close)


def store_handler(family: records.Family[Any], historian: Historian) -> Handler:
    """Handler for one family: check the topic, convert, buffer (waiting while the buffer is full)."""

    async def handle(d: Delivery[Any]) -> Outbox:
        await historian.add(records.to_points(family, d.message, d.topic))
        return None

    return handle


def routes(historian: Historian) -> list[Route]:
    return [Route(f.filter, f.model, store_handler(f, historian), clears=f.clears) for f in records.FAMILIES]


def build(
    settings: Settings,
    argv: Sequence[str] = (),
    *,
    historian: Historian | None = None,
    client_id: str = CLIENT_ID,
) -> Service:
    """The historian; without ``historian`` it writes to the configured store, opened when the service
    starts and closed when it stops."""
    no_arguments(SERVICE, argv)
    factory = None if historian is not None else (lambda: open_store(settings))
    h = historian or Historian.from_settings(None, settings)
    return Service(
        name=SERVICE,
        routes=routes(h),
        state=WriterPort(h, factory),
        client_id=client_id,
        persistent=True,
        publishes=(),
    )
