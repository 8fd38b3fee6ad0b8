"""The one service shape: a declared route table, background tasks and a state port, run by one runner.

A service module builds a :class:`Service`::

    def build(settings: Settings, argv: Sequence[str] = ()) -> Service:
        return Service(
            name="features",
            routes=(
                Route(topics.READING_FILTER, Reading, on_reading),
                Route(topics.ASSET_CONFIG_FILTER, AssetConfig, on_config, clears=True),
            ),
            publishes=("features/<a>/{legacy,batch,vibration}",),
        )

and its ``__main__`` is ``main(build)``. :func:`run_service` opens the state port, connects the bus
(:func:`shared.bus.serve`: reconnect, ``online``/``offline`` status, dead letters), and for every message
picks the first route whose filter matches, validates the payload against the route's model, calls the
handler with a :class:`Delivery` and publishes what the handler returns (:class:`Publish` items, in
order, QoS 1). A payload that fails validation, a handler that raises :class:`~shared.bus.Rejected` or
``ValueError``, and a topic no route takes all become dead letters with the reason; the service goes on.

Handlers validate, call pure code and return what to publish. Handlers that must wait on I/O (a store
query, a model file) await it off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog
from pydantic import BaseModel

from shared import topics
from shared.bus import (
    Bus,
    Incoming,
    MemoryBus,
    Rejected,
    ServeState,
    Task,
    dispatch,
    run,
    serve,
    topic_matches,
)
from shared.log import configure_logging
from shared.messages.base import set_max_future_skew
from shared.mqtt_client import client_id_for
from shared.readiness import Readiness, StatusReporter, announce_offline
from shared.session import Checkpointed
from shared.settings import Settings

log = structlog.get_logger()

M = TypeVar("M")


@dataclass(frozen=True)
class Publish:
    """One message a handler wants published (QoS 1 unless ``qos`` says otherwise)."""

    topic: str
    payload: BaseModel | dict[str, Any] | bytes | str
    retain: bool = False
    qos: int = 1


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """What a handler receives: the validated message (``None`` for a cleared retained topic, only on
    routes declared with ``clears=True``), its topic, the topic's asset id and the retain flag."""

    topic: str
    message: M
    asset_id: str | None
    retain: bool = False


Outbox = Sequence[Publish] | None
Handler = Callable[[Delivery[Any]], Awaitable[Outbox]]
Parser = Callable[[Incoming], Any]


@dataclass(frozen=True)
class Route:
    """Topic filter → message model → handler.

    ``model`` is a pydantic model class (the payload is validated with ``model_validate_json``) or a
    parser ``(Incoming) -> message`` for inputs with their own rules (raw device input). ``clears``:
    the topic is retained and an empty payload (the retained message cleared) reaches the handler as
    ``message=None``; on other routes an empty payload is invalid input like any other.
    ``retained=False``: retained messages are ignored (e.g. stale raw input).
    """

    filter: str
    model: type[BaseModel] | Parser
    handler: Handler
    clears: bool = False
    retained: bool = True
    doc: str = ""

    def parse(self, msg: Incoming) -> Any:
        m = self.model
        if isinstance(m, type) and issubclass(m, BaseModel):
            return m.model_validate_json(msg.payload)
        return m(msg)

    @property
    def model_name(self) -> str:
        m = self.model
        return m.__name__ if isinstance(m, type) else getattr(m, "__name__", "raw")


class StatePort(Protocol):
    """What a service keeps beyond one message (store, registry, persisted state): opened before the
    bus connects, closed (flushed) after it stops, never with blocking I/O on the event loop.

    A state port that is also :class:`~shared.session.Checkpointed` (``snapshot()`` + ``async
    save(snapshot)``) is checkpointed by the runner, and a message is acknowledged to the broker only
    once a saved checkpoint covers it (the historian: its points are in the store)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Service:
    """A service declared: name, route table, background tasks, state port, MQTT session."""

    name: str
    routes: Sequence[Route]
    #: Topic templates this service publishes (documentation; checked against docs/ARCHITECTURE.md).
    publishes: Sequence[str] = ()
    #: Background coroutines, started once per broker connection with the publish side of the bus.
    tasks: Sequence[Task] = ()
    state: StatePort | None = None
    #: Persistent session (``clean_session=false``) with a stable client id (default
    #: ``rotorwatch-<name>``, :func:`~shared.mqtt_client.client_id_for`): the broker queues QoS 1
    #: messages while the service is away, and a message is acknowledged only once it is done
    #: (at-least-once).
    client_id: str | None = None
    persistent: bool = False
    #: Replicas (``PARTITION_COUNT`` > 1): asset id -> the id it is partitioned by (shared.partition.owns).
    partition_key: Callable[[str], str] | None = None
    serve_state: ServeState = field(default_factory=ServeState)
    #: How the process serves: by default :func:`serve_routes` on the broker; the gateway serves HTTP
    #: (its bus side runs inside the web server's lifespan).
    runner: Callable[[Service, Settings], Awaitable[None]] | None = None
    #: Readiness announced on ``status/<name>`` (:mod:`shared.readiness`): ready once the retained state
    #: is handled and the declared start-up ``steps`` are done; handlers may set its detail.
    readiness: Readiness = field(default_factory=Readiness)

    def __post_init__(self) -> None:
        self.serve_state.readiness = self.readiness

    @property
    def subscriptions(self) -> list[str]:
        return list(dict.fromkeys(r.filter for r in self.routes))

    def route_for(self, topic: str) -> Route | None:
        return next((r for r in self.routes if topic_matches(r.filter, topic)), None)

    async def handle(self, bus: Bus, msg: Incoming) -> None:
        """Route one message: validate, call the handler, publish its outbox (errors → dead letters)."""
        route = self.route_for(msg.topic)
        if route is None:
            raise Rejected(f"no {self.name} route for topic {msg.topic!r}")
        if msg.retain and not route.retained:
            log.info("ignored_retained", service=self.name, topic=msg.topic)
            return
        message = None if route.clears and not msg.payload else route.parse(msg)
        out = await route.handler(
            Delivery(msg.topic, message, topics.asset_from_topic(msg.topic), msg.retain)
        )
        for p in out or ():
            await bus.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)


async def run_service(service: Service, settings: Settings) -> None:
    """Run the process until cancelled: ``service.runner`` when it declares one, else
    :func:`serve_routes`."""
    if service.runner is not None:
        await service.runner(service, settings)
    else:
        await serve_routes(service, settings)


async def serve_routes(service: Service, settings: Settings) -> None:
    """Open the state port, serve the routes on the broker until cancelled, then close the state port."""
    if service.state is not None:
        await service.state.open()
    client_id = service.client_id
    if client_id is None and service.persistent:
        client_id = client_id_for(service.name, settings)
    checkpoint = service.state if isinstance(service.state, Checkpointed) else None
    try:
        await serve(
            service.name,
            settings,
            service.subscriptions,
            service.handle,
            client_id=client_id,
            persistent=service.persistent,
            tasks=service.tasks,
            state=service.serve_state,
            checkpoint=checkpoint,
            partition_key=service.partition_key,
        )
    finally:
        if service.state is not None:
            await service.state.close()


Builder = Callable[[Settings, Sequence[str]], Service]


def main(build: Builder, argv: Sequence[str] | None = None) -> None:
    """Entry point of every ``python -m services.<name>``: settings, service, logging, run until signalled."""
    settings = Settings()
    set_max_future_skew(settings.max_future_skew_s)
    service = build(settings, list(sys.argv[1:] if argv is None else argv))
    logger = configure_logging(service.name, settings.log_level)
    logger.info("starting", routes=len(service.routes), subscriptions=service.subscriptions)
    run(lambda: run_service(service, settings))
    logger.info("stopped")


def no_arguments(name: str, argv: Sequence[str]) -> None:
    """For services without command-line options: ``--help`` works, anything else is an error."""
    argparse.ArgumentParser(prog=f"python -m services.{name}").parse_args(list(argv))


# ---------------------------------------------------------------------------------------------
# In-memory running (handler tests, the gateway's tests): the same routing and dead letters.
# ---------------------------------------------------------------------------------------------
async def deliver(
    service: Service,
    bus: Bus,
    topic: str,
    payload: bytes | str | BaseModel,
    *,
    retain: bool = False,
    max_payload_bytes: int = 1 << 24,
) -> None:
    """Feed one message through the service exactly as the runner does (dead letters included)."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump_json()
    if isinstance(payload, str):
        payload = payload.encode()
    await dispatch(
        service.name,
        bus,
        service.handle,
        Incoming(topic, payload, retain),
        max_payload_bytes=max_payload_bytes,
    )


#: Queued after the retained messages of the in-memory subscriptions: the twin of the sync marker.
_SYNCED = Incoming("$memory/synced", b"")


async def serve_memory(service: Service, bus: MemoryBus, *, max_payload_bytes: int = 1 << 24) -> None:
    """Run ``service`` on an in-memory bus until cancelled: subscribe its routes (retained messages
    first), start its tasks and status reporter (as the runner does), dispatch every message in order."""
    queue: asyncio.Queue[Incoming] = asyncio.Queue()
    for f in service.subscriptions:
        bus.forward(f, queue)
    queue.put_nowait(_SYNCED)
    if service.state is not None:
        await service.state.open()
    readiness = service.readiness
    readiness.begin()
    reporter = StatusReporter(bus, service.name, readiness)
    await reporter.publish()
    running = [asyncio.create_task(reporter.run()), *(asyncio.create_task(t(bus)) for t in service.tasks)]
    service.serve_state.connected, service.serve_state.bus = True, bus
    service.serve_state.ready.set()
    try:
        while True:
            msg = await queue.get()
            if msg is _SYNCED:
                readiness.sync()
                continue
            await dispatch(service.name, bus, service.handle, msg, max_payload_bytes=max_payload_bytes)
    finally:
        service.serve_state.connected, service.serve_state.bus = False, None
        service.serve_state.ready.clear()
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await announce_offline(bus, service.name, readiness)
        if service.state is not None:
            await service.state.close()


@contextlib.asynccontextmanager
async def running_in_memory(service: Service, bus: MemoryBus) -> AsyncIterator[Service]:
    """``async with running_in_memory(svc, bus):`` — :func:`serve_memory` in a background task."""
    task = asyncio.create_task(serve_memory(service, bus))
    await service.serve_state.ready.wait()
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def publishes(*items: Publish | Iterable[Publish] | None) -> list[Publish]:
    """Flatten handler results: ``return publishes(a, maybe_b, many)``."""
    out: list[Publish] = []
    for it in items:
        if it is None:
            continue
        if isinstance(it, Publish):
            out.append(it)
        else:
            out.extend(it)
    return out
