"""``/assets``: known assets, their stored readings, scores, health, sensor statuses and feature vectors by
data time (:mod:`services.gateway.history`), and their configuration (owned by the calibrator: written with
``cmd/config``, read from the retained ``config/<asset>``)."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from services.gateway.auth.guard import Admin, Viewer
from services.gateway.commands import command, raise_failed
from services.gateway.deps import ContextDep
from services.gateway.history import HistoryDep, HistoryRange, history
from shared import records
from shared.messages import (
    AssetConfig,
    AssetState,
    ConfigReply,
    ConfigRequest,
    FeatureKind,
    FeatureVector,
    HealthUpdate,
    ModelKind,
    Reading,
    Score,
    SensorStatus,
    from_ns,
)
from shared.messages.assets import LEGACY_ISO_KEYS
from shared.store import Point
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/assets", tags=["assets"])

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


# ---------------------------------------------------------------------------------------------
# History by data time: readings, scores, health, feature vectors (services.gateway.history)
# ---------------------------------------------------------------------------------------------
class ReadingList(HistoryRange):
    readings: list[Reading]


class ScoreList(HistoryRange):
    scores: list[Score]


class HealthHistory(HistoryRange):
    history: list[HealthUpdate]


class SensorHistory(HistoryRange):
    #: The sensor's status changes (``sensor/<asset>``, published by the features service when the status
    #: changes): ``ok`` or ``fault`` with the findings, their reasons and the numbers they rest on.
    statuses: list[SensorStatus]


class FeatureList(HistoryRange):
    kind: FeatureKind
    #: Stored feature vectors (names in their original order; extras as stored).
    features: list[FeatureVector]


_HISTORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown asset"},
    422: {"description": "Invalid asset id or query (e.g. an unreadable time, from >= to)"},
}


@router.get("/{asset_id}/readings", response_model=ReadingList, responses=_HISTORY_RESPONSES)
async def get_readings(asset_id: AssetIdPath, ctx: ContextDep, who: Viewer, q: HistoryDep) -> ReadingList:
    """Stored readings by data time, oldest first: the last ``minutes`` of the asset's data, or a page of
    ``[from, to)`` (``next`` continues it)."""
    got = await history(ctx, q, records.READINGS, asset_id)
    readings = [records.point_to_reading(p) for p in got.points]
    return ReadingList(**got.summary(asset_id), count=len(readings), readings=readings)


@router.get("/{asset_id}/scores", response_model=ScoreList, responses=_HISTORY_RESPONSES)
async def get_scores(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    who: Viewer,
    q: HistoryDep,
    model: Annotated[ModelKind | None, Query(description="Only this model (default: all, merged)")] = None,
) -> ScoreList:
    """Stored anomaly scores by data time, every model merged (or one), oldest first; the default window
    ends at the asset's newest stored score (of ``model``)."""
    got = await history(ctx, q, records.SCORES, asset_id, {"model": model} if model else None)
    scores = [records.point_to_score(p) for p in got.points]
    return ScoreList(**got.summary(asset_id), count=len(scores), scores=scores)


@router.get("/{asset_id}/health", response_model=HealthHistory, responses=_HISTORY_RESPONSES)
async def get_health_history(
    asset_id: AssetIdPath, ctx: ContextDep, who: Viewer, q: HistoryDep
) -> HealthHistory:
    """Stored health assessments by data time, oldest first."""
    got = await history(ctx, q, records.HEALTH, asset_id)
    items = [records.point_to_health(p) for p in got.points]
    return HealthHistory(**got.summary(asset_id), count=len(items), history=items)


@router.get("/{asset_id}/sensor", response_model=SensorHistory, responses=_HISTORY_RESPONSES)
async def get_sensor_history(
    asset_id: AssetIdPath, ctx: ContextDep, who: Viewer, q: HistoryDep
) -> SensorHistory:
    """Stored sensor status changes by data time, oldest first: when the measurement turned implausible
    (stuck, clipped, dropouts, rate mismatch, jumps) and when it was ``ok`` again. A status holds from
    its ``ts`` until the next one (the one in force at ``from`` is the last stored before it)."""
    got = await history(ctx, q, records.SENSOR, asset_id)
    items = [records.point_to_sensor(p) for p in got.points]
    return SensorHistory(**got.summary(asset_id), count=len(items), statuses=items)


#: Stored health fields served as series by ``/assets/{id}/health/series`` (:mod:`shared.records`), with
#: their units: the health summary, the trend indicators of each update (``ind_*``) and its remaining-life
#: estimate (``rul_*``, seconds of data time; the 80 % interval's ends). ``rul_status`` and
#: ``rul_indicator`` are text. A field an update does not carry is ``null`` at that time.
HEALTH_SERIES: dict[str, str] = {
    "health_score": "0-100",
    "degradation_index": "0-1",
    "maintenance_window_days": "days",
    "velocity_rms_mm_s": "mm/s",
    "ind_rms_log": "Np",
    "ind_hf_energy_log": "Np",
    "ind_kurtosis_z": "robust sigma",
    "ind_cusum": "Np*s",
    "ind_cusum_h": "Np*s",
    "rul_status": "text",
    "rul_indicator": "text",
    "rul_median_s": "s",
    "rul_low_s": "s",
    "rul_high_s": "s",
    "rul_threshold": "Np",
}


class HealthSeries(HistoryRange):
    """Chosen stored health fields as aligned columns: ``ts[i]`` is the data time of ``series[f][i]``."""

    units: dict[str, str]
    ts: list[datetime]
    series: dict[str, list[float | str | None]]


def series_fields(raw: str | None) -> list[str]:
    """The comma-separated field names of a series query (default: every one of :data:`HEALTH_SERIES`);
    422 naming the unknown ones and the allowed ones."""
    if raw is None or not raw.strip():
        return list(HEALTH_SERIES)
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in HEALTH_SERIES]
    if unknown:
        allowed = ", ".join(HEALTH_SERIES)
        msg = f"unknown health series field(s) {', '.join(unknown)}: choose from {allowed}"
        raise RequestValidationError([{"loc": ("query", "fields"), "msg": msg, "type": "value_error"}])
    return names


def _series_value(point: Point, name: str) -> float | str | None:
    """A stored field as served: text as stored, numbers as floats (a non-finite one as null)."""
    v = point.fields.get(name)
    if isinstance(v, str) or v is None:
        return v
    x = float(v)
    return x if math.isfinite(x) else None


@router.get("/{asset_id}/health/series", response_model=HealthSeries, responses=_HISTORY_RESPONSES)
async def get_health_series(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    who: Viewer,
    q: HistoryDep,
    fields: Annotated[
        str | None, Query(description="Comma-separated stored health fields (default: all served)")
    ] = None,
) -> HealthSeries:
    """Stored health fields by data time, oldest first, as columns (e.g. ``ind_rms_log`` with
    ``rul_threshold`` for a trend chart): lighter than ``/health`` for long spans. Same query as the
    other history endpoints."""
    names = series_fields(fields)
    got = await history(ctx, q, records.HEALTH, asset_id)
    series = {n: [_series_value(p, n) for p in got.points] for n in names}
    return HealthSeries(
        **got.summary(asset_id),
        count=len(got.points),
        units={n: HEALTH_SERIES[n] for n in names},
        ts=[from_ns(p.ts_ns) for p in got.points],
        series=series,
    )


def _feature_vector(point: Point, kind: FeatureKind) -> FeatureVector:
    names, values, extras = records.point_to_features(point)
    event_id = point.fields.get("event_id")
    if not isinstance(event_id, str):
        raise ValueError(f"{point.measurement} point at {point.ts_ns} has no event_id")
    return FeatureVector(
        event_id=event_id,
        asset_id=point.asset_id,
        ts=from_ns(point.ts_ns),
        kind=kind,
        names=names,
        values=values,
        extras=extras,
    )


@router.get("/{asset_id}/features", response_model=FeatureList, responses=_HISTORY_RESPONSES)
async def get_features(
    asset_id: AssetIdPath,
    ctx: ContextDep,
    who: Viewer,
    q: HistoryDep,
    kind: Annotated[FeatureKind, Query(description="Feature family: legacy, batch or vibration")],
) -> FeatureList:
    """Stored feature vectors of one kind by data time, oldest first, with their event ids (what a
    replay resumes from)."""
    got = await history(ctx, q, records.features_measurement(kind), asset_id)
    vectors = [_feature_vector(p, kind) for p in got.points]
    return FeatureList(**got.summary(asset_id), kind=kind, count=len(vectors), features=vectors)


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
    """The body as the contract's :class:`AssetConfig` (its validators run here: e.g. bearing geometry,
    ISO 20816-3 applicability); an invalid one is HTTP 422 like any invalid body. The deprecated
    top-level ``iso_group``/``foundation`` (never dumped) are passed on: the contract reads them."""
    data = body.model_dump()
    legacy = {k: getattr(body, k) for k in LEGACY_ISO_KEYS if getattr(body, k, None) is not None}
    if legacy and "iso" not in body.model_fields_set:
        data.pop("iso")  # the default block: the legacy keys say what the client meant
    try:
        return AssetConfig(asset_id=asset_id, **data, **legacy)
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
