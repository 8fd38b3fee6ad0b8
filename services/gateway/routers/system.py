"""``/healthz`` (no prefix): is the broker connected and does the store answer?"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.deps import ContextDep

router = APIRouter(tags=["system"])

STORE_PING_TIMEOUT_S = 5.0


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    broker: bool
    store: bool
    detail: str | None = None


@router.get(
    "/healthz", response_model=Health, response_model_exclude_none=True, responses={503: {"model": Health}}
)
async def healthz(ctx: ContextDep) -> Health | JSONResponse:
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
