"""``POST /data/*``: accept raw input and publish it to the raw topics; ingest normalises it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel

from services.gateway.auth.guard import Ingest, require_asset
from services.gateway.deps import ContextDep
from shared import topics
from shared.messages import SimpleReadingIn, VibrationBatchIn, new_event_id

router = APIRouter(prefix="/data", tags=["data"])

_ERRORS: dict[int | str, dict[str, str]] = {
    413: {"description": "Request body larger than MAX_PAYLOAD_BYTES"},
    422: {"description": "Invalid input; `detail` names the field and the problem"},
    503: {"description": "MQTT broker not connected"},
}


class Accepted(BaseModel):
    """The input was valid and handed to the broker (QoS 1); ingest publishes the normalised event."""

    status: Literal["accepted"] = "accepted"
    event_id: str


@router.post("/simple", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def post_simple(body: SimpleReadingIn, ctx: ContextDep, who: Ingest) -> Accepted:
    """One reading. A client-given ``event_id`` is kept (idempotent retries), else a new one is assigned."""
    require_asset(who, body.asset_id)
    eid = body.event_id or new_event_id()
    msg = body.model_copy(update={"event_id": eid})
    await ctx.publish(topics.raw_simple(msg.asset_id), msg.model_dump_json(exclude_none=True).encode())
    return Accepted(event_id=eid)


@router.post("/batch", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def post_batch(body: VibrationBatchIn, ctx: ContextDep, who: Ingest) -> Accepted:
    """One accelerometer window (x, or x/y/z, in g at ``fs_hz`` Hz)."""
    require_asset(who, body.motor_id)
    eid = body.event_id or new_event_id()
    msg = body.model_copy(update={"event_id": eid})
    await ctx.publish(topics.raw_vibration(msg.motor_id), msg.model_dump_json(exclude_none=True).encode())
    return Accepted(event_id=eid)
