"""Scheduled reports: the reporter's task that, when a schedule of the notification configuration is
due (:mod:`shared.notify.schedule`), builds the report of each of its assets and queues one message per
asset per channel (e-mail or apprise) in the notification outbox (:mod:`.notifications`), with the PDF
attached.

The report is made by the same path as ``cmd/report``: :func:`.gather.newest_data` (the period is the
last ``period_days`` of the asset's data, up to the due time), :func:`.gather.gather`, and the builder
of :func:`.documents.load_builder`. A period without data gives an e-mail saying so, without a PDF.

Dedupe and restarts: each (schedule, asset, due time) is a "transition id" ``report:<schedule>:<asset>:
<due ms>`` planned once into the outbox journal (seen + one delivery per channel), so it is retried like
an alarm message, survives restarts and is never queued twice. The moment the reporter first saw a
schedule is journaled too (``schedule:<id>``): only occurrences after it run. The PDF is written to
``DATA_DIR/notifications/reports/`` before the delivery is journaled; the delivery names the file, and
the file is deleted once no pending delivery names it (:meth:`ScheduledReports.prune`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from shared.bus import Bus
from shared.messages import AssetConfig, ModelAnnouncement, utcnow
from shared.notify.config import REPORT_KINDS
from shared.notify.outbox import Delivery
from shared.notify.schedule import Schedule, iso, latest_due, next_due
from shared.store import Store

from . import documents, gather

if TYPE_CHECKING:
    from .notifications import Notifications

log = structlog.get_logger()

#: Longest wait of the schedule task between checks (s): a changed configuration wakes it earlier.
MAX_WAIT_S = 60.0


class ScheduledReports:
    """The schedule task of the reporter (see the module doc)."""

    def __init__(
        self,
        notify: Notifications,
        opener: Callable[[], Store] | None = None,
        store: Store | None = None,
        max_rows: int = gather.DEFAULT_MAX_ROWS,
    ) -> None:
        self.notify = notify
        self.opener = opener
        self.store = store
        self.max_rows = max_rows
        self.directory = notify.file.directory / "reports"
        self.wake = asyncio.Event()
        #: The retained asset configurations and model announcements the reporter keeps (set by the
        #: service to its report handlers' maps; empty: reports without them).
        self.configs: Mapping[str, AssetConfig] = {}
        self.models: Mapping[str, Mapping[str, ModelAnnouncement]] = {}

    async def run(self, bus: Bus) -> None:
        """Run the due schedules, then sleep until the next one (or a new configuration), until cancelled."""
        await self.notify.load()
        opened = False
        try:
            while True:
                self.wake.clear()
                if self.store is None and self.opener is not None and self.notify.config.schedules:
                    self.store, opened = await asyncio.to_thread(self.opener), True
                wait = await self.tick()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(MAX_WAIT_S, MAX_WAIT_S if wait is None else wait)):
                        await self.wake.wait()
        finally:
            if opened and self.store is not None:
                store, self.store = self.store, None
                await asyncio.to_thread(store.close)

    async def tick(self) -> float | None:
        """Run every due schedule; seconds until the next occurrence (None: no schedule or no store)."""
        if self.store is None:
            return None
        now = self.notify.clock()
        waits: list[float] = []
        for s in self.notify.config.schedules:
            if not s.enabled:
                continue
            since = await self._since(s, now)
            due = latest_due(s, since, now)
            if due is not None:
                await self.run_schedule(s, due)
            waits.append(max(0.0, next_due(s, since, self.notify.clock()) - self.notify.clock()))
        await self.prune()
        return min(waits) if waits else None

    async def prune(self) -> int:
        """Delete the report files no pending delivery needs any more (each was sent, failed for good or
        was cancelled; or a crash left it before its delivery was journaled); how many were deleted.
        Runs in the schedule task, after the occurrences it plans, so a file is never deleted between
        its writing and its delivery's journal line."""
        needed = {
            str(d.body["attachment"]["path"])
            for d in self.notify.outbox.pending()
            if isinstance(d.body.get("attachment"), dict)
        }
        deleted = await asyncio.to_thread(_prune, self.directory, needed)
        if deleted:
            log.info("scheduled_reports_pruned", files=deleted)
        return deleted

    async def _since(self, s: Schedule, now: float) -> float:
        key = f"schedule:{s.id}"
        if key not in self.notify.outbox.seen:
            op = {"op": "seen", "tid": key, "at": now}
            self.notify.outbox.apply(op)
            await self.notify.persist([op])
        return self.notify.outbox.seen[key]

    async def run_schedule(self, s: Schedule, due: float) -> None:
        """One occurrence: a report per asset not yet planned for it."""
        assert self.store is not None
        store = self.store
        assets = list(s.assets) or sorted(await asyncio.to_thread(store.assets))
        for asset in assets:
            tid = f"report:{s.id}:{asset}:{round(due * 1000)}"
            if tid in self.notify.outbox.seen:
                continue
            fields = {"schedule": s.id, "asset_id": asset, "due": iso(due)}
            log.info("scheduled_report_started", **fields)
            try:
                body = await self.report_body(s, asset, due, tid)
            except Exception:  # the store or the builder failed: logged, tried again at the next check
                log.exception("scheduled_report_failed", **fields)
                continue
            await self.plan(s, asset, tid, body)
            log.info("scheduled_report_queued", pdf=bool(body.get("attachment")), **fields)
        self.notify.wake_delivery()

    async def report_body(self, s: Schedule, asset: str, due: float, tid: str) -> dict[str, Any]:
        """The e-mail's content; the PDF written under :attr:`directory` when the period has data."""
        assert self.store is not None
        store = self.store
        due_at = datetime.fromtimestamp(due, UTC)
        body: dict[str, Any] = {"type": "report.scheduled", "schedule_id": s.id, "asset_id": asset}
        body.update(kind=s.kind, due=due_at.isoformat(), transition_id=tid)
        end = await asyncio.to_thread(gather.newest_data, store, asset, due_at)
        if end is None:
            body["no_data"] = f"no stored data of asset {asset} up to {due_at.isoformat()}"
            return body
        start = end - timedelta(days=s.period_days)
        body.update(start=start.isoformat(), end=end.isoformat())
        data = await asyncio.to_thread(
            gather.gather,
            store,
            asset,
            start,
            end,
            generated_at=utcnow(),
            config=self.configs.get(asset),
            models=self.models.get(asset, {}),
            max_rows=self.max_rows,
        )
        if data.empty:
            body["no_data"] = f"no readings, vibration windows or health updates of {asset} in the period"
            return body
        doc = await asyncio.to_thread(documents.load_builder(s.kind), data)
        name = documents.filename(asset, s.kind, data.generated_at)
        path = self.directory / f"{hashlib.sha256(tid.encode()).hexdigest()[:24]}.pdf"
        await asyncio.to_thread(_write, path, doc)
        body["attachment"] = {
            "path": str(path),
            "filename": name,
            "content_type": documents.KINDS[s.kind].content_type,
            "size_bytes": len(doc),
            "sha256": documents.sha256(doc),
            "pages": documents.pdf_pages(doc),
        }
        return body

    async def plan(self, s: Schedule, asset: str, tid: str, body: dict[str, Any]) -> None:
        now = self.notify.clock()
        ops: list[dict[str, Any]] = [{"op": "seen", "tid": tid, "at": now}]
        for cid in s.channels:
            ch = self.notify.config.channel(cid)
            if ch is None or ch.kind not in REPORT_KINDS or not ch.enabled:
                continue
            d = Delivery(
                id=f"{tid}@{cid}",
                channel=cid,
                kind=ch.kind,
                transition_id=tid,
                asset_id=asset,
                severity="INFO",
                body=body,
                created_at=now,
                next_at=now,
            )
            ops.append({"op": "put", "d": d.model_dump(mode="json")})
        for op in ops:
            self.notify.outbox.apply(op)
        await self.notify.persist(ops)


def _prune(directory: Path, needed: set[str]) -> int:
    if not directory.is_dir():
        return 0
    gone = [p for p in directory.iterdir() if p.name.endswith((".pdf", ".pdf.tmp")) and str(p) not in needed]
    for p in gone:
        p.unlink(missing_ok=True)
    return len(gone)


def _write(path: Path, doc: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(doc)
    tmp.replace(path)


def subject(body: dict[str, Any]) -> str:
    """``[Rotorwatch] Weekly executive report of pump-3`` (``… : no data in the period`` without data)."""
    tail = ": no data in the period" if body.get("no_data") else ""
    return f"[Rotorwatch] Scheduled {body['kind']} report of {body['asset_id']}{tail}"


def text(body: dict[str, Any]) -> str:
    """Plain-text body of a scheduled report e-mail."""
    lines = [subject(body).removeprefix("[Rotorwatch] "), "", f"Asset:    {body['asset_id']}"]
    if body.get("start"):
        lines.append(f"Period:   {body['start']} to {body['end']} (UTC, the asset's latest data)")
    lines.append(f"Schedule: {body['schedule_id']} (due {body['due']})")
    if body.get("no_data"):
        lines += ["", f"No report: {body['no_data']}."]
    else:
        att = body["attachment"]
        lines += ["", f"Attached: {att['filename']} ({att['pages']} page(s), {att['size_bytes']} bytes)."]
    return "\n".join(lines) + "\n"


def attachment(body: dict[str, Any]) -> tuple[bytes, str, str] | None:
    """The attached document (bytes, content type, file name) named by ``body``, None without one;
    ``OSError`` when the file is gone."""
    att = body.get("attachment")
    if not att:
        return None
    return Path(att["path"]).read_bytes(), att["content_type"], att["filename"]
