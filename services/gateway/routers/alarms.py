"""``/alarms``: alarm list from the store (latest transition per alarm) and operator ack/resolve via the
health service (``cmd/alarm_action``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway.auth.guard import Operator, Viewer
from services.gateway.commands import command, raise_failed
from services.gateway.deps import ContextDep, GatewayContext
from shared import records
from shared.messages import (
    ActionCode,
    AlarmActionReply,
    AlarmActionRequest,
    AlarmEvent,
    AlarmState,
)
from shared.store import Store
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/alarms", tags=["alarms"])
log = structlog.get_logger()

ALARM_ID_PATTERN = r"^[0-9a-f]{32}$"
AlarmIdPath = Annotated[str, PathParam(pattern=ALARM_ID_PATTERN, description="Alarm id (32 hex digits)")]
Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
RESPONDER = "health service"
AlarmAction = Literal["ack", "resolve"]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: Who = Field(description="Operator name (required)")
    note: str = Field(default="", max_length=2000)


class ResolveBody(AckBody):
    #: What was done; a maintenance action (not ``false_alarm``/``other``) resets degradation tracking.
    #: Omitted: the health service records ``other``.
    action_code: ActionCode | None = None


class AlarmList(BaseModel):
    count: int
    alarms: list[AlarmEvent]


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown alarm id"},
    409: {"description": "Invalid transition (e.g. resolving a resolved alarm)"},
    422: {"description": "Invalid alarm id or body"},
    500: {"description": "The health service failed (see its logs)"},
    502: {"description": "Malformed reply from the health service"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply within COMMAND_TIMEOUT_S"},
}


def _stored_alarms(store: Store, asset_ids: list[str]) -> list[AlarmEvent]:
    events: list[AlarmEvent] = []
    for a in asset_ids:
        for p in store.query(records.ALARMS, a):
            try:
                events.append(records.point_to_alarm(p))
            except ValueError as exc:  # one bad row must not hide every other alarm
                log.warning("bad_alarm_point", asset_id=a, ts_ns=p.ts_ns, error=str(exc))
    return events


@router.get("", response_model=AlarmList)
async def list_alarms(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset")] = None,
    state: Annotated[AlarmState | None, Query(description="Only alarms now in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many (the newest)")] = 500,
) -> AlarmList:
    """Every stored alarm in its latest state, newest (by ``opened_at``) first; all assets by default."""
    assets = [asset_id] if asset_id else await asyncio.to_thread(ctx.store.assets)
    events = await asyncio.to_thread(_stored_alarms, ctx.store, assets)
    latest = records.latest_alarms(events)
    if state is not None:
        latest = [a for a in latest if a.state == state]
    latest = latest[:limit]
    return AlarmList(count=len(latest), alarms=latest)


async def _alarm_action(ctx: GatewayContext, alarm_id: str, action: AlarmAction, body: AckBody) -> AlarmEvent:
    """``cmd/alarm_action`` to the health service; its failure code gives the HTTP status."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = AlarmActionRequest(
        correlation_id=cid,
        reply_to=reply_to,
        alarm_id=alarm_id,
        action=action,
        who=body.who,
        note=body.note,
        action_code=body.action_code if isinstance(body, ResolveBody) else None,
    )
    reply = await command(ctx, "alarm_action", req, AlarmActionReply, responder=RESPONDER)
    raise_failed(reply, f"{action} of alarm {alarm_id}")
    if reply.alarm is None:
        raise HTTPException(502, f"malformed reply from the {RESPONDER}: alarm: missing")
    return reply.alarm


@router.post("/{alarm_id}/ack", response_model=AlarmEvent, responses=_ACTION_RESPONSES)
async def acknowledge(alarm_id: AlarmIdPath, body: AckBody, ctx: ContextDep, who: Operator) -> AlarmEvent:
    """ACTIVE -> ACKNOWLEDGED by ``who``; answers with the resulting alarm event."""
    return await _alarm_action(ctx, alarm_id, "ack", body)


@router.post("/{alarm_id}/resolve", response_model=AlarmEvent, responses=_ACTION_RESPONSES)
async def resolve(alarm_id: AlarmIdPath, body: ResolveBody, ctx: ContextDep, who: Operator) -> AlarmEvent:
    """ACTIVE or ACKNOWLEDGED -> RESOLVED by ``who`` with ``action_code``; answers with the event."""
    return await _alarm_action(ctx, alarm_id, "resolve", body)
