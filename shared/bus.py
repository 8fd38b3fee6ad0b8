"""MQTT bus on aiomqtt: one session client per process, reconnect with backoff, at-least-once delivery.

Services hand :func:`serve` their subscriptions and one handler. Persistent services (stable client id
``rotorwatch-<service>``, ``clean_session=false``, QoS 1) acknowledge a message only once it is done
and keep unsettled work across a lost connection (:mod:`shared.session`). The handler gets a :class:`Bus`
(publish side) and each :class:`Incoming` message. Bad input never crashes a service: a handler that
raises :class:`Rejected`, ``ValueError`` or a pydantic ``ValidationError`` produces a dead-letter
message with the reason; any other exception is logged and dead-lettered as an internal error.

:class:`MemoryBus` is the in-memory twin used by fast handler tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt
import structlog
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.messages import DeadLetter
from shared.mqtt_client import make_client
from shared.partition import owns, status_name
from shared.readiness import Readiness, StatusReporter, announce_offline
from shared.session import Checkpointed, Pipeline, Received, SessionClient
from shared.settings import Settings

log = structlog.get_logger()


class Rejected(Exception):
    """Raised by a handler for input it refuses; the text becomes the dead-letter reason."""


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    retain: bool = False


def encode(payload: BaseModel | dict[str, Any] | list[Any] | bytes | str) -> bytes:
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode()
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()


def topic_matches(filter_: str, topic: str) -> bool:
    """MQTT topic-filter match with ``+`` and ``#`` (``$share/<group>/`` prefixes are stripped)."""
    if filter_.startswith("$share/"):
        filter_ = filter_.split("/", 2)[2]
    f_parts, t_parts = filter_.split("/"), topic.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return True
        if i >= len(t_parts):
            return False
        if f != "+" and f != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


class Bus(Protocol):
    async def publish(
        self,
        topic: str,
        payload: BaseModel | dict[str, Any] | bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None: ...


Handler = Callable[[Bus, Incoming], Awaitable[None]]
Task = Callable[[Bus], Awaitable[None]]


def describe_error(exc: BaseException) -> str:
    """A short human-readable reason for a rejected message."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        return "; ".join(parts) + more
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON: {exc.msg} at position {exc.pos}"
    return str(exc) or type(exc).__name__


async def dead_letter(bus: Bus, service: str, msg: Incoming, reason: str) -> None:
    excerpt = msg.payload[:512].decode("utf-8", errors="replace")
    dl = DeadLetter(
        service=service,
        source_topic=msg.topic,
        reason=reason,
        payload_excerpt=excerpt,
        payload_bytes=len(msg.payload),
    )
    await bus.publish(topics.dead_letter(service), dl, qos=1)


async def dispatch(
    service: str, bus: Bus, handler: Handler, msg: Incoming, *, max_payload_bytes: int
) -> None:
    """Run one handler call; turn every failure into a dead letter instead of an exception."""
    if len(msg.payload) > max_payload_bytes:
        reason = f"payload too large: {len(msg.payload)} bytes > limit {max_payload_bytes}"
        await dead_letter(bus, service, msg, reason)
        log.warning("rejected", topic=msg.topic, reason=reason)
        return
    try:
        await handler(bus, msg)
    except (Rejected, ValidationError, ValueError) as exc:  # JSONDecodeError is a ValueError
        reason = describe_error(exc)
        log.warning("rejected", topic=msg.topic, reason=reason)
        await dead_letter(bus, service, msg, reason)
    except asyncio.CancelledError:
        raise
    except aiomqtt.MqttError:
        raise
    except Exception as exc:  # a service must survive its own bugs too
        log.exception("handler_failed", topic=msg.topic)
        await dead_letter(bus, service, msg, f"internal error: {type(exc).__name__}: {exc}")


class MqttBus:
    """Publish side of a connected :class:`~shared.session.SessionClient`.

    ``durable`` (persistent services): :meth:`publish` returns once the broker acknowledged the
    message, waiting across reconnects (paho re-sends it after the next CONNACK). Otherwise it raises
    :class:`aiomqtt.MqttError` as soon as the connection is lost (the gateway answers 503).
    """

    def __init__(self, client: SessionClient, *, durable: bool = False) -> None:
        self.client = client
        self.durable = durable

    async def publish(
        self,
        topic: str,
        payload: BaseModel | dict[str, Any] | bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        data = encode(payload)
        await self.client.publish_acked(topic, data, qos=qos, retain=retain, fail_fast=not self.durable)


@dataclass
class ServeState:
    """Live view of a serving bus, e.g. for a health endpoint."""

    connected: bool = False
    bus: Bus | None = None
    reconnects: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: The message pipeline (counts, checkpoints) while serving on a broker.
    pipeline: Pipeline | None = None
    #: Readiness on the current connection (:mod:`shared.readiness`), announced on ``status/<service>``.
    readiness: Readiness = field(default_factory=Readiness)


#: Reconnect backoff, seconds: first retry, cap.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.25, 5.0


async def serve(
    service: str,
    settings: Settings,
    subscriptions: Sequence[str],
    handler: Handler,
    *,
    client_id: str | None = None,
    persistent: bool = False,
    tasks: Sequence[Task] = (),
    state: ServeState | None = None,
    checkpoint: Checkpointed | None = None,
    partition_key: Callable[[str], str] | None = None,
) -> None:
    """Connect, subscribe (QoS 1), announce ``online`` (retained), feed every message to ``handler``,
    announce ``ready`` once the retained state is handled and ``state.readiness``'s steps are done.

    One :class:`~shared.session.SessionClient` serves the whole process: on connection loss (noticed
    at once when the broker's socket closes, else after at most two keepalive periods) it reconnects
    with exponential backoff (0.25 s .. 5 s) and the messages received or published but not settled
    carry over. A persistent service (stable ``client_id``, ``persistent``) acknowledges each message
    only when it is done (:class:`~shared.session.Pipeline`). ``tasks`` are background coroutines
    started once per connection and cancelled when it drops. On cancellation (SIGTERM, Ctrl+C) the
    message in hand is finished, a last checkpoint saved, ``offline`` published and the client
    disconnects cleanly.
    """
    st = state or ServeState()
    index, count = settings.partition_index, settings.partition_count
    if count > 1 and not (persistent and client_id):
        raise ValueError(f"{service} cannot be partitioned: it has no persistent session (PARTITION_COUNT)")
    status = status_name(service, index, count)
    client = make_client(settings, client_id, persistent=persistent, will_service=status)
    client.marker_topic = topics.sync(service, f"s{uuid.uuid4().hex[:16]}")
    bus = MqttBus(client, durable=client.manual_acks)

    async def handle(r: Received) -> None:
        m = r.message
        if count > 1 and not owns(m.topic.value, index, count, partition_key):
            return  # another replica's asset: acknowledged, not handled (shared.partition)
        incoming = Incoming(m.topic.value, bytes(m.payload or b""), bool(m.retain))
        await dispatch(service, bus, handler, incoming, max_payload_bytes=settings.max_payload_bytes)

    pipeline = st.pipeline = Pipeline(client, handle, checkpoint, on_synced=st.readiness.sync)
    worker = asyncio.create_task(pipeline.run(), name=f"{service}-pipeline")
    link = asyncio.create_task(
        _connect_forever(status, settings, client, bus, subscriptions, tasks, st), name=f"{service}-link"
    )
    try:
        await asyncio.wait([worker, link], return_when=asyncio.FIRST_COMPLETED)
        if worker.done():
            raise _stopped(service, worker)
        await link  # only ends by raising
    finally:
        link.cancel()
        await asyncio.gather(link, return_exceptions=True)
        await pipeline.stop(worker)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await announce_offline(bus, status, st.readiness) if client.is_connected else None
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)


class PipelineStopped(RuntimeError):
    """The service's message pipeline ended on its own (an error escaped a handler's dispatch): the
    process must end (non-zero) so its supervisor restarts it; unacknowledged messages are redelivered."""


def _stopped(service: str, worker: asyncio.Task[None]) -> PipelineStopped:
    """Log why the pipeline ``worker`` ended and return the error :func:`serve` raises for it."""
    exc = None if worker.cancelled() else worker.exception()
    log.error("pipeline_stopped", service=service, error=repr(exc))
    err = PipelineStopped(f"{service}: message pipeline stopped ({exc!r}); exiting so it is restarted")
    err.__cause__ = exc
    return err


async def _connect_forever(
    service: str,
    settings: Settings,
    client: SessionClient,
    bus: MqttBus,
    subscriptions: Sequence[str],
    tasks: Sequence[Task],
    st: ServeState,
) -> None:
    backoff = RECONNECT_MIN_S
    log_ = log.bind(service=service)
    where = f"{settings.broker.host}:{settings.broker.port}"
    while True:
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            log_.warning("broker_unavailable", broker=where, error=str(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)
            continue
        backoff = RECONNECT_MIN_S
        try:
            await _session(service, client, bus, subscriptions, tasks, st, where)
        except aiomqtt.MqttError as exc:
            st.reconnects += 1
            replay = client.requeue_recent(time.monotonic())
            log_.warning(
                "broker_lost", broker=where, error=str(exc), unsettled=client.incoming.qsize(), replay=replay
            )
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)


async def _session(
    service: str,
    client: SessionClient,
    bus: MqttBus,
    subscriptions: Sequence[str],
    tasks: Sequence[Task],
    st: ServeState,
    where: str,
) -> None:
    """One connection: subscribe, run tasks and the status reporter (shared.readiness) until it drops."""
    for f in [*subscriptions, client.marker_topic]:
        await client.subscribe(f, qos=1)
    gen = client.generation
    st.readiness.begin()
    marker = asyncio.create_task(client.sync_marker(gen))
    # "online" only once subscribed: a publisher that waits for it loses nothing.
    reporter = StatusReporter(bus, service, st.readiness)
    await reporter.publish()
    st.connected, st.bus = True, bus
    st.ready.set()
    log.info("connected", service=service, broker=where, generation=gen)
    running = [marker, asyncio.create_task(reporter.run()), *(asyncio.create_task(t(bus)) for t in tasks)]
    try:
        await client.until_disconnected()
    finally:
        st.connected = False
        st.ready.clear()
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` until it returns or SIGINT/SIGTERM arrives (then cancel it and exit 0)."""

    # `kill -USR1 <pid>` prints every thread's stack to stderr (diagnosing a stuck service).
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())


class MemoryBus:
    """In-memory twin of the MQTT bus for handler tests: records publishes, keeps retained messages,
    and feeds subscribers' queues."""

    def __init__(self) -> None:
        self.published: list[Incoming] = []
        self.retained: dict[str, Incoming] = {}
        self._subs: list[tuple[str, asyncio.Queue[Incoming]]] = []

    async def publish(
        self,
        topic: str,
        payload: BaseModel | dict[str, Any] | bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        msg = Incoming(topic, encode(payload), retain)
        self.published.append(msg)
        if retain:
            if msg.payload:
                self.retained[topic] = msg
            else:
                self.retained.pop(topic, None)
        for f, q in self._subs:
            if topic_matches(f, topic):
                q.put_nowait(msg)

    def subscribe(self, filter_: str) -> asyncio.Queue[Incoming]:
        q: asyncio.Queue[Incoming] = asyncio.Queue()
        return self.forward(filter_, q)

    def forward(self, filter_: str, q: asyncio.Queue[Incoming]) -> asyncio.Queue[Incoming]:
        """Put the retained messages matching ``filter_``, then every later match, into ``q``."""
        for t, m in self.retained.items():
            if topic_matches(filter_, t):
                q.put_nowait(m)
        self._subs.append((filter_, q))
        return q

    def drained(self) -> bool:
        """Whether every subscriber has taken every message published to it."""
        return all(q.empty() for _, q in self._subs)

    def on(self, filter_: str) -> list[Incoming]:
        """Every message published so far whose topic matches ``filter_``."""
        return [m for m in self.published if topic_matches(filter_, m.topic)]
