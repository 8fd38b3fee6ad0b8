"""``POST /data/*``: accept raw input and publish it to the raw topics; ingest normalises it.

One validation for HTTP and MQTT: the body is parsed by :mod:`shared.raw`, exactly as ingest parses
MQTT input (no coercion of ``"230"``, ``true`` or ``["0.1"]``; the reason names the field).

The edge of the event's identity: a reading without ``event_id`` gets one here, and one without a
timestamp is stamped with its arrival time, both returned in the answer, so the event is the same one
however often it is re-delivered (the store keeps it once; a client that retries with the returned
``event_id`` and ``timestamp`` is idempotent too).

202 means the reading is safe: the broker acknowledged it (PUBACK, QoS 1) and an ingest service is
online (its retained ``status/ingest``; ingest's persistent session holds what it has not taken yet).
Otherwise 503 with ``Retry-After`` and the reason, plus the ``event_id`` and ``timestamp`` to retry
with (the publish may have reached the broker before the connection was lost).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from services.gateway.auth.guard import Ingest, require_asset
from services.gateway.deps import ContextDep, GatewayContext
from shared import raw, topics
from shared.bus import Rejected, describe_error
from shared.messages import SimpleReadingIn, VibrationBatchIn, new_event_id, utcnow

router = APIRouter(prefix="/data", tags=["data"])

log = structlog.get_logger()

#: Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_S = 2

_ERRORS: dict[int | str, dict[str, str]] = {
    413: {"description": "Request body larger than MAX_PAYLOAD_BYTES"},
    422: {"description": "Invalid input; `detail` names the field and the problem"},
    503: {
        "description": "Not accepted (broker not connected or no PUBACK, or no ingest online): retry after "
        "`Retry-After` s with the returned `event_id` and `timestamp`"
    },
}


class Accepted(BaseModel):
    """The input was valid, the broker acknowledged it (QoS 1) and an ingest is online."""

    status: Literal["accepted"] = "accepted"
    event_id: str
    #: The reading's time (the client's, or its arrival at the gateway).
    timestamp: datetime


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that parses its body itself (with :mod:`shared.raw`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def _parse(request: Request, parse: Any) -> Any:
    try:
        return parse(await request.body())
    except (Rejected, ValidationError) as exc:
        reason = describe_error(exc)
        log.info("input_refused", path=request.url.path, reason=reason)
        raise HTTPException(422, reason) from None


def _unavailable(reason: str, event_id: str, ts: datetime) -> JSONResponse:
    log.warning("input_not_accepted", reason=reason, event_id=event_id)
    body = {"detail": reason, "event_id": event_id, "timestamp": ts.isoformat()}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _hand_over(ctx: GatewayContext, topic: str, msg: BaseModel, event_id: str, ts: datetime) -> Any:
    """202 once the broker acknowledged ``msg`` and an ingest is online; else 503 (see the module)."""
    try:
        ctx.bus()  # 503 when the broker is not connected
        ingest = ctx.view.services.get("ingest")
        if ingest is None or ingest.state != "online":
            raise HTTPException(503, "no ingest service online to take the reading; retry later")
        await ctx.publish(topic, msg.model_dump_json(exclude_none=True).encode())
    except HTTPException as exc:
        return _unavailable(str(exc.detail), event_id, ts)
    return Accepted(event_id=event_id, timestamp=ts)


@router.post(
    "/simple",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    openapi_extra=_body_schema(SimpleReadingIn),
)
async def post_simple(request: Request, ctx: ContextDep, who: Ingest) -> Any:
    """One reading (:class:`SimpleReadingIn`). A client-given ``event_id`` and ``timestamp`` are kept
    (idempotent retries); else the event id is assigned here and the arrival time stamped."""
    body: SimpleReadingIn = await _parse(request, raw.parse_simple)
    require_asset(who, body.asset_id)
    eid, ts = body.event_id or new_event_id(), body.timestamp or utcnow()
    msg = body.model_copy(update={"event_id": eid, "timestamp": ts})
    return await _hand_over(ctx, topics.raw_simple(msg.asset_id), msg, eid, ts)


@router.post(
    "/batch",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    openapi_extra=_body_schema(VibrationBatchIn),
)
async def post_batch(request: Request, ctx: ContextDep, who: Ingest) -> Any:
    """One accelerometer window (:class:`VibrationBatchIn`: any 1 to 3 of x, y, z by name, or
    ``channels``: 1 to 3 arrays taken as x, y, z; in g at ``fs_hz`` Hz); event id and arrival time as
    for ``/simple``."""
    body: VibrationBatchIn = await _parse(request, raw.parse_vibration)
    require_asset(who, body.motor_id)
    eid, ts = body.event_id or new_event_id(), body.ts or utcnow()
    msg = body.model_copy(update={"event_id": eid, "ts": ts})
    return await _hand_over(ctx, topics.raw_vibration(msg.motor_id), msg, eid, ts)
