"""An MQTT session that outlives its connections: at-least-once delivery for the service runner.

:class:`SessionClient` is one aiomqtt client (and its paho client) for the whole life of a process,
entered again after every lost connection, so that the session's state survives a broker outage:

* **Received, not yet handled messages** stay in :attr:`SessionClient.incoming` and are handled after
  the connection comes back (their outputs then go to the broker the service reconnects to).
* **Publishes not yet acknowledged** (no PUBACK) stay in paho's outgoing store and are re-sent, with
  their DUP flag, right after the next CONNACK; :meth:`SessionClient.publish_acked` returns only once
  the broker acknowledged the message, however many reconnects that takes (``fail_fast=True``: raise
  :class:`aiomqtt.MqttError` as soon as the connection is lost, for callers that answer someone, e.g.
  the gateway's HTTP 503).
* **Manual acknowledgements**: with ``manual_acks`` the PUBACK of a received QoS 1 message is sent by
  :meth:`SessionClient.ack`, which the runner calls only after the message's handler ran and every
  message it published was acknowledged by the broker, and, for a service with a checkpointed state
  (:class:`Checkpointed`), only after a checkpoint covering the message was saved. aiomqtt 2.5 does
  not expose this; its paho client does (``manual_ack_set(True)`` before connecting, ``ack(mid,
  qos)`` after), and aiomqtt messages carry their ``mid``. A message is acknowledged only on the
  connection it arrived on (a packet id means nothing to the next connection): a message handled
  across a reconnect is simply left unacknowledged, and the broker re-delivers it when the session
  survived; the stages are idempotent by event id (see ``docs/ARCHITECTURE.md``).

So a service killed with ``kill -9`` loses nothing the broker holds for its persistent session: every
message it had not acknowledged is re-delivered when it comes back. What the process held is lost with
it, but by the rule above it had acknowledged none of it.

**Replay after a lost broker.** A broker killed hard (``kill -9``) forgets what it acknowledged since it
last saved its state (Mosquitto: every ``autosave_interval`` s), including messages it had not yet
passed on. So the client keeps what it published (non-retained, QoS 1) in the last ``replay_s``
seconds, and when the connection is lost puts those messages back at the head of paho's outgoing
store, before the unacknowledged and newer ones, so they go out again, in their original order, right
after the next CONNACK. Consumers drop what they already have: the runner skips a non-retained message
whose topic and payload it handled recently (:class:`Pipeline`), and the stages are idempotent by event
id. Retained messages are not replayed (their owners publish them again on each connection).

**Retained state before the stream.** A resumed persistent session gets its queued messages right
after CONNECT, before the retained messages of the subscriptions the service then renews (a scorer
would see feature vectors before its model). So on each connection the runner publishes a marker to
its private ``sync/<service>/<token>`` topic after subscribing; the broker sends a subscription's
retained messages before later publishes, so once the marker is back every retained message has
arrived. Until then the pipeline handles only retained messages and holds the others (in order);
without a marker after :data:`SYNC_TIMEOUT_S` it goes on anyway (logged).

:class:`Pipeline` is the runner's side: one task handles the received messages in order (under a lock,
so that a checkpoint never sees half a message), one takes checkpoints and acknowledges what they
cover.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiomqtt
import paho.mqtt.client as paho
import structlog
from aiomqtt.exceptions import MqttCodeError

log = structlog.get_logger()

#: A checkpoint is taken as soon as no received message waits (the broker may be holding back more
#: until we acknowledge: its in-flight window is full), else after at most this many seconds or
#: :data:`CHECKPOINT_BATCH` messages (group commit), and never sooner than
#: :data:`CHECKPOINT_MIN_INTERVAL_S` after the previous one.
CHECKPOINT_DELAY_S = 0.05
CHECKPOINT_BATCH = 500
CHECKPOINT_MIN_INTERVAL_S = 0.01
#: Seconds the runner lets the message in hand finish on shutdown before cancelling it.
STOP_GRACE_S = 5.0
#: Seconds to wait for the connection's sync marker before handling held messages anyway.
SYNC_TIMEOUT_S = 5.0
#: Bytes of recent publishes kept for a replay (older ones are dropped first).
REPLAY_BYTES = 64 * 1024 * 1024
#: Non-retained messages remembered (by topic + payload hash) to skip exact duplicates.
RECENT_MESSAGES = 20_000


@dataclass(frozen=True)
class Received:
    """One received message and the connection (``generation``) it arrived on."""

    generation: int
    message: aiomqtt.Message

    @property
    def qos(self) -> int:
        return int(self.message.qos)


@dataclass(frozen=True)
class Synced:
    """Every retained message of connection ``generation`` has arrived (its sync marker came back)."""

    generation: int


class SessionClient(aiomqtt.Client):
    """An aiomqtt client entered again after each lost connection (see the module docstring)."""

    def __init__(self, *args: Any, manual_acks: bool = False, replay_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replay_s = replay_s
        #: Acknowledged non-retained publishes of the last ``replay_s`` s: (time, topic, payload, qos).
        self.recent: deque[tuple[float, str, bytes, int]] = deque()
        self._recent_bytes = 0
        self.replayed = 0
        #: Number of the current connection (incremented on each accepted CONNACK).
        self.generation = 0
        self.manual_acks = manual_acks
        #: Every received message, in arrival order, kept across reconnects.
        self.incoming: asyncio.Queue[Received | Synced] = asyncio.Queue()
        #: This process's sync marker topic (``sync/<service>/<token>``; payload: the generation).
        self.marker_topic: str | None = None
        #: The newest connection whose marker came back.
        self.synced = 0
        if manual_acks:
            self._client.manual_ack_set(True)

    # -- paho callbacks (called on the event loop's thread) ----------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, *a: Any) -> None:
        if not self._connected.done() and reason_code == paho.CONNACK_ACCEPTED:
            self.generation += 1  # before any PUBLISH of this connection is read
        super()._on_connect(client, userdata, flags, reason_code, *a)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self.marker_topic is not None and message.topic == self.marker_topic:
            # the payload is the connection's generation: a marker of an earlier connection is stale
            if message.payload == str(self.generation).encode():
                self.synced = self.generation
                self.incoming.put_nowait(Synced(self.generation))
            if self.manual_acks and message.qos:
                self._client.ack(message.mid, message.qos)
            return
        self.incoming.put_nowait(Received(self.generation, aiomqtt.Message._from_paho_message(message)))

    # -- connection --------------------------------------------------------------------------------
    async def __aenter__(self) -> SessionClient:
        # aiomqtt leaves ``_connected`` resolved after a lost connection; without this reset a second
        # ``async with`` would return before the broker's CONNACK.
        if self._connected.done():
            self._connected = asyncio.get_running_loop().create_future()
        await super().__aenter__()
        return self

    @property
    def is_connected(self) -> bool:
        return self._connected.done() and not self._connected.exception() and not self._disconnected.done()

    async def until_disconnected(self) -> None:
        """Return when the connection ends (``MqttError`` for an unexpected loss: broker gone, socket
        reset, keepalive missed)."""
        await asyncio.wait([self._disconnected])
        self._disconnected.result()

    async def sync_marker(self, generation: int) -> None:
        """Publish connection ``generation``'s marker; not back after :data:`SYNC_TIMEOUT_S`: go on."""
        assert self.marker_topic is not None
        await self.publish_acked(self.marker_topic, str(generation).encode(), fail_fast=True)
        await asyncio.sleep(SYNC_TIMEOUT_S)
        if self.synced < generation:
            log.warning("sync_marker_timeout", topic=self.marker_topic, waited_s=SYNC_TIMEOUT_S)
            self.incoming.put_nowait(Synced(generation))

    # -- publish / acknowledge ---------------------------------------------------------------------
    async def publish_acked(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, fail_fast: bool = False
    ) -> None:
        """Publish and return once the broker acknowledged it (QoS 1), across reconnects unless
        ``fail_fast``. While disconnected, paho keeps the message and sends it after the next CONNACK."""
        info = self._client.publish(topic, payload, qos, retain)
        no_conn = info.rc == paho.MQTT_ERR_NO_CONN
        if info.rc != paho.MQTT_ERR_SUCCESS and not (no_conn and qos > 0):
            raise MqttCodeError(info.rc, "Could not publish message")
        # paho's is_published() raises RuntimeError for a message queued while disconnected (rc NO_CONN):
        # that message is not published yet, it goes out after the next CONNACK
        if not no_conn and info.is_published():
            self._remember(topic, payload, qos, retain)
            return
        if fail_fast and (no_conn or not self.is_connected):
            raise aiomqtt.MqttError("not connected to the broker")
        acked = asyncio.Event()
        self._pending_publishes[info.mid] = acked
        try:
            if not fail_fast:
                await acked.wait()
                self._remember(topic, payload, qos, retain)
                return
            waiter = asyncio.ensure_future(acked.wait())
            try:
                await asyncio.wait([waiter, self._disconnected], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if not acked.is_set():
                raise aiomqtt.MqttError("broker connection lost before it acknowledged the message")
            self._remember(topic, payload, qos, retain)
        finally:
            self._pending_publishes.pop(info.mid, None)

    # -- replay ------------------------------------------------------------------------------------
    def _remember(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self.replay_s <= 0 or retain or qos == 0 or topic == self.marker_topic:
            return
        now = time.monotonic()
        self.recent.append((now, topic, payload, qos))
        self._recent_bytes += len(payload)
        while self.recent and (self.recent[0][0] < now - self.replay_s or self._recent_bytes > REPLAY_BYTES):
            self._recent_bytes -= len(self.recent.popleft()[2])

    def requeue_recent(self, lost_at: float) -> int:
        """Put the messages published in the ``replay_s`` s before ``lost_at`` (monotonic) back at the head
        of paho's outgoing store (sent again after the next CONNACK, in order); returns how many."""
        replay = [r for r in self.recent if r[0] >= lost_at - self.replay_s]
        self.recent.clear()
        self._recent_bytes = 0
        if not replay:
            return 0
        c = self._client
        with c._out_message_mutex:
            head: OrderedDict[int, paho.MQTTMessage] = OrderedDict()
            for _, topic, payload, qos in replay:
                m = paho.MQTTMessage(c._mid_generate(), topic.encode())
                m.payload, m.qos, m.retain, m.dup = payload, qos, False, False
                m.timestamp = time.monotonic()
                m.state = paho.mqtt_ms_publish
                head[m.mid] = m
            head.update(c._out_messages)
            c._out_messages = head
        self.replayed += len(replay)
        return len(replay)

    def ack(self, received: Received) -> bool:
        """Send the PUBACK of a handled message (only on the connection it came on); True if sent."""
        if not self.manual_acks or received.qos == 0 or received.generation != self.generation:
            return False
        if not self.is_connected:
            return False
        return self._client.ack(received.message.mid, received.qos) == paho.MQTT_ERR_SUCCESS


@runtime_checkable
class Checkpointed(Protocol):
    """A state port whose state is saved at checkpoints; messages are acknowledged once one covers them.

    ``snapshot()`` runs between two messages (never inside one) and captures the state synchronously;
    ``await save(snapshot)`` makes it durable (off the event loop). After a crash the service restarts
    from the last saved checkpoint and the broker re-delivers exactly the messages handled since then,
    so handling them again gives the same outputs as the first time (deterministic replay)."""

    def snapshot(self) -> Any: ...

    async def save(self, snapshot: Any) -> None: ...


Dispatch = Callable[[Received], Awaitable[None]]


class Pipeline:
    """Handles :attr:`SessionClient.incoming` in order and acknowledges each message once it is done:
    at once, or at the next saved checkpoint when the service has a :class:`Checkpointed` state."""

    def __init__(
        self,
        client: SessionClient,
        dispatch: Dispatch,
        checkpoint: Checkpointed | None,
        *,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.dispatch = dispatch
        self.checkpoint = checkpoint
        #: Called once the current connection's retained messages have all been handled.
        self.on_synced = on_synced
        self.lock = asyncio.Lock()
        self.unsaved: list[Received] = []
        #: Non-retained messages waiting for their connection's retained state (see the module).
        self.held: list[Received] = []
        self.synced = 0
        self.handled = 0
        self.skipped = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._dirty = asyncio.Event()
        self._stopping = False
        self._in_hand = False
        self._clean = True

    async def run(self) -> None:
        """Handle messages until cancelled (or :meth:`stop`)."""
        saver = asyncio.create_task(self._checkpoints()) if self.checkpoint is not None else None
        try:
            while not self._stopping:
                item = await self.client.incoming.get()
                if isinstance(item, Synced):
                    self.synced = max(self.synced, item.generation)
                    if self.on_synced is not None and item.generation == self.client.generation:
                        self.on_synced()
                    held, self.held = self.held, []
                    for r in held:
                        await self._handle(r)
                elif not item.message.retain and item.generation > self.synced:
                    self.held.append(item)
                else:
                    await self._handle(item)
        finally:
            if saver is not None:
                saver.cancel()
                await asyncio.gather(saver, return_exceptions=True)

    def _duplicate(self, r: Received) -> bool:
        """A non-retained message with the topic and payload of one handled recently (a replay or a
        re-delivery): skipped (and acknowledged like a handled one)."""
        m = r.message
        if m.retain:
            return False
        key = hashlib.blake2b(
            m.topic.value.encode() + b"\0" + bytes(m.payload or b""), digest_size=16
        ).digest()
        if key in self._seen:
            self.skipped += 1
            return True
        self._seen[key] = None
        if len(self._seen) > RECENT_MESSAGES:
            self._seen.popitem(last=False)
        return False

    async def _handle(self, r: Received) -> None:
        if self._duplicate(r):
            self._settle(r)
            return
        self._in_hand = True
        try:
            async with self.lock:
                await self.dispatch(r)
        except BaseException:
            self._clean = False  # cancelled (or failed) inside a message: no final checkpoint
            raise
        finally:
            self._in_hand = False
        self.handled += 1
        self._settle(r)

    def _settle(self, r: Received) -> None:
        if self.checkpoint is None:
            self.client.ack(r)
        else:
            self.unsaved.append(r)
            self._dirty.set()

    async def _checkpoints(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, last + CHECKPOINT_MIN_INTERVAL_S - loop.time()))
            end = loop.time() + CHECKPOINT_DELAY_S
            while self.client.incoming.qsize() and len(self.unsaved) < CHECKPOINT_BATCH and loop.time() < end:
                await asyncio.sleep(0.002)
            last = loop.time()
            await self.save()

    async def save(self) -> int:
        """Take a checkpoint now and acknowledge the messages it covers; returns how many."""
        if self.checkpoint is None:
            return 0
        async with self.lock:
            self._dirty.clear()
            if not self.unsaved:
                return 0
            snap = self.checkpoint.snapshot()
            batch, self.unsaved = self.unsaved, []
        started = time.monotonic()
        await self.checkpoint.save(snap)
        acked = sum(self.client.ack(r) for r in batch)
        log.debug("checkpoint", messages=len(batch), acked=acked, save_s=round(time.monotonic() - started, 4))
        return len(batch)

    async def stop(self, task: asyncio.Task[None], grace_s: float = STOP_GRACE_S) -> None:
        """Let the message in hand finish (``grace_s`` at most), stop, then save a final checkpoint when
        no message was cut off and the broker is still there to take the acknowledgements."""
        self._stopping = True
        if not self._in_hand:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await asyncio.shield(asyncio.wait([task]))
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._clean and self.checkpoint is not None and self.client.is_connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self.save()
