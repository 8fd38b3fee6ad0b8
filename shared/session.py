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

:class:`Pipeline` is the runner's side: one task handles the received messages in order (under a lock,
so that a checkpoint never sees half a message), one takes checkpoints and acknowledges what they
cover.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiomqtt
import paho.mqtt.client as paho
import structlog
from aiomqtt.exceptions import MqttCodeError

log = structlog.get_logger()

#: Seconds a checkpoint waits after the first unsaved message, gathering more (group commit).
CHECKPOINT_DELAY_S = 0.05
#: Seconds the runner lets the message in hand finish on shutdown before cancelling it.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Received:
    """One received message and the connection (``generation``) it arrived on."""

    generation: int
    message: aiomqtt.Message

    @property
    def qos(self) -> int:
        return int(self.message.qos)


class SessionClient(aiomqtt.Client):
    """An aiomqtt client entered again after each lost connection (see the module docstring)."""

    def __init__(self, *args: Any, manual_acks: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Number of the current connection (incremented on each accepted CONNACK).
        self.generation = 0
        self.manual_acks = manual_acks
        #: Every received message, in arrival order, kept across reconnects.
        self.incoming: asyncio.Queue[Received] = asyncio.Queue()
        if manual_acks:
            self._client.manual_ack_set(True)

    # -- paho callbacks (called on the event loop's thread) ----------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, *a: Any) -> None:
        if not self._connected.done() and reason_code == paho.CONNACK_ACCEPTED:
            self.generation += 1  # before any PUBLISH of this connection is read
        super()._on_connect(client, userdata, flags, reason_code, *a)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
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
        if info.is_published():
            return
        if fail_fast and (no_conn or not self.is_connected):
            raise aiomqtt.MqttError("not connected to the broker")
        acked = asyncio.Event()
        self._pending_publishes[info.mid] = acked
        try:
            if not fail_fast:
                await acked.wait()
                return
            waiter = asyncio.ensure_future(acked.wait())
            try:
                await asyncio.wait([waiter, self._disconnected], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if not acked.is_set():
                raise aiomqtt.MqttError("broker connection lost before it acknowledged the message")
        finally:
            self._pending_publishes.pop(info.mid, None)

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

    def __init__(self, client: SessionClient, dispatch: Dispatch, checkpoint: Checkpointed | None) -> None:
        self.client = client
        self.dispatch = dispatch
        self.checkpoint = checkpoint
        self.lock = asyncio.Lock()
        self.unsaved: list[Received] = []
        self.handled = 0
        self._dirty = asyncio.Event()
        self._stopping = False
        self._in_hand = False
        self._clean = True

    async def run(self) -> None:
        """Handle messages until cancelled (or :meth:`stop`)."""
        saver = asyncio.create_task(self._checkpoints()) if self.checkpoint is not None else None
        try:
            while not self._stopping:
                r = await self.client.incoming.get()
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
                if self.checkpoint is None:
                    self.client.ack(r)
                else:
                    self.unsaved.append(r)
                    self._dirty.set()
        finally:
            if saver is not None:
                saver.cancel()
                await asyncio.gather(saver, return_exceptions=True)

    async def _checkpoints(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(CHECKPOINT_DELAY_S)
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
            await asyncio.wait_for(asyncio.shield(asyncio.wait([task])), grace_s)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._clean and self.checkpoint is not None and self.client.is_connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.save(), grace_s)
