"""``/assets``: known assets and their stored readings."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel

from services.gateway.deps import ContextDep
from shared import records
from shared.messages import AssetState, Reading, ts_ns, utcnow
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/assets", tags=["assets"])

MAX_MINUTES = 43_200  # 30 days
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000

AssetIdPath = Annotated[str, PathParam(pattern=ASSET_ID_PATTERN, description="Asset id")]


class AssetSummary(BaseModel):
    asset_id: str
    state: AssetState = "IDLE"
    name: str = ""
    type: str | None = None
    has_data: bool = False


class AssetList(BaseModel):
    count: int
    assets: list[AssetSummary]


class ReadingList(BaseModel):
    asset_id: str
    minutes: int
    start: datetime
    end: datetime
    count: int
    #: True when ``limit`` cut off older readings (the newest ``limit`` are returned).
    truncated: bool
    readings: list[Reading]


@router.get("", response_model=AssetList)
async def list_assets(ctx: ContextDep) -> AssetList:
    """Assets with stored data, plus assets seen in retained state/config topics (state IDLE if none)."""
    stored = set(await asyncio.to_thread(ctx.store.assets))
    view = ctx.view
    out = []
    for a in sorted(stored | view.known_assets()):
        cfg = view.configs.get(a)
        out.append(
            AssetSummary(
                asset_id=a,
                state=view.state_of(a),
                name=cfg.name if cfg else "",
                type=cfg.type if cfg else None,
                has_data=a in stored,
            )
        )
    return AssetList(count=len(out), assets=out)


@router.get(
    "/{asset_id}/readings",
    response_model=ReadingList,
    responses={404: {"description": "Unknown asset"}, 422: {"description": "Invalid asset id or query"}},
)
async def get_readings(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES, description="Look-back window, minutes")] = 60,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many (the newest)")] = (
        DEFAULT_LIMIT
    ),
) -> ReadingList:
    """Stored readings of the last ``minutes`` minutes, oldest first (newest last)."""
    end = utcnow()
    start = end - timedelta(minutes=minutes)
    points = await asyncio.to_thread(
        ctx.store.query, records.READINGS, asset_id, start_ns=ts_ns(start), limit=limit, newest=True
    )
    if not points and asset_id not in ctx.view.known_assets():
        stored = await asyncio.to_thread(ctx.store.assets)
        if asset_id not in stored:
            reason = f"unknown asset {asset_id!r}: no stored data and no retained state/config"
            raise HTTPException(404, reason)
    readings = [records.point_to_reading(p) for p in points]
    return ReadingList(
        asset_id=asset_id,
        minutes=minutes,
        start=start,
        end=end,
        count=len(readings),
        truncated=len(readings) == limit,
        readings=readings,
    )
