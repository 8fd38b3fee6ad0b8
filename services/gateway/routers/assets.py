"""``/assets``: known assets, their stored readings, scores and health history, and their configuration
(persisted by the gateway and published retained on ``config/<asset>``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway import configs
from services.gateway.deps import ContextDep, GatewayContext
from shared import records, topics
from shared.messages import (
    AssetConfig,
    AssetState,
    BearingGeometry,
    HealthUpdate,
    ModelKind,
    Reading,
    Score,
    ts_ns,
    utcnow,
)
from shared.store import Point
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/assets", tags=["assets"])
log = structlog.get_logger()

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


async def _known_or_404(ctx: GatewayContext, asset_id: str) -> None:
    """HTTP 404 unless the asset has stored data or retained state/config/health/models."""
    if asset_id in ctx.view.known_assets():
        return
    stored = await asyncio.to_thread(ctx.store.assets)
    if asset_id not in stored:
        reason = f"unknown asset {asset_id!r}: no stored data and no retained state/config"
        raise HTTPException(404, reason)


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
    if not points:
        await _known_or_404(ctx, asset_id)
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


# ---------------------------------------------------------------------------------------------
# Scores and health history
# ---------------------------------------------------------------------------------------------
class ScoreList(BaseModel):
    asset_id: str
    minutes: int
    count: int
    #: True when ``limit`` cut off older scores (the newest ``limit`` are returned).
    truncated: bool
    scores: list[Score]


class HealthHistory(BaseModel):
    asset_id: str
    minutes: int
    count: int
    truncated: bool
    history: list[HealthUpdate]


MinutesQuery = Annotated[int, Query(ge=1, le=MAX_MINUTES, description="Look-back window, minutes")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many (the newest)")]
_HISTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown asset"},
    422: {"description": "Invalid asset id or query"},
}


async def _recent(
    ctx: GatewayContext,
    measurement: str,
    asset_id: str,
    minutes: int,
    limit: int,
    tags: dict[str, str] | None = None,
) -> list[Point]:
    start = ts_ns(utcnow() - timedelta(minutes=minutes))
    points = await asyncio.to_thread(
        ctx.store.query, measurement, asset_id, start_ns=start, limit=limit, newest=True, tags=tags
    )
    if not points:
        await _known_or_404(ctx, asset_id)
    return points


@router.get("/{asset_id}/scores", response_model=ScoreList, responses=_HISTORY_RESPONSES)
async def get_scores(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    minutes: MinutesQuery = 60,
    limit: LimitQuery = DEFAULT_LIMIT,
    model: Annotated[ModelKind | None, Query(description="Only this model (default: all, merged)")] = None,
) -> ScoreList:
    """Stored anomaly scores of the last ``minutes`` minutes, every model merged, oldest first."""
    tags = {"model": model} if model else None
    points = await _recent(ctx, records.SCORES, asset_id, minutes, limit, tags)
    scores = [records.point_to_score(p) for p in points]
    return ScoreList(
        asset_id=asset_id, minutes=minutes, count=len(scores), truncated=len(scores) == limit, scores=scores
    )


@router.get("/{asset_id}/health", response_model=HealthHistory, responses=_HISTORY_RESPONSES)
async def get_health_history(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    minutes: MinutesQuery = 60,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> HealthHistory:
    """Stored health assessments of the last ``minutes`` minutes (by data time), oldest first."""
    points = await _recent(ctx, records.HEALTH, asset_id, minutes, limit)
    history = [records.point_to_health(p) for p in points]
    return HealthHistory(
        asset_id=asset_id,
        minutes=minutes,
        count=len(history),
        truncated=len(history) == limit,
        history=history,
    )


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
class AssetConfigIn(BaseModel):
    """:class:`AssetConfig` without ``asset_id`` (the path's) and ``updated_at`` (set on write)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(default="", max_length=200)
    type: Literal["motor", "pump", "fan", "compressor", "gearbox", "other"] = "motor"
    rpm: float | None = Field(default=None, gt=0, le=120_000, description="Running speed, rev/min")
    iso_group: Literal[1, 2] = Field(default=2, description="ISO 20816-3 group: 1 large, 2 medium")
    foundation: Literal["rigid", "flexible"] = "rigid"
    bearing: BearingGeometry | None = None

    @model_validator(mode="after")
    def _bearing_consistent(self) -> AssetConfigIn:
        b = self.bearing
        if b is None:
            return self
        geometry = {
            "n_balls": b.n_balls,
            "ball_diameter_mm": b.ball_diameter_mm,
            "pitch_diameter_mm": b.pitch_diameter_mm,
        }
        given = [k for k, v in geometry.items() if v is not None]
        orders = [b.bpfo_order, b.bpfi_order, b.bsf_order, b.ftf_order]
        if given and len(given) < len(geometry):
            missing = [k for k in geometry if k not in given]
            raise ValueError(
                f"bearing geometry is incomplete: {', '.join(given)} given but {', '.join(missing)} missing "
                "(give n_balls, ball_diameter_mm and pitch_diameter_mm together)"
            )
        if given:
            assert b.ball_diameter_mm is not None and b.pitch_diameter_mm is not None
            if b.pitch_diameter_mm <= b.ball_diameter_mm:
                raise ValueError(
                    f"bearing pitch_diameter_mm ({b.pitch_diameter_mm:g}) must be greater than "
                    f"ball_diameter_mm ({b.ball_diameter_mm:g})"
                )
        elif all(o is None for o in orders):
            raise ValueError(
                "bearing needs its geometry (n_balls, ball_diameter_mm, pitch_diameter_mm) "
                "or at least one defect order (bpfo_order, bpfi_order, bsf_order, ftf_order)"
            )
        return self


_CONFIG_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No configuration for this asset"},
    422: {"description": "Invalid asset id or configuration"},
    503: {"description": "MQTT broker not connected"},
}


@router.put("/{asset_id}/config", response_model=AssetConfig, responses=_CONFIG_RESPONSES)
async def put_config(asset_id: AssetIdPath, body: AssetConfigIn, ctx: ContextDep) -> AssetConfig:
    """Validate, persist (``DATA_DIR/configs/<id>.json``) and publish retained on ``config/<id>``."""
    cfg = AssetConfig(asset_id=asset_id, updated_at=utcnow(), **body.model_dump())
    ctx.bus()  # 503 before writing anything when the broker is down
    directory = configs.config_dir(ctx.settings.data_dir)
    await asyncio.to_thread(configs.save_config, directory, cfg)
    await ctx.publish(topics.asset_config(asset_id), cfg.model_dump_json().encode(), retain=True)
    return cfg


@router.get("/{asset_id}/config", response_model=AssetConfig, responses=_CONFIG_RESPONSES)
async def get_config(asset_id: AssetIdPath, ctx: ContextDep) -> AssetConfig:
    """The persisted configuration; else the retained one seen on the bus; else 404."""
    directory = configs.config_dir(ctx.settings.data_dir)
    try:
        cfg = await asyncio.to_thread(configs.load_config, directory, asset_id)
    except ValueError as exc:
        log.error("config_unreadable", asset_id=asset_id, error=str(exc))
        raise HTTPException(500, str(exc)) from None
    if cfg is None:
        cfg = ctx.view.configs.get(asset_id)
    if cfg is None:
        raise HTTPException(404, f"no configuration for asset {asset_id!r}")
    return cfg
