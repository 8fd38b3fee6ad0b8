"""Service readiness: what the runner announces on the retained ``status/<service>`` topic.

A service is **online** once it has subscribed (a publisher that waits for it loses nothing) and
**ready** once, on the current broker connection,

1. its retained state has been handled: the connection's sync marker came back through the message
   pipeline (:mod:`shared.session`), so every retained message of its subscriptions reached its handlers
   (a scorer has loaded every announced model, the gateway holds every retained view), and
2. its own start-up steps are done (:attr:`Readiness.steps`, e.g. the calibrator re-announcing its
   registry), which the service marks with :meth:`Readiness.done`.

The runner (:class:`StatusReporter`) publishes ``online, ready=false`` first, then the status again
whenever readiness or the service's :class:`~shared.messages.inputs.ServiceDetail` changes (e.g. a
scorer's count of loaded models), and ``offline`` on a clean stop (the broker publishes the same as the
last will of a killed one). Changes that arrive while a status is being published are coalesced.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared import topics
from shared.messages.inputs import ServiceDetail, ServiceStatus


class Publisher(Protocol):
    """The publish side of a bus (:class:`shared.bus.Bus` is one)."""

    async def publish(self, topic: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None: ...


@dataclass
class Readiness:
    """A service's readiness on the current connection; owned by the runner, told by the service.

    ``steps``: names of start-up steps the service finishes on each connection (:meth:`done`); the
    runner marks them pending again on every new connection (:meth:`begin`) and sets :attr:`synced`.
    """

    steps: tuple[str, ...] = ()
    #: The current connection's retained state has been handled (set by the runner).
    synced: bool = False
    _detail: ServiceDetail = field(default_factory=ServiceDetail, init=False)
    _pending: set[str] = field(default_factory=set, init=False)
    #: Set on every change; the status reporter waits on it.
    changed: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self._pending = set(self.steps)

    @property
    def ready(self) -> bool:
        return self.synced and not self._pending

    def detail(self) -> ServiceDetail:
        """The service's detail with the start-up steps still pending (sorted)."""
        return self._detail.model_copy(update={"waiting_for": sorted(self._pending)})

    def begin(self) -> None:
        """A new connection: not synced, every start-up step pending again."""
        self.synced = False
        self._pending = set(self.steps)
        self.changed.set()

    def sync(self) -> None:
        """The connection's retained state has been handled."""
        self.synced = True
        self.changed.set()

    def done(self, step: str) -> None:
        """Start-up step ``step`` is done on this connection (unknown steps are an error)."""
        if step not in self.steps:
            raise ValueError(f"unknown start-up step {step!r} (declared: {self.steps})")
        self._pending.discard(step)
        self.changed.set()

    def update(self, **detail: int | None) -> None:
        """Set detail fields (e.g. ``models_loaded=3``); the runner republishes the status if it changed."""
        new = self._detail.model_copy(update=detail)
        ServiceDetail.model_validate(new.model_dump())  # the same bounds as a received status
        if new != self._detail:
            self._detail = new
            self.changed.set()

    def status(self, service: str, state: Literal["online", "offline"] = "online") -> ServiceStatus:
        ready = self.ready and state == "online"
        return ServiceStatus(service=service, state=state, pid=os.getpid(), ready=ready, detail=self.detail())


Key = tuple[bool, ServiceDetail]


@dataclass
class StatusReporter:
    """Publishes ``status/<service>`` (retained, ``online``) whenever readiness or detail changed."""

    bus: Publisher
    service: str
    readiness: Readiness
    #: (ready, detail) of the last status published.
    last: Key | None = None

    async def publish(self) -> None:
        """Publish the current status unless it says what the last one said."""
        self.readiness.changed.clear()
        status = self.readiness.status(self.service)
        key = (status.ready, status.detail or ServiceDetail())
        if key != self.last:
            await self.bus.publish(topics.service_status(self.service), status, retain=True)
            self.last = key

    async def run(self) -> None:
        """Publish after every change until cancelled (changes made during a publish coalesce)."""
        while True:
            await self.publish()
            if not self.readiness.changed.is_set():
                await self.readiness.changed.wait()


async def announce_offline(bus: Publisher, service: str, readiness: Readiness | None = None) -> None:
    """The retained ``offline`` status of a service that stops cleanly."""
    status = (readiness or Readiness()).status(service, "offline")
    await bus.publish(topics.service_status(service), status, retain=True)
