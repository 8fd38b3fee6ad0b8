"""``/alarms``: alarm list from the store (latest transition per alarm, with its priority and first-out
mark, and its shelving while shelved), alarm-system metrics (``/alarms/metrics``, the answer in
:mod:`services.gateway.alarm_metrics`) and operator ack/resolve/shelve/unshelve via the health service
(``cmd/alarm_action``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway.alarm_metrics import MAX_METRIC_DAYS, AlarmMetricsReply, metrics_reply
from services.gateway.auth.guard import Operator, Viewer
from services.gateway.commands import command, raise_failed
from services.gateway.deps import ContextDep, GatewayContext
from services.gateway.history import history_range, known_or_404
from shared import records
from shared.health import alarm_metrics as am
from shared.messages import (
    ActionCode,
    AlarmActionReply,
    AlarmActionRequest,
    AlarmEvent,
    AlarmState,
    from_ns,
    ts_ns,
    utcnow,
)
from shared.store import Store, paging
from shared.topics import ASSET_ID_PATTERN

__all__ = ["MAX_METRIC_DAYS", "AlarmMetricsReply", "metrics_reply", "router"]

router = APIRouter(prefix="/alarms", tags=["alarms"])
log = structlog.get_logger()

ALARM_ID_PATTERN = r"^[0-9a-f]{32}$"
AlarmIdPath = Annotated[str, PathParam(pattern=ALARM_ID_PATTERN, description="Alarm id (32 hex digits)")]
Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
RESPONDER = "health service"
Note = Annotated[str, Field(max_length=2000)]
AlarmAction = Literal["ack", "resolve", "shelve", "unshelve"]
#: Longest shelf the API accepts (30 days); the health service enforces the asset's
#: ``alarms.max_shelve_s`` (default 24 h) and answers a longer one with 422.
MAX_SHELVE_S = 30 * 86_400


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: Who = Field(description="Operator name (required)")
    note: Note = ""


class ResolveBody(AckBody):
    #: What was done; a maintenance action (not ``false_alarm``/``other``) resets degradation tracking.
    #: Omitted: the health service records ``other``.
    action_code: ActionCode | None = None


class ShelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: Who = Field(description="Operator name (required)")
    #: Why the alarm is taken off the operators' attention (the audit entry; sent as the note).
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    #: For how many data-time seconds; it returns by itself after. At most 30 days here and the asset's
    #: ``alarms.max_shelve_s`` at the health service.
    duration_s: float = Field(gt=0, le=MAX_SHELVE_S)


class UnshelveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: Who = Field(description="Operator name (required)")
    note: Note = ""


class AlarmItem(AlarmEvent):
    """An alarm in its latest state, with its priority and its place in a flood (module
    :mod:`shared.health.alarm_metrics`)."""

    #: 1 high (CRITICAL), 2 medium (WARNING), 3 low (WARNING of the trend early warning or a sensor fault).
    priority: int
    priority_name: str
    #: The first-out alarm of the machine flood this alarm belongs to (``null``: in no flood).
    first_out_id: str | None = None
    #: True when this alarm is its flood's first-out (the earliest of the flood).
    first_out: bool = False


class AlarmList(BaseModel):
    count: int
    alarms: list[AlarmItem]


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown alarm id"},
    409: {
        "description": "Invalid transition (e.g. resolving a resolved alarm, shelving a resolved "
        "alarm, unshelving an alarm that is not shelved)"
    },
    422: {"description": "Invalid alarm id or body (shelve: a duration over the asset's max_shelve_s)"},
    500: {"description": "The health service failed (see its logs)"},
    502: {"description": "Malformed reply from the health service"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply within COMMAND_TIMEOUT_S"},
}


def _stored_alarms(store: Store, asset_ids: list[str], end_ns: int | None = None) -> list[AlarmEvent]:
    events: list[AlarmEvent] = []
    for a in asset_ids:
        for p in store.query(records.ALARMS, a, end_ns=end_ns):
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
    shelved: Annotated[
        bool | None, Query(description="Only alarms now shelved (true) or not shelved (false)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many (the newest)")] = 500,
) -> AlarmList:
    """Every stored alarm in its latest state, newest (by ``opened_at``) first; all assets by default.
    Each with its priority and, in a flood on its machine (the other assets of the machine included),
    the flood's first-out alarm. A shelved alarm carries ``shelved_until``/``shelved_by``/
    ``shelve_reason`` as stored with its latest transition (its return is the health service's
    ``unshelved`` transition, in data time)."""
    machines = _machines(ctx)
    stored = await asyncio.to_thread(ctx.store.assets)
    assets = _machine_peers(asset_id, machines, stored) if asset_id else stored
    events = await asyncio.to_thread(_stored_alarms, ctx.store, assets)
    first_out = am.first_out_map(am.floods(am.alarm_records(events), machines))
    latest = records.latest_alarms(events)
    if asset_id:
        latest = [a for a in latest if a.asset_id == asset_id]
    if state is not None:
        latest = [a for a in latest if a.state == state]
    if shelved is not None:
        latest = [a for a in latest if (a.shelved_until is not None) == shelved]
    items = [_item(a, first_out.get(a.alarm_id)) for a in latest[:limit]]
    return AlarmList(count=len(items), alarms=items)


def _machines(ctx: GatewayContext) -> dict[str, str | None]:
    """Asset id -> machine id of the retained asset configurations."""
    return {a: cfg.machine for a, cfg in ctx.view.configs.items()}


def _machine_peers(asset_id: str, machines: Mapping[str, str | None], stored: list[str]) -> list[str]:
    """``asset_id`` and the other assets of its machine (configured or with stored data)."""
    mine = am.machine_of(asset_id, machines)
    peers = {a for a in {*machines, *stored} if am.machine_of(a, machines) == mine}
    return sorted(peers | {asset_id})


def _item(a: AlarmEvent, first_out_id: str | None) -> AlarmItem:
    prio = am.priority_of(a.severity, a.source)
    return AlarmItem(
        **a.model_dump(),
        priority=prio.level,
        priority_name=prio.name,
        first_out_id=first_out_id,
        first_out=first_out_id == a.alarm_id,
    )


async def _alarm_action(
    ctx: GatewayContext,
    alarm_id: str,
    action: AlarmAction,
    body: AckBody | ShelveBody | UnshelveBody,
) -> AlarmEvent:
    """``cmd/alarm_action`` to the health service; its failure code gives the HTTP status."""
    cid, reply_to = ctx.view.requests.new_correlation()
    req = AlarmActionRequest(
        correlation_id=cid,
        reply_to=reply_to,
        alarm_id=alarm_id,
        action=action,
        who=body.who,
        note=body.reason if isinstance(body, ShelveBody) else body.note,
        action_code=body.action_code if isinstance(body, ResolveBody) else None,
        duration_s=body.duration_s if isinstance(body, ShelveBody) else None,
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


@router.post("/{alarm_id}/shelve", response_model=AlarmEvent, responses=_ACTION_RESPONSES)
async def shelve(alarm_id: AlarmIdPath, body: ShelveBody, ctx: ContextDep, who: Operator) -> AlarmEvent:
    """Shelve an open alarm for ``duration_s`` data-time seconds with a ``reason`` (the audit entry):
    its state does not change, it is marked shelved everywhere and returns by itself when the shelf
    runs out (or earlier on escalation); answers with the ``shelved`` event."""
    return await _alarm_action(ctx, alarm_id, "shelve", body)


@router.post("/{alarm_id}/unshelve", response_model=AlarmEvent, responses=_ACTION_RESPONSES)
async def unshelve(alarm_id: AlarmIdPath, body: UnshelveBody, ctx: ContextDep, who: Operator) -> AlarmEvent:
    """Return a shelved alarm before its shelf runs out; answers with the ``unshelved`` event."""
    return await _alarm_action(ctx, alarm_id, "unshelve", body)


# --- /alarms/metrics ---------------------------------------------------------------------------------
def _bad(name: str, reason: str) -> HTTPException:
    return HTTPException(422, f"{name}: {reason}")


def _default_end(store: Store, asset_ids: list[str]) -> datetime:
    """Just after the newest stored alarm transition of these assets (data time); now when none."""
    newest = [ns for a in asset_ids if (ns := paging.newest_ns(store, records.ALARMS, a)) is not None]
    return from_ns(max(newest)) + timedelta(microseconds=1) if newest else utcnow()


@router.get(
    "/metrics",
    response_model=AlarmMetricsReply,
    responses={404: {"description": "Unknown asset"}, 422: {"description": "Invalid asset id or period"}},
)
async def alarm_metrics(
    ctx: ContextDep,
    who: Viewer,
    asset_id: Annotated[str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Start of the period, data time (ISO-8601 or epoch s)")
    ] = None,
    to: Annotated[
        str | None,
        Query(
            description="End (exclusive), data time (ISO-8601 or epoch s; default: after the newest alarm)"
        ),
    ] = None,
    hours: Annotated[
        int, Query(ge=1, le=24 * MAX_METRIC_DAYS, description="Length of the period when `from` is not given")
    ] = 24,
) -> AlarmMetricsReply:
    """ISA-18.2 style alarm metrics of ``asset_id`` (default: the fleet) over ``[from, to)``: alarm rate
    per 10 minutes, share of 10-minute periods in flood, machine floods with their first-out, standing
    and chattering alarms, time to acknowledge, top-10 sources. Default period: the ``hours`` before
    just after the newest stored alarm transition (data time)."""
    start, end = history_range(from_, to)
    if asset_id is not None:
        await known_or_404(ctx, asset_id)
    machines = _machines(ctx)
    stored = await asyncio.to_thread(ctx.store.assets)
    assets = _machine_peers(asset_id, machines, stored) if asset_id else stored
    if end is None:
        end = await asyncio.to_thread(_default_end, ctx.store, assets)
    start = start or end - timedelta(hours=hours)
    if start >= end:
        raise _bad("from", f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > timedelta(days=MAX_METRIC_DAYS):
        days = (end - start) / timedelta(days=1)
        raise _bad("from", f"the period is {days:.1f} days; metrics cover at most {MAX_METRIC_DAYS}")
    events = await asyncio.to_thread(_stored_alarms, ctx.store, assets, ts_ns(end))
    return await asyncio.to_thread(metrics_reply, events, start, end, machines, asset_id)
