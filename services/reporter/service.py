"""reporter service: builds the reports (executive PDF, Excel workbook, industrial PDF) on request.

``cmd/report`` (:class:`ReportRequest` → :class:`ReportReply`, request/reply with a correlation id):
the request is queued and answered from a background task, at most ``REPORT_WORKERS`` at once, so a
long report never holds up the retained state below. A report: the period is resolved (default: the
last 24 h of the asset's data) and checked, the asset's stored data is gathered (:mod:`.gather`, in a
thread), the pure builder renders it (:mod:`.documents`, in a thread), the document's base64 goes out in
order as :class:`ReplyPart` messages (at most 1 MiB of base64 each, within ``MAX_PAYLOAD_BYTES``) on the
reply topic, then the final reply with its metadata (``parts``, ``size_bytes``, ``sha256``). Failures
are a final reply with a code: ``invalid`` (reversed period, over :data:`MAX_REPORT_DAYS`, a document
over ``REPORT_MAX_BYTES``), ``not_found`` (no stored data in
the period), ``internal`` (the store or the builder raised; the reason is the exception's). The
service goes on serving after every failure. Reports taking more than a moment log
``report_progress`` every :data:`PROGRESS_EVERY_S` seconds (phase, elapsed seconds).

Alarm notifications (:mod:`.notifications`: ``alarms/+``, ``notify/config``, ``cmd/notifications``)
run in the same process; its routes and delivery task are part of this service.

Retained state it keeps: every asset's configuration (``config/+``) and announced models
(``models/+/+``: the manifest's versions, thresholds, baselines; the ONNX bytes are dropped).
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog

from shared import topics
from shared.bus import Bus
from shared.messages import AssetConfig, ErrorCode, ModelAnnouncement, utcnow
from shared.messages.commands import MAX_REPORT_DAYS, ReplyPart, ReportReply, ReportRequest
from shared.reports.data import ReportData
from shared.service import Delivery, Outbox, Route, Service, no_arguments
from shared.settings import Settings
from shared.store import Store, open_store

from . import documents, gather
from .notifications import PUBLISHES as NOTIFY_PUBLISHES
from .notifications import Notifications

log = structlog.get_logger()

SERVICE = "reporter"
#: Seconds between ``report_progress`` log lines of a report still being gathered or rendered.
PROGRESS_EVERY_S = 2.0

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """The final reply to a request and the document's base64 its ``parts`` carry (``chars`` each)."""

    reply: ReportReply
    encoded: str = ""
    chars: int = documents.PART_CHARS

    def parts(self) -> Iterator[ReplyPart]:
        """The part messages in order, made one at a time (the base64 is not copied all at once)."""
        n, cid, c = self.reply.parts, self.reply.correlation_id, self.chars
        for i in range(n):
            yield ReplyPart(correlation_id=cid, index=i, parts=n, data_b64=self.encoded[i * c : (i + 1) * c])


class ReportFailed(Exception):
    """A report that cannot be made, with the reply's code and reason."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class StorePort:
    """State port: opens the store (when given an opener) before the bus connects, closes it after."""

    opener: Callable[[], Store] | None = None
    store: Store | None = None

    async def open(self) -> None:
        if self.opener is not None:
            self.store = await asyncio.to_thread(self.opener)

    async def close(self) -> None:
        if self.opener is not None and self.store is not None:
            store, self.store = self.store, None
            await asyncio.to_thread(store.close)


async def with_progress(work: Awaitable[T], phase: str, fields: Mapping[str, Any]) -> T:
    """Await ``work``, logging ``report_progress`` every :data:`PROGRESS_EVERY_S` s while it runs."""
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    while True:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
        if done:
            return task.result()
        log.info("report_progress", phase=phase, elapsed_s=round(time.monotonic() - started, 1), **fields)


def check_period(start: datetime | None, end: datetime | None) -> None:
    """``invalid`` unless ``start`` < ``end`` and the period is at most :data:`MAX_REPORT_DAYS` days."""
    if start is None or end is None:
        return
    if start >= end:
        raise ReportFailed("invalid", f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > timedelta(days=MAX_REPORT_DAYS):
        days = (end - start) / timedelta(days=1)
        raise ReportFailed(
            "invalid", f"the period is {days:.1f} days; a report covers at most {MAX_REPORT_DAYS}"
        )


@dataclass
class ReporterHandlers:
    """Route handlers and the report task of the reporter."""

    port: StorePort
    max_rows: int = gather.DEFAULT_MAX_ROWS
    max_payload_bytes: int = 8 * 1024 * 1024
    max_bytes: int = 64 * 1024 * 1024
    workers: int = 2
    #: Builders by kind (tests); unset: :func:`documents.load_builder` when first used.
    builders: Mapping[str, documents.Builder] = field(default_factory=dict)
    configs: dict[str, AssetConfig] = field(default_factory=dict)
    models: dict[str, dict[str, ModelAnnouncement]] = field(default_factory=dict)
    jobs: asyncio.Queue[ReportRequest] = field(default_factory=asyncio.Queue)

    async def on_config(self, d: Delivery[AssetConfig | None]) -> Outbox:
        if d.asset_id is None:
            return None
        if d.message is None:
            self.configs.pop(d.asset_id, None)
        else:
            self.configs[d.asset_id] = d.message
        return None

    async def on_model(self, d: Delivery[ModelAnnouncement | None]) -> Outbox:
        kind = d.topic.rsplit("/", 1)[-1]
        if d.asset_id is None:
            return None
        if d.message is None:
            self.models.get(d.asset_id, {}).pop(kind, None)
        elif d.message.asset_id == d.asset_id and d.message.model == kind:
            # the ONNX bytes are not a report's business: keep the manifest only
            self.models.setdefault(d.asset_id, {})[kind] = d.message.model_copy(update={"onnx_b64": ""})
        else:
            raise ValueError(f"announcement of {d.message.asset_id}/{d.message.model} on {d.topic!r}")
        return None

    async def on_report(self, d: Delivery[ReportRequest]) -> Outbox:
        self.jobs.put_nowait(d.message)
        return None

    async def run_jobs(self, bus: Bus) -> None:
        """Answer queued requests, at most ``workers`` at once, until the connection drops."""
        limit = asyncio.Semaphore(self.workers)
        running: set[asyncio.Task[None]] = set()

        async def one(req: ReportRequest) -> None:
            async with limit:
                answer = await self.report(req)
            # in order, each acknowledged before the next: the requester has every part at the reply
            for part in answer.parts():
                await bus.publish(req.reply_to, part, qos=1)
            await bus.publish(req.reply_to, answer.reply, qos=1)

        try:
            while True:
                req = await self.jobs.get()
                task = asyncio.create_task(one(req))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def report(self, req: ReportRequest) -> Answer:
        """The answer to one request (a failure is a reply with its code, never an exception)."""
        fields = {"asset_id": req.asset_id, "kind": req.kind, "correlation_id": req.correlation_id}
        started = time.monotonic()
        try:
            answer = await self._report(req, fields)
        except ReportFailed as exc:
            log.info("report_refused", code=exc.code, reason=str(exc), **fields)
            return Answer(self._failed(req, exc.code, str(exc)))
        except Exception as exc:
            log.exception("report_failed", **fields)
            reason = f"{req.kind} report failed: {type(exc).__name__}: {exc}"
            return Answer(self._failed(req, "internal", reason))
        seconds = round(time.monotonic() - started, 2)
        reply = answer.reply
        log.info(
            "report_done",
            seconds=seconds,
            size_bytes=reply.size_bytes,
            pages=reply.pages,
            parts=reply.parts,
            **fields,
        )
        return answer

    @staticmethod
    def _failed(req: ReportRequest, code: ErrorCode, reason: str) -> ReportReply:
        return ReportReply(
            correlation_id=req.correlation_id,
            status="failed",
            code=code,
            message=reason,
            asset_id=req.asset_id,
            kind=req.kind,
        )

    def _store(self) -> Store:
        if self.port.store is None:
            raise ReportFailed("internal", "the reporter's store is not open")
        return self.port.store

    async def _report(self, req: ReportRequest, fields: Mapping[str, Any]) -> Answer:
        check_period(req.start, req.end)
        store = self._store()
        period = await asyncio.to_thread(gather.resolve_period, store, req.asset_id, req.start, req.end)
        if period is None:
            raise ReportFailed("not_found", f"no stored data of asset {req.asset_id!r}")
        start, end = period
        check_period(start, end)
        log.info("report_started", start=start.isoformat(), end=end.isoformat(), **fields)
        data = await with_progress(
            asyncio.to_thread(self._gather, store, req, start, end), "gathering", fields
        )
        if data.empty:
            raise ReportFailed(
                "not_found",
                f"no readings, vibration windows or health updates of {req.asset_id!r} "
                f"from {start.isoformat()} to {end.isoformat()}",
            )
        builder = self.builders.get(req.kind) or documents.load_builder(req.kind)
        doc = await with_progress(asyncio.to_thread(builder, data), "rendering", fields)
        return self._reply(req, data, doc)

    def _gather(self, store: Store, req: ReportRequest, start: datetime, end: datetime) -> ReportData:
        return gather.gather(
            store,
            req.asset_id,
            start,
            end,
            generated_at=utcnow(),
            config=self.configs.get(req.asset_id),
            models=self.models.get(req.asset_id, {}),
            max_rows=self.max_rows,
        )

    def _reply(self, req: ReportRequest, data: ReportData, doc: bytes) -> Answer:
        kind = documents.KINDS[req.kind]
        if len(doc) > self.max_bytes:
            raise ReportFailed(
                "invalid",
                f"the {req.kind} report of this period is {len(doc) / 1e6:.1f} MB, over the "
                f"{self.max_bytes / 1e6:.1f} MB a report may have (REPORT_MAX_BYTES); "
                "choose a shorter period",
            )
        encoded = base64.b64encode(doc).decode("ascii")
        chars = documents.part_chars(self.max_payload_bytes)
        counts = {
            "readings": data.readings_total,
            "windows": len(data.windows),
            "health": len(data.health),
            "vibration_features": len(data.vibration),
            "alarm_transitions": len(data.alarms),
            "operator_logs": len(data.logs),
            **{f"scores_{k}": len(s) for k, s in data.scores.items()},
        }
        reply = ReportReply(
            correlation_id=req.correlation_id,
            status="ok",
            message=f"{req.kind} report of {req.asset_id}",
            asset_id=req.asset_id,
            kind=req.kind,
            filename=documents.filename(req.asset_id, req.kind, data.generated_at),
            content_type=kind.content_type,
            size_bytes=len(doc),
            sha256=documents.sha256(doc),
            pages=documents.pdf_pages(doc) if kind.extension == "pdf" else None,
            parts=max(1, math.ceil(len(encoded) / chars)),
            start=data.start,
            end=data.end,
            generated_at=data.generated_at,
            counts=counts,
            capped=data.capped,
            models={m.kind: m.version for m in data.models},
        )
        return Answer(reply, encoded, chars)

    def routes(self) -> list[Route]:
        return [
            Route(topics.ASSET_CONFIG_FILTER, AssetConfig, self.on_config, clears=True),
            Route(topics.model_announce_filter(), ModelAnnouncement, self.on_model, clears=True),
            Route(topics.command("report"), ReportRequest, self.on_report, retained=False),
        ]


def build(
    settings: Settings,
    argv: Sequence[str] = (),
    *,
    store: Store | None = None,
    builders: Mapping[str, documents.Builder] | None = None,
) -> Service:
    """The reporter; ``store`` (tests) replaces the configured store, which it then does not close;
    ``builders`` (tests) replace the report builders by kind."""
    no_arguments(SERVICE, argv)
    notify = Notifications.from_settings(settings)
    port = StorePort(None if store is not None else (lambda: open_store(settings)), store)
    handlers = ReporterHandlers(
        port,
        max_rows=settings.report_max_rows,
        max_payload_bytes=settings.max_payload_bytes,
        max_bytes=settings.report_max_bytes,
        workers=settings.report_workers,
        builders=dict(builders or {}),
    )
    # Scheduled reports show the asset's configuration and models, as the reports on request do.
    notify.scheduled.configs, notify.scheduled.models = handlers.configs, handlers.models
    return Service(
        name=SERVICE,
        routes=[*handlers.routes(), *notify.routes()],
        publishes=tuple(dict.fromkeys(("reply/<requester>/<id>", *NOTIFY_PUBLISHES))),
        tasks=(handlers.run_jobs, *notify.tasks()),
        state=port,
        # alarms published while the reporter is away are queued by the broker (notifications)
        persistent=True,
    )
