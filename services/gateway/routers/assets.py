"""``/assets``: known assets, their stored readings, scores and health history, and their configuration
(owned by the calibrator: written with ``cmd/config``, read from the retained ``config/<asset>``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from services.gateway.auth.guard import Admin, Viewer
from services.gateway.commands import command, raise_failed
from services.gateway.deps import ContextDep, GatewayContext
from shared import records
from shared.messages import (
    AssetConfig,
    AssetState,
    ConfigReply,
    ConfigRequest,
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
async def list_assets(ctx: ContextDep, who: Viewer) -> AssetList:
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
    who: Viewer,
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
    who: Viewer,
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
    who: Viewer,
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
#: Fields of :class:`AssetConfig` the server sets: the asset id (the path's) and the time of the change.
SERVER_FIELDS = ("asset_id", "updated_at")

#: The request body of ``PUT /assets/{id}/config``: :class:`AssetConfig` without :data:`SERVER_FIELDS`.
AssetConfigIn = create_model(
    "AssetConfigIn",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False, strict=True),
    __doc__="An asset's configuration as a client sends it (the asset id is the path's).",
    **{n: (f.annotation, f) for n, f in AssetConfig.model_fields.items() if n not in SERVER_FIELDS},  # type: ignore[call-overload]
)

_CONFIG_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No configuration for this asset"},
    422: {"description": "Invalid asset id or configuration"},
    502: {"description": "Malformed reply from the calibrator"},
    503: {"description": "MQTT broker not connected"},
    504: {"description": "No reply within COMMAND_TIMEOUT_S"},
}


def _contract_config(asset_id: str, body: BaseModel) -> AssetConfig:
    """The body as the contract's :class:`AssetConfig` (its validators run here: e.g. bearing geometry);
    an invalid one is HTTP 422 like any invalid body."""
    try:
        return AssetConfig(asset_id=asset_id, **body.model_dump())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


@router.put("/{asset_id}/config", response_model=AssetConfig, responses=_CONFIG_RESPONSES)
async def put_config(asset_id: AssetIdPath, body: AssetConfigIn, ctx: ContextDep, who: Admin) -> AssetConfig:  # type: ignore[valid-type]
    """Validate, and ask the calibrator (which owns asset configuration) to store it and publish it
    retained on ``config/<id>`` (``cmd/config``); answers with the configuration as stored."""
    cfg = _contract_config(asset_id, body)
    cid, reply_to = ctx.view.requests.new_correlation()
    req = ConfigRequest(correlation_id=cid, reply_to=reply_to, config=cfg)
    reply = await command(ctx, "config", req, ConfigReply, responder="calibrator")
    raise_failed(reply, f"configuration of {asset_id}")
    if reply.config is None or reply.config.asset_id != asset_id:
        raise HTTPException(502, f"malformed reply from the calibrator: config: not {asset_id!r}'s")
    # Record it now: a GET right after this PUT sees it even before the retained config/<id> arrives.
    ctx.view.configs[asset_id] = reply.config
    return reply.config


@router.get("/{asset_id}/config", response_model=AssetConfig, responses=_CONFIG_RESPONSES)
async def get_config(asset_id: AssetIdPath, ctx: ContextDep, who: Viewer) -> AssetConfig:
    """The configuration retained on ``config/<id>``; 404 when there is none."""
    cfg = ctx.view.configs.get(asset_id)
    if cfg is None:
        raise HTTPException(404, f"no configuration for asset {asset_id!r}")
    return cfg
