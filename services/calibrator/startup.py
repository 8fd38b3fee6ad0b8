"""Start-up on each broker connection: knowing when the retained messages of a fresh subscription have
arrived (without a fixed sleep), and when the calibrator is ready.

The calibrator's status turns ready (:mod:`shared.readiness`) once the start-up steps of
:data:`STARTUP_STEPS` are done on the connection: ``models`` (every model of the registry re-announced,
retained; the count is its status detail ``models_announced``), ``states`` (every asset's last state
published again, retained, where the broker did not send it: :func:`.lifecycle.restore`; retried while
the store fails, see :func:`retrying`) and ``configs`` (every persisted asset configuration
re-published). A broker that forgot its retained messages (the embedded one after a restart) has them
all again by then.

After subscribing, the service publishes a marker (a fresh token) to its private topic
``sync/<service>/<token>``, which it also subscribes to. The broker sends a subscription's retained
messages before any later publish, and delivers one client's messages in order, so when the marker
comes back every retained message of the subscriptions made before it has been handled. A bounded
timeout covers a broker that never echoes the marker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from shared import topics
from shared.bus import Bus, Incoming, topic_matches
from shared.readiness import Readiness
from shared.service import Delivery, Outbox, Publish
from shared.store import StoreError

log = structlog.get_logger()

#: How long to wait for the marker before going on anyway (seconds).
SYNC_TIMEOUT_S = 10.0
#: What the calibrator does on each connection before it is ready.
STARTUP_STEPS = ("models", "states", "configs")
#: First and longest wait between attempts of a start-up step the store fails (seconds; doubling).
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0

T = TypeVar("T")


def startup_readiness() -> Readiness:
    """The calibrator's readiness: the runner's rule plus :data:`STARTUP_STEPS`."""
    return Readiness(steps=STARTUP_STEPS)


def models_announced(readiness: Readiness, published: Sequence[Publish]) -> None:
    """Start-up step ``models`` done: ``published`` (the re-announcement) is out; count its models."""
    models = topics.model_announce_filter()
    readiness.update(
        models_announced=sum(1 for p in published if topic_matches(models, p.topic) and p.payload)
    )
    readiness.done("models")


async def retrying(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """``attempt()`` until it does not raise :class:`StoreError` (the store is down or refused): each
    failure is logged with the wait before the next try, :data:`RETRY_FIRST_S` doubling up to
    :data:`RETRY_MAX_S`. Cancelled with the connection."""
    wait_s = RETRY_FIRST_S
    while True:
        try:
            return await attempt()
        except StoreError as exc:
            log.warning("startup_step_retry", step=what, error=str(exc), retry_in_s=wait_s)
        await asyncio.sleep(wait_s)
        wait_s = min(wait_s * 2, RETRY_MAX_S)


def parse_sync_marker(msg: Incoming) -> str:
    """Route parser for ``sync/<service>/+``: the marker's token (its topic's last segment)."""
    return msg.topic.rsplit("/", 1)[-1]


@dataclass
class RetainedSync:
    """Marker round trips of one service; :meth:`on_marker` is its route handler."""

    service: str
    timeout_s: float = SYNC_TIMEOUT_S
    pending: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def filter(self) -> str:
        return topics.sync_filter(self.service)

    async def wait(self, bus: Bus) -> bool:
        """Publish a marker and wait until it comes back (``True``) or the timeout passes (``False``)."""
        token = uuid.uuid4().hex
        arrived = self.pending[token] = asyncio.Event()
        try:
            await bus.publish(topics.sync(self.service, token), token.encode(), qos=1)
            async with asyncio.timeout(self.timeout_s):
                await arrived.wait()
            return True
        except TimeoutError:
            log.warning("sync_marker_timeout", service=self.service, timeout_s=self.timeout_s)
            return False
        finally:
            self.pending.pop(token, None)

    async def on_marker(self, d: Delivery[str]) -> Outbox:
        arrived = self.pending.get(d.message)
        if arrived is not None:
            arrived.set()
        return None
