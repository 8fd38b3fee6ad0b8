"""MQTT bus on aiomqtt: one ``async with`` client, one ``async for`` loop, reconnect with backoff.

Services hand :func:`serve` their subscriptions and one handler. The handler gets a :class:`Bus`
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
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiomqtt
import structlog
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.messages import DeadLetter, ServiceStatus
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
    """Publish side of a connected aiomqtt client."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client

    async def publish(
        self,
        topic: str,
        payload: BaseModel | dict[str, Any] | bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        await self.client.publish(topic, encode(payload), qos=qos, retain=retain)


def make_client(
    settings: Settings,
    client_id: str | None = None,
    *,
    persistent: bool = False,
    will_service: str | None = None,
) -> aiomqtt.Client:
    """A client for ``settings.broker``. ``persistent`` keeps the session (queued QoS 1) across restarts."""
    b = settings.broker
    will = None
    if will_service:
        will = aiomqtt.Will(
            topics.service_status(will_service),
            ServiceStatus(service=will_service, state="offline").model_dump_json(),
            qos=1,
            retain=True,
        )
    tls_context = ssl.create_default_context() if b.tls else None
    return aiomqtt.Client(
        b.host,
        b.port,
        username=b.username,
        password=b.password,
        identifier=client_id,
        clean_session=not persistent if client_id else True,
        will=will,
        keepalive=30,
        tls_context=tls_context,
        timeout=10,
    )


@dataclass
class ServeState:
    """Live view of a serving bus, e.g. for a health endpoint."""

    connected: bool = False
    bus: Bus | None = None
    reconnects: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


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
) -> None:
    """Connect, announce ``online`` (retained), subscribe, and feed every message to ``handler``.

    Reconnects with exponential backoff (0.5 s .. 10 s) on connection loss. On cancellation (SIGTERM,
    Ctrl+C) it publishes ``offline`` (retained) and disconnects cleanly. ``tasks`` are background
    coroutines started once per connection and cancelled when it drops.
    """
    st = state or ServeState()
    backoff = 0.5
    log_ = log.bind(service=service)
    while True:
        client = make_client(settings, client_id, persistent=persistent, will_service=service)
        try:
            async with client:
                backoff = 0.5
                await _session(service, settings, client, subscriptions, handler, tasks, st)
        except aiomqtt.MqttError as exc:
            st.reconnects += 1
            log_.warning("broker_unavailable", error=str(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def _announce(bus: Bus, service: str, state: Literal["online", "offline"]) -> None:
    status = ServiceStatus(service=service, state=state, pid=os.getpid())
    await bus.publish(topics.service_status(service), status, retain=True)


async def _session(
    service: str,
    settings: Settings,
    client: aiomqtt.Client,
    subscriptions: Sequence[str],
    handler: Handler,
    tasks: Sequence[Task],
    st: ServeState,
) -> None:
    """One broker connection: subscribe, announce ``online``, run tasks, dispatch until it drops."""
    bus = MqttBus(client)
    for f in subscriptions:
        await client.subscribe(f, qos=1)
    # "online" only once subscribed: a publisher that waits for it loses nothing.
    await _announce(bus, service, "online")
    st.connected, st.bus = True, bus
    st.ready.set()
    log.info("connected", service=service, broker=f"{settings.broker.host}:{settings.broker.port}")
    running = [asyncio.create_task(t(bus)) for t in tasks]
    try:
        async for m in client.messages:
            incoming = Incoming(m.topic.value, bytes(m.payload or b""), bool(m.retain))
            await dispatch(service, bus, handler, incoming, max_payload_bytes=settings.max_payload_bytes)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_announce(bus, service, "offline"), 2)
        raise
    finally:
        st.connected, st.bus = False, None
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

    def on(self, filter_: str) -> list[Incoming]:
        """Every message published so far whose topic matches ``filter_``."""
        return [m for m in self.published if topic_matches(filter_, m.topic)]
