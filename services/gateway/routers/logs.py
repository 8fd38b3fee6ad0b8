"""``/logs``: operator / maintenance log entries (published on ``logs/<asset>``, stored by the
historian as ``oplogs``)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.gateway.auth.guard import Operator, Viewer
from services.gateway.deps import ContextDep
from shared import records, topics
from shared.messages import AssetId, LogEventType, OperatorLog, to_utc, ts_ns, utcnow
from shared.store import Store
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
    count: int
    logs: list[OperatorLog]


@router.post(
    "",
    response_model=LogAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"description": "Invalid entry"}, 503: {"description": "MQTT broker not connected"}},
)
async def post_log(body: LogIn, ctx: ContextDep, who: Operator) -> LogAccepted:
    """Publish a log entry with a new ``log_id``; the historian stores it (visible in ``GET /logs``)."""
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


def _stored_logs(store: Store, asset_ids: list[str], start_ns: int, limit: int) -> list[OperatorLog]:
    out: list[OperatorLog] = []
    for a in asset_ids:
        for p in store.query(records.OPLOGS, a, start_ns=start_ns, limit=limit, newest=True):
            try:
                out.append(records.point_to_oplog(p))
            except ValueError as exc:
                log.warning("bad_oplog_point", asset_id=a, ts_ns=p.ts_ns, error=str(exc))
    return out


@router.get("", response_model=LogList)
async def list_logs(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset")] = None,
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS, description="Look-back window, hours")] = 24,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many (the newest)")] = 1000,
) -> LogList:
    """Stored log entries of the last ``hours`` hours (by entry time), newest first; all assets by default."""
    start = ts_ns(utcnow() - timedelta(hours=hours))
    assets = [asset_id] if asset_id else await asyncio.to_thread(ctx.store.assets)
    entries = await asyncio.to_thread(_stored_logs, ctx.store, assets, start, limit)
    entries.sort(key=lambda e: (e.ts, e.log_id), reverse=True)
    entries = entries[:limit]
    return LogList(hours=hours, count=len(entries), logs=entries)
