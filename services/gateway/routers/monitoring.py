"""``/monitoring``: overall and per-asset monitoring state from the retained bus view."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.gateway.deps import ContextDep
from services.gateway.view import system_state
from shared.messages import AssetState
from shared.store import StoreError

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
log = structlog.get_logger()


class AssetStatus(BaseModel):
    state: AssetState = "IDLE"
    previous: AssetState | None = None
    reason: str = ""
    #: Time of the last state change (None: never changed, i.e. IDLE by default).
    since: datetime | None = None
    #: Model kind -> version currently announced for this asset.
    models: dict[str, str] = Field(default_factory=dict)
    #: Latest retained health document, as published (None until one arrives).
    health: dict[str, Any] | None = None


class MonitoringStatus(BaseModel):
    system_state: AssetState
    assets: dict[str, AssetStatus]
    #: Service name -> ``online``/``offline`` from the retained status topics.
    services: dict[str, str] = Field(default_factory=dict)


@router.get("/status", response_model=MonitoringStatus)
async def monitoring_status(ctx: ContextDep) -> MonitoringStatus:
    """``system_state``: CALIBRATING while any asset calibrates, else MONITORING if any monitors, else
    CALIBRATED if any is calibrated, else IDLE. Assets: every known asset (IDLE when no state yet)."""
    view = ctx.view
    try:
        stored = set(await asyncio.to_thread(ctx.store.assets))
    except StoreError as exc:  # a status page must still answer while the store is down
        log.warning("store_unavailable", error=str(exc))
        stored = set()
    assets: dict[str, AssetStatus] = {}
    for a in sorted(stored | view.known_assets()):
        sc = view.states.get(a)
        models = {k: ann.version for k, ann in view.models.get(a, {}).items()}
        if sc is None:
            assets[a] = AssetStatus(models=models, health=view.health.get(a))
        else:
            assets[a] = AssetStatus(
                state=sc.state,
                previous=sc.previous,
                reason=sc.reason,
                since=sc.ts,
                models={**sc.models, **models},
                health=view.health.get(a),
            )
    return MonitoringStatus(
        system_state=system_state(s.state for s in assets.values()),
        assets=assets,
        services={name: st.state for name, st in sorted(view.services.items())},
    )
