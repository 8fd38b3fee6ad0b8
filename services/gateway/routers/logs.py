"""``/logs``: operator / maintenance log entries (published on ``logs/<asset>``, stored by the
historian as ``oplogs``; the health service restarts the asset's degradation and remaining-life
tracking at the entry's ``ts`` for a corrective replacement or repair, see
``services/health/messages.py`` ``LOG_RESETS``)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.gateway.auth.guard import Operator, Viewer
from services.gateway.deps import ContextDep
from services.gateway.history import history_range
from shared import records, topics
from shared.messages import AssetId, LogEventType, OperatorLog, from_ns, to_utc, ts_ns, utcnow
from shared.store import Store, paging
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/logs", tags=["logs"])
log = structlog.get_logger()

MAX_HOURS = 24 * 366


class LogIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    asset_id: AssetId
    event_type: LogEventType
    severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    description: str = Field(default="", max_length=4000)
    #: When it happened (ISO-8601, or Unix seconds/milliseconds); default: now. Naive times are UTC.
    ts: datetime | None = None
    author: str | None = Field(default=None, max_length=100)

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return None if v is None else to_utc(v)


class LogAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    log_id: str
    #: The entry as published (the historian stores it shortly after).
    log: OperatorLog


class LogList(BaseModel):
    hours: int
    #: The entry-time range used, ``[start, end)`` (``from``/``to``, else the last ``hours`` of entries).
    start: datetime
    end: datetime
    count: int
    #: True when the range holds more than ``limit`` entries (the newest are returned).
    truncated: bool = False
    logs: list[OperatorLog]


@router.post(
    "",
    response_model=LogAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"description": "Invalid entry"}, 503: {"description": "MQTT broker not connected"}},
)
async def post_log(body: LogIn, ctx: ContextDep, who: Operator) -> LogAccepted:
    """Publish a log entry with a new ``log_id``; the historian stores it (visible in ``GET /logs``). A
    ``corrective_*`` entry restarts the asset's trend and RUL at ``ts`` (its data time: give the time the
    work was done); preventive, observation and other entries keep them."""
    try:  # the contract's rules (e.g. the timestamp's bounds) are the request's: 422, never 500
        entry = OperatorLog(
            log_id=uuid.uuid4().hex,
            asset_id=body.asset_id,
            event_type=body.event_type,
            severity=body.severity,
            description=body.description,
            ts=body.ts or utcnow(),
            author=body.author,
        )
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, reason) from None
    await ctx.publish(topics.oplog(entry.asset_id), entry.model_dump_json().encode())
    return LogAccepted(log_id=entry.log_id, log=entry)


@dataclass(frozen=True)
class LogQuery:
    start: datetime | None
    end: datetime | None
    hours: int
    limit: int


def _stored_logs(
    store: Store, asset_ids: list[str], q: LogQuery
) -> tuple[list[OperatorLog], datetime, datetime]:
    """The newest ``q.limit`` entries per asset in the range (newest first overall) and the range used:
    ``[from, to)``; ``to`` defaults to just after the newest stored entry of these assets (data time,
    not the wall clock), ``from`` to ``to - hours``."""
    end = q.end
    if end is None:
        newest = [ns for a in asset_ids if (ns := paging.newest_ns(store, records.OPLOGS, a)) is not None]
        end = from_ns(max(newest)) + timedelta(microseconds=1) if newest else utcnow()
    start = q.start or end - timedelta(hours=q.hours)
    out: list[OperatorLog] = []
    for a in asset_ids:
        points = store.query(
            records.OPLOGS, a, start_ns=ts_ns(start), end_ns=ts_ns(end), limit=q.limit + 1, newest=True
        )
        for p in points:
            try:
                out.append(records.point_to_oplog(p))
            except ValueError as exc:
                log.warning("bad_oplog_point", asset_id=a, ts_ns=p.ts_ns, error=str(exc))
    out.sort(key=lambda e: (e.ts, e.log_id), reverse=True)
    return out, start, end


@router.get("", response_model=LogList, responses={422: {"description": "Invalid query (e.g. from >= to)"}})
async def list_logs(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset")] = None,
    hours: Annotated[
        int, Query(ge=1, le=MAX_HOURS, description="Look-back when `from` is not given, hours")
    ] = 24,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many (the newest)")] = 1000,
    from_: Annotated[
        str | None, Query(alias="from", description="Start of the range (ISO-8601 or epoch s)")
    ] = None,
    to: Annotated[str | None, Query(description="End (exclusive) of the range (ISO-8601 or epoch s)")] = None,
) -> LogList:
    """Stored log entries by entry time, newest first, all assets by default: ``[from, to)``, or the last
    ``hours`` before the newest stored entry (data time: backfilled entries show too)."""
    q = LogQuery(*history_range(from_, to), hours, limit)
    assets = [asset_id] if asset_id else await asyncio.to_thread(ctx.store.assets)
    entries, start, end = await asyncio.to_thread(_stored_logs, ctx.store, assets, q)
    return LogList(
        hours=hours,
        start=start,
        end=end,
        count=min(len(entries), limit),
        truncated=len(entries) > limit,
        logs=entries[:limit],
    )
