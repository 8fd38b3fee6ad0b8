"""Alarm notifications: the reporter's handlers for alarm transitions, the channel configuration and
``cmd/notifications``, and the delivery task.

Include in the reporter's :class:`~shared.service.Service` (persistent session: alarms published while
the reporter is away are queued by the broker)::

    notify = Notifications.from_settings(settings)
    Service(..., routes=[*own, *notify.routes()], tasks=(*own, *notify.tasks()),
            publishes=(*own, *PUBLISHES), persistent=True)

An alarm transition (``alarms/<asset>``) is planned into one delivery per channel that wants it
(:mod:`shared.notify.outbox`: dedupe by transition id, severity filter, quiet hours; none for an event
of a shelved alarm, :func:`shared.notify.messages.suppressed`), and the plan is
written to ``DATA_DIR/notifications/outbox.jsonl`` (fsync) before the handler returns — so before the
broker is acknowledged. Sending happens in :meth:`Notifications.deliver`, never in a handler: one
delivery in flight per channel (in order), a failure retried after the configured back-off, every
outcome journaled. A crash between a send and its journal line sends that message again (at least
once): receivers dedupe by ``X-Rotorwatch-Delivery`` / the body's ``transition_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import structlog

from shared import topics
from shared.bus import Bus, Rejected, Task
from shared.messages import AlarmEvent
from shared.notify import messages
from shared.notify.commands import NotifyReply, NotifyRequest
from shared.notify.config import NOTIFY_COMMAND, NOTIFY_CONFIG_TOPIC, NotificationConfig, merged, redacted
from shared.notify.outbox import Outbox
from shared.service import Delivery, Publish, Route
from shared.service import Outbox as Publishes
from shared.settings import Settings
from shared.store import open_store

from .notify_io import OutboxFile, SendFailed, send_apprise, send_email, send_webhook
from .scheduled import ScheduledReports

log = structlog.get_logger()

#: Topics the notification handlers publish (for the service's ``publishes``).
PUBLISHES = ("notify/config", "reply/<requester>/<id>")
#: Longest idle wait of the delivery task (s).
MAX_IDLE_S = 60.0


class Notifications:
    """State and handlers of alarm notifications (see the module doc)."""

    def __init__(self, directory: Path, base_url: str, clock: Callable[[], float] = time.time) -> None:
        self.file = OutboxFile(directory)
        #: Link base when the configuration names none.
        self.base_url = base_url
        self.clock = clock
        self.config = NotificationConfig()
        self.outbox = Outbox()
        self._wake = asyncio.Event()
        self._write = asyncio.Lock()
        self._loaded = False
        #: Journal writes of attempt outcomes still running (see :meth:`_record`).
        self._recording: set[asyncio.Future[None]] = set()
        #: Scheduled reports (its own store: set ``scheduled.store`` or ``scheduled.opener``).
        self.scheduled = ScheduledReports(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifications:
        notify = cls(
            settings.data_dir / "notifications", f"http://{settings.gateway_host}:{settings.gateway_port}"
        )
        notify.scheduled.opener = lambda: open_store(settings)
        notify.scheduled.max_rows = settings.report_max_rows
        return notify

    def routes(self) -> list[Route]:
        return [
            Route(topics.ALARM_FILTER, AlarmEvent, self.on_alarm, doc="notify channels"),
            Route(NOTIFY_CONFIG_TOPIC, NotificationConfig, self.on_config, clears=True),
            Route(topics.command(NOTIFY_COMMAND), NotifyRequest, self.on_command, retained=False),
        ]

    def tasks(self) -> list[Task]:
        return [self.deliver, self.scheduled.run]

    def wake_delivery(self) -> None:
        self._wake.set()

    # -- state -----------------------------------------------------------------------------------
    async def load(self) -> None:
        """Replay the outbox journal and the cached configuration (once)."""
        if self._loaded:
            return
        async with self._write:
            if self._loaded:
                return
            ops = await asyncio.to_thread(self.file.load)
            for op in ops:
                self.outbox.apply(op)
            cached = await asyncio.to_thread(self.file.load_config)
            if cached is not None:
                self.config = cached
            self._loaded = True
        log.info("notify_loaded", pending=len(self.outbox.pending()), channels=len(self.config.channels))

    async def persist(self, ops: list[dict[str, Any]]) -> None:
        """Append ``ops`` to the journal (compacting it when it holds mostly superseded lines)."""
        if not ops:
            return
        async with self._write:
            await asyncio.to_thread(self.file.append, ops)
            live = len(self.outbox.seen) + len(self.outbox.items)
            if self.file.lines > 2 * live + 1000:
                await asyncio.to_thread(self.file.rewrite, self.outbox.snapshot())

    async def _set_config(self, config: NotificationConfig) -> None:
        self.config = config
        await asyncio.to_thread(self.file.save_config, config)
        self._wake.set()
        self.scheduled.wake.set()

    # -- handlers --------------------------------------------------------------------------------
    async def on_alarm(self, d: Delivery[AlarmEvent]) -> Publishes:
        await self.load()
        ev = d.message
        if d.asset_id != ev.asset_id:
            raise Rejected(f"alarm of asset {ev.asset_id!r} on topic {d.topic!r}")
        ops = self.outbox.plan(ev, self.config, self.base_url, self.clock())
        await self.persist(ops)
        if ops and messages.suppressed(ev):
            log.info("notify_suppressed_shelved", transition_id=ops[0]["tid"], asset_id=ev.asset_id)
        elif ops:
            channels = [op["d"]["channel"] for op in ops if op["op"] == "put"]
            log.info("notify_planned", transition_id=ops[0]["tid"], asset_id=ev.asset_id, channels=channels)
            self._wake.set()
        return None

    async def on_config(self, d: Delivery[NotificationConfig | None]) -> Publishes:
        await self.load()
        if d.message is None:
            await self._set_config(NotificationConfig())
            log.info("notify_config_cleared")
            return None
        try:
            config = merged(d.message, self.config)
        except ValueError as exc:
            raise Rejected(f"notification configuration refused: {exc}") from None
        await self._set_config(config)
        log.info("notify_config", channels=[c.id for c in config.channels])
        return None

    async def on_command(self, d: Delivery[NotifyRequest]) -> Publishes:
        await self.load()
        req = d.message
        out: list[Publish] = []
        if req.action == "put":
            try:
                config = merged(req.config or NotificationConfig(), self.config)
            except ValueError as exc:
                return [self._reply(req, status="failed", code="invalid", message=str(exc))]
            await self._set_config(config)
            out.append(
                Publish(NOTIFY_CONFIG_TOPIC, config.model_dump(mode="json", by_alias=True), retain=True)
            )
            log.info("notify_config_set", channels=[c.id for c in config.channels])
        if req.action == "deliveries":
            rows = [x for x in reversed(self.outbox.items.values()) if req.status in (None, x.status)]
            listed = [x.model_dump(mode="json") for x in rows[: req.limit]]
            out.append(self._reply(req, status="ok", deliveries=listed, counts=self.outbox.counts()))
        else:
            out.append(
                self._reply(req, status="ok", config=redacted(self.config), counts=self.outbox.counts())
            )
        return out

    @staticmethod
    def _reply(req: NotifyRequest, **fields: Any) -> Publish:
        return Publish(req.reply_to, NotifyReply(correlation_id=req.correlation_id, **fields))

    # -- delivery --------------------------------------------------------------------------------
    async def deliver(self, bus: Bus) -> None:
        """Send what is due, one delivery in flight per channel, until cancelled."""
        await self.load()
        busy: dict[str, asyncio.Task[None]] = {}

        def done(channel: str) -> Callable[[asyncio.Task[None]], None]:
            def finished(_: asyncio.Task[None]) -> None:
                busy.pop(channel, None)
                self._wake.set()

            return finished

        async with httpx.AsyncClient() as client:
            try:
                while True:
                    self._wake.clear()
                    now = self.clock()
                    for item in self.outbox.due(now, busy):
                        task = asyncio.create_task(self.attempt(client, item.id))
                        busy[item.channel] = task
                        task.add_done_callback(done(item.channel))
                    wake = self.outbox.next_wake(now, busy)
                    wait = MAX_IDLE_S if wake is None else min(MAX_IDLE_S, max(0.0, wake - now))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wake.wait()
            finally:
                for task in list(busy.values()):
                    task.cancel()
                await asyncio.gather(*busy.values(), return_exceptions=True)
                await asyncio.gather(*self._recording, return_exceptions=True)

    async def _record(self, op: dict[str, Any]) -> None:
        """Journal one attempt's outcome, to the end even when the attempt is cancelled meanwhile (a
        stop while the line is being written): :meth:`deliver` waits for it before it returns, so an
        orderly stop never forgets a sent message and sends it again after a restart."""
        task = asyncio.ensure_future(self.persist([op]))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)
        await asyncio.shield(task)

    async def attempt(self, client: httpx.AsyncClient, delivery_id: str) -> None:
        """One attempt of one delivery; its outcome journaled."""
        d = self.outbox.items[delivery_id]
        ch = self.config.channel(d.channel)
        fields = {"delivery": d.id, "channel": d.channel, "asset_id": d.asset_id}
        if ch is None or not ch.enabled or ch.kind != d.kind:
            reason = f"channel {d.channel!r} was removed or disabled"
            log.warning("notify_cancelled", reason=reason, **fields)
            await self._record(self.outbox.cancel(d.id, reason))
            return
        try:
            if ch.kind == "webhook":
                await send_webhook(client, ch, d, self.clock())
            elif ch.kind == "apprise":
                await asyncio.to_thread(send_apprise, ch, d)
            else:
                await asyncio.to_thread(send_email, ch, d)
        except SendFailed as exc:
            op = self.outbox.failed(d.id, str(exc), self.clock(), self.config.retry)
            after = op["d"]
            log.warning(
                "notify_failed",
                error=str(exc),
                attempts=after["attempts"],
                status=after["status"],
                retry_in_s=round(after["next_at"] - self.clock(), 3),
                **fields,
            )
            await self._record(op)
            return
        await self._record(self.outbox.succeeded(d.id, self.clock()))
        log.info("notify_delivered", attempts=d.attempts + 1, **fields)
