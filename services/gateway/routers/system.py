"""``/healthz`` (no prefix): is the broker connected and does the store answer? ``/system/purge``
(under the API prefix, :data:`api_router`): delete stored data and models."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.auth.guard import Admin, Public
from services.gateway.commands import COMMAND_RESPONSES, CommandResult, PurgeData, asset_command
from services.gateway.deps import ContextDep
from shared.messages import PurgeReply
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(tags=["system"])
api_router = APIRouter(prefix="/system", tags=["system"])

STORE_PING_TIMEOUT_S = 5.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    broker: bool
    store: bool
    detail: str | None = None


@router.get(
    "/healthz", response_model=Health, response_model_exclude_none=True, responses={503: {"model": Health}}
)
async def healthz(ctx: ContextDep, _: Public) -> Health | JSONResponse:
    """200 when the broker is connected and the store answers its ping, else 503 naming what is down."""
    broker = ctx.serve_state.connected
    try:
        store = await asyncio.wait_for(asyncio.to_thread(ctx.store.ping), STORE_PING_TIMEOUT_S)
    except TimeoutError:
        store = False
    if broker and store:
        return Health(status="ok", broker=True, store=True)
    down = [name for name, ok in (("broker", broker), ("store", store)) if not ok]
    body = Health(status="unavailable", broker=broker, store=store, detail=" and ".join(down) + " down")
    return JSONResponse(body.model_dump(), status_code=503)


@api_router.post("/purge", response_model=CommandResult[PurgeData], responses=COMMAND_RESPONSES)
async def purge(
    ctx: ContextDep,
    who: Admin,
    asset_id: Annotated[
        str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset (default: every asset)")
    ] = None,
) -> CommandResult[PurgeData]:
    """Delete stored data and models of one asset, or of every asset (``cmd/purge``, handled by the
    calibrator); answers with what the calibrator reports it deleted."""
    return await asset_command(ctx, "purge", asset_id, PurgeReply, PurgeData)
