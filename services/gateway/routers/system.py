"""``/healthz`` and ``/readyz`` (no prefix, public) and ``/system/purge`` (under the API prefix,
:data:`api_router`: delete stored data and models).

``/healthz`` is **liveness**: this gateway process answers, its broker connection is up and the store
answers a ping. ``/readyz`` is **readiness**: the whole system is back after a (re)start, i.e. every
service of ``READY_SERVICES`` is online and ready, every announced model is loaded by its scorer and
every asset with stored health has its health back in the fleet view
(:func:`~services.gateway.view.missing_for_ready`). A restart shows ``/healthz`` 200 well before
``/readyz`` turns 200; a load balancer or launcher waits for ``/readyz``, a process supervisor
restarts on ``/healthz``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.auth.guard import Admin, Public
from services.gateway.commands import COMMAND_RESPONSES, CommandResult, PurgeData, asset_command
from services.gateway.deps import ContextDep
from services.gateway.view import Missing, missing_for_ready, service_names, stage_statuses
from shared.messages import PurgeReply, ServiceStatus
from shared.records import HEALTH
from shared.store import Store, StoreError
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
        async with asyncio.timeout(STORE_PING_TIMEOUT_S):
            store = await asyncio.to_thread(ctx.store.ping)
    except TimeoutError:
        store = False
    if broker and store:
        return Health(status="ok", broker=True, store=True)
    down = [name for name, ok in (("broker", broker), ("store", store)) if not ok]
    body = Health(status="unavailable", broker=broker, store=store, detail=" and ".join(down) + " down")
    return JSONResponse(body.model_dump(), status_code=503)


class Readiness(BaseModel):
    """``/readyz``: ``ready`` with nothing missing, else ``not_ready`` and every missing piece."""

    status: Literal["ready", "not_ready"]
    missing: list[Missing]
    #: The retained status of every expected service the gateway has seen (ready flag and detail).
    services: dict[str, ServiceStatus]


def stored_health_assets(store: Store, skip: set[str]) -> list[str]:
    """Assets (not in ``skip``) with at least one stored ``health`` point. Blocking."""
    return [a for a in store.assets() if a not in skip and store.query(HEALTH, a, newest=True, limit=1)]


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(ctx: ContextDep, _: Public) -> Readiness | JSONResponse:
    """200 when the system is ready after a (re)start, else 503 listing exactly what is missing."""
    view, st = ctx.view, ctx.serve_state
    expected = service_names(ctx.settings.ready_services)
    store_missing: list[Missing] = []
    try:
        query = asyncio.to_thread(stored_health_assets, ctx.store, set(view.health))
        async with asyncio.timeout(STORE_PING_TIMEOUT_S):
            stored = await query
    except (StoreError, TimeoutError) as exc:
        stored = []
        store_missing.append(
            Missing(what="store", reason=f"cannot list stored health: {str(exc) or 'timeout'}")
        )
    missing = store_missing + missing_for_ready(
        view, expected, stored, connected=st.connected, synced=st.readiness.synced
    )
    services = {n: s for e in expected for n, s in stage_statuses(view.services, e).items() if s is not None}
    body = Readiness(status="not_ready" if missing else "ready", missing=missing, services=services)
    if missing:
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503)
    return body


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
